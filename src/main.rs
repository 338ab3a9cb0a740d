//! The `pressplay` binary: parse arguments, run, turn the outcome into an exit code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(pressplay::cli::main())
}
