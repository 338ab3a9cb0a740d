//! Argo's and Kubernetes' limits hold for backlogs of any size: at most 200 tasks per DAG and
//! 200 templates per spec, every object under 256 KiB of JSON, valid names, and every
//! dependency of the backlog still enforced somewhere in the nested DAGs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::{documents, render_text, synthetic_backlog};

const MAX_OBJECT_BYTES: usize = 256 * 1024;

fn check_limits(backlog: &str) -> pressplay::Generated {
    let generated = render_text(backlog).unwrap();
    for (path, doc) in documents(&generated.files) {
        let bytes = serde_json::to_vec(&doc).unwrap().len();
        assert!(bytes < MAX_OBJECT_BYTES, "{path} is {bytes} bytes of JSON");
        if doc["kind"] == "WorkflowTemplate" {
            let name = doc["metadata"]["name"].as_str().unwrap();
            assert!(name.len() <= 63 && pressplay::plan::names::is_valid_name(name), "{name}");
            let templates = doc["spec"]["templates"].as_array().unwrap();
            assert!(templates.len() <= 200, "{path}: {} templates", templates.len());
            for template in templates {
                if let Some(tasks) = template["dag"]["tasks"].as_array() {
                    assert!(!tasks.is_empty() && tasks.len() <= 200, "{path}: {} DAG tasks", tasks.len());
                    for task in tasks {
                        assert!(pressplay::plan::names::is_valid_name(task["name"].as_str().unwrap()));
                    }
                }
            }
        }
    }
    generated
}

/// Every backlog edge `a → b` must be enforced: either both are in the same DAG and `b`
/// depends on `a`, or some ancestor DAG node of `b` depends on an ancestor DAG node of `a`.
fn check_edges_enforced(generated: &pressplay::Generated) {
    let plan = &generated.planned.plan;
    // For each task and each DAG, the chain of (dag, node) containing it, innermost first.
    let mut parent: BTreeMap<usize, (usize, String)> = BTreeMap::new(); // dag index -> (parent dag, node name)
    let mut task_home: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    for (d, dag) in plan.dags.iter().enumerate() {
        for node in &dag.nodes {
            match node.target {
                pressplay::plan::NodeTarget::Task(t) => {
                    task_home.insert(t, (d, node.name.to_string()));
                }
                pressplay::plan::NodeTarget::Dag(child) => {
                    parent.insert(child, (d, node.name.to_string()));
                }
                pressplay::plan::NodeTarget::Noop => {}
            }
        }
    }
    let depends: BTreeSet<(usize, String, String)> = plan
        .dags
        .iter()
        .enumerate()
        .flat_map(|(d, dag)| {
            dag.nodes
                .iter()
                .flat_map(move |n| n.depends.iter().map(move |dep| (d, n.name.to_string(), dep.to_string())))
        })
        .collect();
    let chain = |start: (usize, String)| {
        let mut out = vec![start.clone()];
        let mut at = start.0;
        while let Some(p) = parent.get(&at) {
            out.push(p.clone());
            at = p.0;
        }
        out
    };
    for (b, task) in plan.tasks.iter().enumerate() {
        for &a in &task.dependencies {
            let chain_a = chain(task_home[&a].clone());
            let chain_b = chain(task_home[&b].clone());
            let enforced = chain_b.iter().any(|(dag_b, node_b)| {
                chain_a.iter().any(|(dag_a, node_a)| {
                    dag_a == dag_b && depends.contains(&(*dag_b, node_b.clone(), node_a.clone()))
                })
            });
            assert!(enforced, "edge {} -> {} is not enforced", plan.tasks[a].id, task.id);
        }
    }
}

#[test]
fn ten_thousand_tasks_fit_argo_limits() {
    let generated = check_limits(&synthetic_backlog(10_000, 3, 42));
    assert!(generated.planned.plan.stats.parts >= 50);
    check_edges_enforced(&generated);
}

#[test]
fn dense_dependencies_and_long_text_split_by_size_not_just_count() {
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
    let largest = generated.planned.plan.dags.iter().skip(1).map(|d| d.nodes.len()).max().unwrap();
    assert!(largest < 200, "parts were split by size, not only by count ({largest} tasks)");
    check_edges_enforced(&generated);
}

#[test]
fn two_hundred_tasks_stay_in_one_dag_and_two_hundred_one_do_not() {
    let at_limit = render_text(&synthetic_backlog(200, 2, 1)).unwrap();
    assert_eq!(at_limit.planned.plan.dags.len(), 1);
    let over = render_text(&synthetic_backlog(201, 2, 1)).unwrap();
    assert_eq!(over.planned.plan.dags.len(), 3, "orchestrator + two parts");
    check_edges_enforced(&over);
    let root: Value = serde_saphyr::from_str(&over.files["workflowtemplates/pressplay.yaml"]).unwrap();
    let nodes = root["spec"]["templates"][0]["dag"]["tasks"].as_array().unwrap();
    assert_eq!(nodes[0]["templateRef"]["name"], "pressplay-part-001");
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
