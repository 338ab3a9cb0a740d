//! Agent profiles: precedence (built-in < backlog < directory), and what reaches the manifests.

use serde_json::Value;

use crate::common::{diagnostics, root};

/// A manifest with its one unquoted placeholder filled, as YAML.
fn manifest(template: &Value) -> Value {
    let text = template["resource"]["manifest"].as_str().unwrap().replace("{{inputs.parameters.task-number}}", "1");
    serde_saphyr::from_str(&text).unwrap()
}

fn agent<'a>(stages: &'a Value, name: &str) -> &'a Value {
    stages["spec"]["templates"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()
}

#[test]
fn overrides_apply_field_by_field_in_order() {
    let case = root().join("tests/fixtures/profiles-override");
    let options = crate::fixtures::fixture_options(&case);
    let generated = pressplay::generate(&case.join("requirements.yaml"), "requirements.yaml", &options)
        .unwrap_or_else(|e| panic!("{}", diagnostics(&e)));
    let lint = &generated.planned.plan.profiles[&pressplay::spec::AgentRole::Stage(pressplay::spec::StageName::Lint)];
    assert_eq!(lint.model, "directory-model", "the directory wins over the backlog");
    assert_eq!(lint.retries, 5, "the directory's field");
    assert_eq!(lint.timeout_seconds, 20 * 60, "the backlog's field, not overridden by the directory");
    assert_eq!(lint.gates, ["make lint"], "the backlog's list replaces the built-in one");
    assert_eq!(lint.github_app, "pressplay-lint", "the built-in field stays");

    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/pressplay-stages.yaml"]).unwrap();
    let template = agent(&stages, "coderun-lint");
    assert_eq!(template["activeDeadlineSeconds"], 1200);
    assert_eq!(template["retryStrategy"]["limit"], 5);
    assert_eq!(manifest(template)["spec"]["model"], "directory-model");
    let author = manifest(agent(&stages, "coderun-author"));
    assert_eq!(author["spec"]["githubApp"], "acme-author");
    assert_eq!(author["spec"]["localTools"], "filesystem");
    assert_eq!(author["spec"]["remoteTools"], "github", "the built-in remote tools stay");
}

#[test]
fn gates_reach_the_agent_and_every_stage_has_metrics() {
    let generated = crate::common::render_text("tasks:\n  - id: 1\n    title: One\n").unwrap();
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/pressplay-stages.yaml"]).unwrap();
    let lint = agent(&stages, "coderun-lint");
    let manifest = lint["resource"]["manifest"].as_str().unwrap();
    let gates_b64 =
        manifest.lines().find_map(|l| l.trim().strip_prefix("PRESSPLAY_GATES_B64: ")).unwrap().trim_matches('"');
    use base64::Engine as _;
    let gates: Vec<String> =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(gates_b64).unwrap()).unwrap();
    assert!(gates.iter().any(|g| g == "cargo clippy --all-targets --all-features -- -D warnings -W clippy::pedantic"));
    assert!(gates.iter().any(|g| g == "cargo fmt --all -- --check"));
    let agents = stages["spec"]["templates"].as_array().unwrap().iter().filter(|t| {
        let name = t["name"].as_str().unwrap();
        name.starts_with("coderun-") || name.starts_with("docsrun-")
    });
    for template in agents {
        let metrics: Vec<&str> =
            template["metrics"]["prometheus"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
        assert_eq!(
            metrics,
            ["pressplay_stage_duration_seconds", "pressplay_stage_result_total"],
            "no `{{retries}}`: a retried attempt has none"
        );
        let outputs: Vec<&str> =
            template["outputs"]["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(outputs, ["resource-name", "pr-url"]);
        assert!(
            template["resource"]["manifest"].as_str().unwrap().contains("OTEL_RESOURCE_ATTRIBUTES")
                || template["resource"]["manifest"].as_str().unwrap().contains("kind: \"DocsRun\"")
        );
    }
}

#[test]
fn docs_tasks_skip_deploy_unless_told_otherwise() {
    let generated = crate::common::render_text("tasks:\n  - id: 1\n    title: Docs\n    kind: docs\n").unwrap();
    let chain = &generated.planned.plan.chains[0];
    assert!(!chain.stages.contains(&pressplay::spec::StageName::Deploy));
    let explicit = crate::common::render_text(
        "defaults:\n  docsPipeline: [author, deploy]\ntasks:\n  - id: 1\n    title: Docs\n    kind: docs\n",
    )
    .unwrap();
    assert!(explicit.planned.plan.chains[0].stages.contains(&pressplay::spec::StageName::Deploy));
}

/// Renders a one-task backlog with `--profiles p` holding one file, expecting an error.
fn with_profile_file(path: &str, text: &str) -> pressplay::Error {
    let backlog = "tasks:\n  - id: 1\n    title: One\n";
    crate::common::render_files(&[("requirements.yaml", backlog), (path, text)], "requirements.yaml", |options, dir| {
        options.load.profiles = Some(dir.join("p"));
    })
    .unwrap_err()
}

#[test]
fn an_unknown_profile_file_is_an_error() {
    let err = with_profile_file("p/linter.yaml", "model: x\n");
    let text = diagnostics(&err);
    assert!(text.contains("unknown profile `linter`") && text.contains("did you mean `lint.yaml`?"), "{text}");
}

#[test]
fn every_problem_in_a_profiles_file_is_reported_with_its_line() {
    let err = with_profile_file("p/lint.yaml", "timeout: soon\nretries: 50\nresources:\n  cpu: lots\n");
    let text = diagnostics(&err);
    for expected in ["lint.yaml:1:10", "lint.yaml:2:10", "lint.yaml:4:8", "`lots` is not a Kubernetes quantity"] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}
