//! One snapshot per fixture folder: `tests/fixtures/<case>/` holds `requirements.yaml` or
//! `tasks.json`, and optionally `args` (command-line flags, one per line, such as `--tag x`).
//! Cases named `err-*` must fail, and their snapshot is the diagnostic; the others must render,
//! and their snapshot is every generated file. Adding a case is adding a folder.

use std::path::Path;

use crate::common::{diagnostics, root, tree_text};

/// The options a fixture's `args` file asks for.
pub fn fixture_options(dir: &Path) -> pressplay::Options {
    let mut options = pressplay::Options::default();
    let Ok(args) = std::fs::read_to_string(dir.join("args")) else { return options };
    for line in args.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (flag, value) = line.split_once(' ').map_or((line, ""), |(f, v)| (f, v.trim()));
        match flag {
            "--tag" => options.load.tag = Some(value.to_owned()),
            "--lenient" => options.load.lenient = true,
            "--subtasks-as-tasks" => options.load.subtasks_as_tasks = true,
            "--requirements" => options.load.requirements = Some(dir.join(value)),
            "--profiles" => options.load.profiles = Some(dir.join(value)),
            "--format" => {
                options.load.format = match value {
                    "native" => pressplay::spec::Format::Native,
                    "taskmaster" => pressplay::spec::Format::Taskmaster,
                    _ => pressplay::spec::Format::Auto,
                }
            }
            other => panic!("{}: unknown flag `{other}` in args", dir.display()),
        }
    }
    options
}

#[test]
fn fixtures() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    // Paths of --requirements files differ between machines only in their root.
    settings.add_filter(&regex_escape(&root().to_string_lossy()), "[root]");
    settings.bind(|| {
        insta::glob!("fixtures/*/{requirements.yaml,tasks.json}", |path| {
            let dir = path.parent().unwrap();
            let case = dir.file_name().unwrap().to_string_lossy().into_owned();
            let display = path.strip_prefix(root()).unwrap().to_string_lossy().replace('\\', "/");
            let result = pressplay::generate(path, &display, &fixture_options(dir));
            if case.starts_with("err-") {
                let err = result.err().unwrap_or_else(|| panic!("{case} rendered, but err-* cases must fail"));
                insta::assert_snapshot!("fixture", diagnostics(&err));
            } else {
                let generated = result.unwrap_or_else(|e| panic!("{case} failed:\n{}", diagnostics(&e)));
                let mut text = String::new();
                if !generated.planned.warnings.is_empty() {
                    text.push_str(&generated.planned.source.render(&generated.planned.warnings));
                    text.push_str("---\n");
                }
                text.push_str(&tree_text(&generated.files));
                insta::assert_snapshot!("fixture", text);
            }
        });
    });
}

fn regex_escape(text: &str) -> String {
    text.chars().map(|c| if "\\.+*?()|[]{}^$".contains(c) { format!("\\{c}") } else { c.to_string() }).collect()
}
