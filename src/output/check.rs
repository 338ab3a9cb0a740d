//! `render --check`: compares a rendered tree with what is on disk and builds a unified diff.
//! Reads only; never writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use similar::TextDiff;

use crate::output::write::Existing;

/// The difference between the tree on disk and a fresh render.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Files the render would create.
    pub added: Vec<String>,
    /// Files whose text would change.
    pub changed: Vec<String>,
    /// Generated files the render would remove.
    pub removed: Vec<String>,
    /// The unified diff of all of it.
    pub diff: String,
}

impl Drift {
    /// True when the tree is up to date.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// Compares `files` (a fresh render) with `existing` (the tree on disk).
pub fn check(existing: &Existing, files: &BTreeMap<String, String>) -> Drift {
    let mut drift = Drift::default();
    let empty = String::new();
    let mut paths: Vec<&String> = files.keys().chain(existing.generated.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let old = existing.generated.get(path);
        let new = files.get(path);
        if old == new {
            continue;
        }
        match (old, new) {
            (None, Some(_)) => drift.added.push(path.clone()),
            (Some(_), None) => drift.removed.push(path.clone()),
            _ => drift.changed.push(path.clone()),
        }
        let (old_name, new_name) = (
            if old.is_some() { format!("a/{path}") } else { "/dev/null".to_owned() },
            if new.is_some() { format!("b/{path}") } else { "/dev/null".to_owned() },
        );
        let diff = TextDiff::from_lines(old.unwrap_or(&empty).as_str(), new.unwrap_or(&empty).as_str());
        let _ = write!(drift.diff, "{}", diff.unified_diff().context_radius(3).header(&old_name, &new_name));
    }
    drift
}
