//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the project, when it is there.
pub fn shared() -> Option<PathBuf> {
    let dir = root().join("..").join("shared");
    dir.join("DESIGN.md").exists().then_some(dir)
}

/// Runs `../shared/argo-schemas/validate.sh --fail-on-warnings` on a directory; true when it
/// finds nothing. Its findings go to the test's output.
pub fn argo_validator_passes(shared: &Path, dir: &Path) -> bool {
    std::process::Command::new(shared.join("argo-schemas/validate.sh"))
        .args(["-q", "--fail-on-warnings"])
        .arg(dir)
        .status()
        .expect("validate.sh runs")
        .success()
}

/// Renders a backlog file in memory; `display` is the name written into headers.
pub fn render_file(path: &Path, display: &str) -> Result<pressplay::Generated, pressplay::Error> {
    pressplay::generate(path, display, &pressplay::Options::default())
}

/// Renders backlog text in memory.
pub fn render_text(text: &str) -> Result<pressplay::Generated, pressplay::Error> {
    render_files(&[("requirements.yaml", text)], "requirements.yaml", |_, _| {})
}

/// Writes `files` (relative path, text) into a temporary directory and renders `input`, one of
/// them, with the options `configure` sets (it gets the directory, to point flags at files).
pub fn render_files(
    files: &[(&str, &str)],
    input: &str,
    configure: impl FnOnce(&mut pressplay::Options, &Path),
) -> Result<pressplay::Generated, pressplay::Error> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let mut options = pressplay::Options::default();
    configure(&mut options, dir.path());
    pressplay::generate(&dir.path().join(input), input, &options)
}

/// The text of the diagnostics of a failed render.
pub fn diagnostics(err: &pressplay::Error) -> String {
    match err {
        pressplay::Error::Invalid { file, diagnostics }
        | pressplay::Error::Load(pressplay::spec::LoadError::Invalid { file, diagnostics }) => file.render(diagnostics),
        other => other.to_string(),
    }
}

/// Every file of a tree, each under a `# Source:` line, for snapshots.
pub fn tree_text(files: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (path, text) in files {
        out.push_str(&format!("# Source: {path}\n{text}"));
    }
    out
}

/// Every YAML document of a tree as JSON values, by path.
pub fn documents(files: &BTreeMap<String, String>) -> Vec<(String, serde_json::Value)> {
    files
        .iter()
        .map(|(path, text)| {
            let value: serde_json::Value =
                serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
            (path.clone(), value)
        })
        .collect()
}

/// A deterministic backlog of `n` tasks in the minimal format: task i depends on up to `fan`
/// earlier tasks, chosen by a fixed linear congruential sequence.
pub fn synthetic_backlog(n: usize, fan: usize, seed: u64) -> String {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let mut out = String::from("tasks:\n");
    for i in 0..n {
        out.push_str(&format!("  - id: {}\n    title: \"Task {i}\"\n    dependencies: [", i + 1));
        if i > 0 {
            let k = next() % (fan + 1);
            let mut deps: Vec<usize> = (0..k).map(|_| next() % i + 1).collect();
            deps.sort_unstable();
            deps.dedup();
            out.push_str(&deps.iter().map(usize::to_string).collect::<Vec<_>>().join(", "));
        }
        out.push_str("]\n");
    }
    out
}
