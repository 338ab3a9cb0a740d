//! Argo's and Kubernetes' limits hold for backlogs of any size: at most 200 templates per spec,
//! every object under 256 KiB of JSON, valid names; and the precedence the rendered tree
//! enforces is exactly the backlog's: each task's record names its dependencies and nothing else.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::{documents, records, render_text, synthetic_backlog};

const MAX_OBJECT_BYTES: usize = 256 * 1024;

fn check_limits(backlog: &str) -> pressplay::Generated {
    let generated = render_text(backlog).unwrap();
    for (path, doc) in documents(&generated.files) {
        let bytes = serde_json::to_vec(&doc).unwrap().len();
        assert!(bytes < MAX_OBJECT_BYTES, "{path} is {bytes} bytes of JSON");
        if let Some(name) = doc["metadata"]["name"].as_str() {
            assert!(name.len() <= 63 && pressplay::plan::names::is_valid_name(name), "{name}");
        }
        if doc["kind"] == "WorkflowTemplate" {
            let templates = doc["spec"]["templates"].as_array().unwrap();
            assert!(templates.len() <= 200, "{path}: {} templates", templates.len());
        }
    }
    generated
}

/// The backlog's edges (ids are numbers here) against the tree's: equal, at any size.
fn check_precedence_is_the_backlog(backlog: &str, generated: &pressplay::Generated) {
    let raw: Value = serde_saphyr::from_str(backlog).unwrap();
    let expected: BTreeMap<String, BTreeSet<String>> = raw["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let deps = t["dependencies"].as_array().unwrap().iter().map(|d| d.to_string()).collect();
            (t["id"].to_string(), deps)
        })
        .collect();
    let found: BTreeMap<String, BTreeSet<String>> = records(&generated.files)
        .into_iter()
        .map(|(n, record)| {
            (n, record["deps"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect())
        })
        .collect();
    assert_eq!(found.len(), expected.len(), "every task has one record");
    for (task, deps) in &expected {
        assert_eq!(found.get(task), Some(deps), "task {task} waits for exactly its dependencies");
    }
}

/// Every record starts a chain the stages template has, with every input it needs.
fn check_records_start_real_templates(generated: &pressplay::Generated) {
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/pressplay-stages.yaml"]).unwrap();
    let templates: BTreeMap<&str, &Value> =
        stages["spec"]["templates"].as_array().unwrap().iter().map(|t| (t["name"].as_str().unwrap(), t)).collect();
    for (number, record) in records(&generated.files) {
        let entry = templates.get(record["entrypoint"].as_str().unwrap()).unwrap_or_else(|| panic!("task {number}"));
        let given: BTreeSet<&str> =
            record["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        for input in entry["inputs"]["parameters"].as_array().unwrap() {
            let name = input["name"].as_str().unwrap();
            assert!(given.contains(name) || input.get("default").is_some(), "task {number} lacks `{name}`");
        }
    }
}

#[test]
fn ten_thousand_tasks_fit_argo_limits_and_keep_their_exact_order() {
    let backlog = synthetic_backlog(10_000, 3, 42);
    let generated = check_limits(&backlog);
    check_precedence_is_the_backlog(&backlog, &generated);
    check_records_start_real_templates(&generated);
    // Nothing about the run grows with the backlog but the packed ConfigMaps (and the
    // dispatcher's one volume per graph ConfigMap).
    let stages = &generated.files["workflowtemplates/pressplay-stages.yaml"];
    let small = render_text(&synthetic_backlog(10, 3, 42)).unwrap();
    let small_stages = &small.files["workflowtemplates/pressplay-stages.yaml"];
    let maps = generated.planned.plan.graph_maps.len();
    assert!(stages.len() < small_stages.len() + maps * 200, "the stages template grew with the backlog");
    assert_eq!(
        generated.files["workflowtemplates/pressplay.yaml"],
        small.files["workflowtemplates/pressplay.yaml"].replace("\"10\"", "\"10000\"")
    );
}

#[test]
fn random_dags_render_exactly_their_edges() {
    for (n, fan, seed) in [(1, 0, 1), (50, 5, 2), (700, 8, 3), (5000, 4, 4)] {
        let backlog = synthetic_backlog(n, fan, seed);
        let generated = render_text(&backlog).unwrap();
        check_precedence_is_the_backlog(&backlog, &generated);
    }
}

#[test]
fn dense_dependencies_and_long_text_pack_by_size() {
    // Every task depends on up to 60 earlier ones and carries 1 KB of description.
    let mut backlog = String::from("tasks:\n");
    let text = "x".repeat(1000);
    for i in 1..=600usize {
        let deps: Vec<String> = (i.saturating_sub(60).max(1)..i).map(|d| d.to_string()).collect();
        backlog.push_str(&format!(
            "  - id: {i}\n    title: T\n    description: {text}\n    dependencies: [{}]\n",
            deps.join(", ")
        ));
    }
    let generated = check_limits(&backlog);
    assert!(generated.planned.plan.brief_maps.len() >= 3, "briefs were packed by size");
    check_precedence_is_the_backlog(&backlog, &generated);
}

#[test]
fn a_task_too_large_for_any_object_is_an_error_not_a_broken_render() {
    let text = format!("tasks:\n  - id: 1\n    title: Big\n    details: \"{}\"\n", "x".repeat(300 * 1024));
    let err = render_text(&text).unwrap_err();
    let message = crate::common::diagnostics(&err);
    assert!(message.contains("task `1` carries") && message.contains("requirements.yaml:2:9"), "{message}");
}

#[test]
fn too_many_distinct_pipelines_is_an_error_not_an_oversized_template() {
    let stages = ["author", "lint", "tests", "deploy", "acceptance"];
    let mut text = String::from("tasks:\n");
    let mut n = 0;
    // Ordered pairs and triples of distinct stages: far more than fit.
    for a in stages {
        for b in stages.iter().filter(|b| **b != a) {
            for c in stages.iter().filter(|c| **c != a && *c != b) {
                n += 1;
                text.push_str(&format!("  - id: {n}\n    title: T\n    pipeline: [{a}, {b}, {c}]\n"));
            }
        }
    }
    for kind in ["code", "docs"] {
        let with_kind = text.replace("    title: T\n", &format!("    title: T\n    kind: {kind}\n"));
        let err = render_text(&with_kind);
        if kind == "code" {
            // 60 pipelines fit.
            assert!(err.is_ok(), "{}", crate::common::diagnostics(&err.unwrap_err()));
        }
    }
    let docs = text
        .replacen("tasks:\n", "", 1)
        .replace("  - id: ", "  - id: d")
        .replace("    title: T\n", "    title: T\n    kind: docs\n");
    let both = text.clone() + &docs;
    let err = render_text(&both).unwrap_err();
    assert!(
        crate::common::diagnostics(&err).contains("120 different pipelines"),
        "{}",
        crate::common::diagnostics(&err)
    );
}
