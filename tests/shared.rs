//! Checks that need `../shared/` (the Argo validator, kubectl, the bench inputs). Each says so
//! and passes over itself when `../shared/` is absent; CI, where it is present, runs them.

use std::path::Path;
use std::process::Command;

use crate::common::{root, shared};

/// Renders every non-error fixture and the examples into one temp dir, one subdirectory each.
fn render_all_fixtures(out: &Path) {
    let mut inputs = Vec::new();
    for base in ["tests/fixtures", "examples"] {
        for entry in std::fs::read_dir(root().join(base)).unwrap() {
            let dir = entry.unwrap().path();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let input = ["requirements.yaml", "tasks.json"].into_iter().find(|f| dir.join(f).exists());
            if let (false, Some(input)) = (name.starts_with("err-"), input) {
                inputs.push((format!("{base}/{name}/{input}"), name));
            }
        }
    }
    for (display, name) in inputs {
        let dir = root().join(&display).parent().unwrap().to_path_buf();
        let options = crate::fixtures::fixture_options(&dir);
        let generated = pressplay::generate(&root().join(&display), &display, &options).unwrap();
        pressplay::output::write_tree(&out.join(name), &generated.files).unwrap();
    }
}

#[test]
fn rendered_fixtures_pass_the_argo_validator_and_kustomize() {
    let Some(shared) = shared() else {
        eprintln!("skipped: ../shared/argo-schemas not found (CI has it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    render_all_fixtures(tmp.path());
    assert!(crate::common::argo_validator_passes(&shared, tmp.path()), "validate.sh found problems (see above)");
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let dir = entry.unwrap().path();
        let out = Command::new(shared.join("tools/kubectl.sh")).arg("kustomize").arg(&dir).output().unwrap();
        if out.status.code() == Some(3) {
            eprintln!("skipped kustomize: kubectl could not be fetched");
            return;
        }
        assert!(out.status.success(), "kustomize {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    }
}
