//! The committed output under `examples/*/deploy/` must be what the current code renders.
//! When this fails, run the command it prints and commit the result.

use std::collections::BTreeMap;

use crate::common::{render_file, root};

#[test]
fn committed_examples_are_fresh() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let dir = entry.unwrap().path();
        let Some(input) = ["requirements.yaml", "tasks.json"].iter().map(|f| dir.join(f)).find(|p| p.exists()) else {
            continue;
        };
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let display = format!("examples/{name}/{}", input.file_name().unwrap().to_string_lossy());
        let generated = render_file(&input, &display).unwrap_or_else(|e| panic!("{display}: {e}"));
        let existing = pressplay::output::scan(&dir.join("deploy")).unwrap();
        let drift = pressplay::output::check(&existing, &generated.files);
        assert!(
            drift.is_empty(),
            "examples/{name}/deploy is stale; run `cargo run -- render {display} -o examples/{name}/deploy`\n{}",
            drift.diff
        );
        let on_disk: BTreeMap<_, _> = existing.generated;
        assert_eq!(on_disk.len(), generated.files.len());
        checked += 1;
    }
    assert!(checked >= 1, "no examples found");
}
