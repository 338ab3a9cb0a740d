//! End-to-end runs of the binary: exit codes, what goes to stdout and stderr, and what is
//! (not) written.

use std::fs;
use std::path::Path;

use assert_cmd::Command;

use crate::common::root;

fn pressplay(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("pressplay").unwrap();
    cmd.current_dir(dir);
    cmd
}

/// A temp dir holding `requirements.yaml` with `text`.
fn workspace(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("requirements.yaml"), text).unwrap();
    dir
}

const TWO_TASKS: &str = "tasks:\n  - id: 1\n    title: One\n  - id: 2\n    title: Two\n    dependencies: [1]\n";

fn code(output: &std::process::Output) -> i32 {
    output.status.code().unwrap()
}

#[test]
fn render_then_check_is_clean_and_stale_check_shows_a_diff_and_writes_nothing() {
    let ws = workspace(TWO_TASKS);
    let out = pressplay(ws.path()).args(["render", "requirements.yaml", "-o", "deploy"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(ws.path().join("deploy/kustomization.yaml").exists());

    let out = pressplay(ws.path()).args(["render", "requirements.yaml", "-o", "deploy", "--check"]).output().unwrap();
    assert_eq!(code(&out), 0);
    assert!(out.stdout.is_empty());

    // A third task makes the tree stale.
    fs::write(ws.path().join("requirements.yaml"), format!("{TWO_TASKS}  - id: 3\n    title: Three\n")).unwrap();
    let before = fs::read_to_string(ws.path().join("deploy/config/pressplay-graph-0.yaml")).unwrap();
    let out = pressplay(ws.path()).args(["render", "requirements.yaml", "-o", "deploy", "--check"]).output().unwrap();
    assert_eq!(code(&out), 1);
    let diff = String::from_utf8(out.stdout).unwrap();
    assert!(diff.contains("--- a/config/pressplay-graph-0.yaml"), "{diff}");
    assert!(diff.contains("+++ b/config/pressplay-graph-0.yaml"), "{diff}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is stale"));
    let after = fs::read_to_string(ws.path().join("deploy/config/pressplay-graph-0.yaml")).unwrap();
    assert_eq!(before, after, "--check must not write");
}

#[test]
fn the_same_file_named_two_ways_renders_the_same_bytes() {
    let ws = workspace(TWO_TASKS);
    let out = pressplay(ws.path()).args(["render", "requirements.yaml", "-o", "deploy"]).output().unwrap();
    assert_eq!(code(&out), 0);
    let out = pressplay(ws.path()).args(["render", "./requirements.yaml", "-o", "deploy", "--check"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn check_of_a_missing_directory_reports_every_file_as_added() {
    let ws = workspace(TWO_TASKS);
    let out = pressplay(ws.path()).args(["render", "requirements.yaml", "-o", "nowhere", "--check"]).output().unwrap();
    assert_eq!(code(&out), 1);
    assert!(!ws.path().join("nowhere").exists());
    assert!(String::from_utf8_lossy(&out.stdout).contains("+++ b/kustomization.yaml"));
}

#[test]
fn stdout_streams_installable_documents_by_kind_then_name() {
    let ws = workspace(TWO_TASKS);
    let out = pressplay(ws.path()).args(["render", "requirements.yaml", "--stdout"]).output().unwrap();
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    let kinds: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("kind: ")).collect();
    let rank = |kind: &str| pressplay::output::layout::KIND_ORDER.iter().position(|k| *k == kind).unwrap();
    assert!(kinds.windows(2).all(|w| rank(w[0]) <= rank(w[1])), "not ordered by kind: {kinds:?}");
    for kind in ["ServiceAccount", "ConfigMap", "Role", "RoleBinding", "EventSource", "Sensor", "WorkflowTemplate"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("  name: ")).collect();
    let sensors: Vec<&str> =
        names.iter().copied().filter(|n| n.contains("pressplay-play") || n.contains("-merge")).collect();
    assert!(!sensors.is_empty());
    assert!(!text.contains("kind: Workflow\n"), "the run Workflow must not be applied by a stream");
    assert_eq!(text.matches("\n---\n").count(), kinds.len() - 1);
    assert!(!ws.path().join("deploy").exists());
}

#[test]
fn validate_reports_every_problem_with_position_and_exits_2() {
    let ws = workspace(
        "tasks:\n  - id: 1\n    title: One\n    dependencies: [3]\n  - id: 1\n    title: Dup\n  - id: 5\n    title: Five\n    dependencies: [6]\n  - id: 6\n    title: Six\n    dependencies: [5]\n",
    );
    let out = pressplay(ws.path()).args(["validate", "requirements.yaml"]).output().unwrap();
    assert_eq!(code(&out), 2);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("requirements.yaml:4:20"), "{err}");
    assert!(err.contains("task `1` depends on unknown task `3`"), "{err}");
    assert!(err.contains("duplicate task id `1`"), "{err}");
    assert!(err.contains("dependency cycle: `5` → `6` → `5`"), "{err}");
    assert!(err.contains("has 3 problems"), "{err}");
}

#[test]
fn bad_input_writes_nothing() {
    let ws = workspace("tasks:\n  - id: 1\n    title: One\n    dependencies: [2]\n");
    let out = pressplay(ws.path()).args(["render", "requirements.yaml", "-o", "deploy"]).output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(!ws.path().join("deploy").exists());
}

#[test]
fn missing_file_and_bad_arguments_exit_2() {
    let ws = tempfile::tempdir().unwrap();
    let out = pressplay(ws.path()).args(["validate", "nope.yaml"]).output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read `nope.yaml`"));
    let out = pressplay(ws.path()).args(["render", "x.yaml"]).output().unwrap();
    assert_eq!(code(&out), 2, "render needs -o or --stdout");
}

#[test]
fn schema_is_json_schema_that_lists_the_task_fields() {
    let out = pressplay(&root()).arg("schema").output().unwrap();
    assert_eq!(code(&out), 0);
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let task = &schema["$defs"]["RawTask"]["properties"];
    for field in ["id", "title", "dependencies", "kind", "pipeline", "priority"] {
        assert!(task.get(field).is_some(), "schema lacks task field {field}");
    }
    assert_eq!(schema["$defs"]["RawTask"]["additionalProperties"], false);
}

#[test]
fn graph_prints_dot_and_mermaid_edges() {
    let ws = workspace(TWO_TASKS);
    let out = pressplay(ws.path()).args(["graph", "requirements.yaml", "--format", "dot"]).output().unwrap();
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph backlog {"), "{dot}");
    assert!(dot.contains("\"t-1\" -> \"t-2\";"), "{dot}");
    let out = pressplay(ws.path()).args(["graph", "requirements.yaml", "--format", "mermaid"]).output().unwrap();
    let mermaid = String::from_utf8(out.stdout).unwrap();
    assert!(mermaid.contains("t_1 --> t_2"), "{mermaid}");
    assert!(mermaid.contains("t_2[\"2: Two\"]"), "{mermaid}");
}

#[test]
fn plan_prints_levels_critical_path_and_how_tasks_run() {
    let ws = workspace(TWO_TASKS);
    let out = pressplay(ws.path()).args(["plan", "requirements.yaml"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2 tasks to run in 2 levels"), "{text}");
    assert!(text.contains("critical path: 2 tasks, 10 agent stages (1 → 2)"), "{text}");
    assert!(text.contains("runs: one Workflow per task"), "{text}");
    assert!(text.contains("at most 100 open at once"), "{text}");
    assert!(text.contains("    1: 1 task: 2"), "{text}");
}

#[test]
fn plan_reports_the_packed_config_maps() {
    let ws = workspace(&crate::common::synthetic_backlog(4500, 2, 3));
    let out = pressplay(ws.path()).args(["plan", "requirements.yaml"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("task graph in 12 ConfigMaps, briefs in 3 ConfigMaps"), "{text}");
}

#[test]
fn completions_are_printed() {
    let out = pressplay(&root()).args(["completions", "bash"]).output().unwrap();
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("_pressplay()"));
}

#[test]
fn template_overrides_replace_built_in_templates_and_their_errors_are_the_users() {
    let ws = workspace(TWO_TASKS);
    let dir = ws.path().join("tpl/workflows");
    fs::create_dir_all(&dir).unwrap();
    let original = include_str!("../templates/workflows/run.yaml.j2");
    fs::write(dir.join("run.yaml.j2"), original.replace("spec:", "# overridden\nspec:")).unwrap();
    let out = pressplay(ws.path())
        .args(["render", "requirements.yaml", "-o", "deploy", "--templates", "tpl"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(fs::read_to_string(ws.path().join("deploy/run/pressplay.yaml")).unwrap().contains("# overridden"));

    fs::write(dir.join("run.yaml.j2"), "[[ no_such_value ]]\n").unwrap();
    let out =
        pressplay(ws.path()).args(["render", "requirements.yaml", "--stdout", "--templates", "tpl"]).output().unwrap();
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("template `workflows/run.yaml.j2` failed to render") && !err.contains("internal error"),
        "{err}"
    );
}
