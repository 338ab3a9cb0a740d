//! Documents → disk, and back again for `--check`. The only module that touches the output
//! directory. `render`, `check` and `--stdout` all start from the same `generate()` result and
//! differ only in where the text goes.

pub mod check;
pub mod layout;
pub mod write;

pub use check::{Drift, check};
pub use layout::{path_of, stream, tree};
pub use write::{Existing, WriteError, WriteSummary, scan, write_tree};
