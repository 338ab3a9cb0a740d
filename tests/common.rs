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

/// The task records of a rendered tree's graph ConfigMaps (what the dispatcher starts each task
/// Workflow with), by task number.
pub fn records(files: &BTreeMap<String, String>) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for (path, doc) in documents(files) {
        if doc["kind"] != "ConfigMap" || doc["metadata"]["labels"]["pressplay.dev/component"] != "graph" {
            continue;
        }
        let list: Vec<serde_json::Value> = serde_json::from_str(doc["data"]["tasks.json"].as_str().unwrap()).unwrap();
        for record in list {
            let number = record["number"].as_str().unwrap().to_owned();
            assert!(out.insert(number.clone(), record).is_none(), "{path}: task {number} twice");
        }
    }
    out
}

/// The arguments a task Workflow starts with: parameter name → value.
pub fn task_arguments(files: &BTreeMap<String, String>, number: &str) -> BTreeMap<String, String> {
    let records = records(files);
    let record = records.get(number).unwrap_or_else(|| panic!("no record for task {number}"));
    record["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["value"].as_str().unwrap().to_owned()))
        .collect()
}

/// Every brief of a rendered tree's brief ConfigMaps (base64, as the agent reads it), by
/// (ConfigMap, task number).
pub fn briefs(files: &BTreeMap<String, String>) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (_, doc) in documents(files) {
        if doc["kind"] != "ConfigMap" || doc["metadata"]["labels"]["pressplay.dev/component"] != "briefs" {
            continue;
        }
        let map = doc["metadata"]["name"].as_str().unwrap().to_owned();
        for (key, value) in doc["data"].as_object().unwrap() {
            out.insert((map.clone(), key.clone()), value.as_str().unwrap().to_owned());
        }
    }
    out
}

/// The brief of one task, decoded: the ConfigMap and key its record names.
pub fn brief_of(files: &BTreeMap<String, String>, number: &str) -> serde_json::Value {
    use base64::Engine as _;
    let arguments = task_arguments(files, number);
    let text = &briefs(files)[&(arguments["brief-map"].clone(), number.to_owned())];
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
