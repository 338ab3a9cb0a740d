//! One snapshot per fixture folder: `tests/fixtures/<case>/requirements.yaml`. Cases named
//! `err-*` must fail, and their snapshot is the diagnostic; the others must render, and their
//! snapshot is every generated file. Adding a case is adding a folder.

use crate::common::{diagnostics, render_file, root, tree_text};

#[test]
fn fixtures() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::glob!("fixtures/*/requirements.yaml", |path| {
            let case = path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let display = path
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let result = render_file(path, &display);
            if case.starts_with("err-") {
                let err = result
                    .err()
                    .unwrap_or_else(|| panic!("{case} rendered, but err-* cases must fail"));
                insta::assert_snapshot!("fixture", diagnostics(&err));
            } else {
                let generated =
                    result.unwrap_or_else(|e| panic!("{case} failed:\n{}", diagnostics(&e)));
                insta::assert_snapshot!("fixture", tree_text(&generated.files));
            }
        });
    });
}
