//! Real GitHub payloads through the rendered Sensors, under the Argo Events model
//! (`pressplay::model::events`): the examples of GitHub's webhook documentation, from the npm
//! package `@octokit/webhooks-examples`, adapted to the example project (repository, branch,
//! labels) case by case.
//!
//! The package is not part of the repository: `.ci/run` installs it into `target/npm` (or point
//! `PRESSPLAY_WEBHOOK_EXAMPLES` at its `api.github.com/index.json`). Without it these tests say
//! so and pass over; the hand-made payloads in `tests/runtime.rs` always run.

use std::collections::BTreeMap;

use pressplay::model::events::dispatch;
use pressplay::model::sim::Trigger;
use serde_json::{Value, json};

use crate::common::{render_file, root};

const REPOSITORY: &str = "acme/shop-api";

/// The examples by event name, when the package is installed.
fn examples() -> Option<BTreeMap<String, Vec<Value>>> {
    let path = std::env::var_os("PRESSPLAY_WEBHOOK_EXAMPLES").map(std::path::PathBuf::from).unwrap_or_else(|| {
        root().join("target/npm/node_modules/@octokit/webhooks-examples/api.github.com/index.json")
    });
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {} is not there (.ci/run installs @octokit/webhooks-examples)", path.display());
        return None;
    };
    let index: Vec<Value> = serde_json::from_str(&text).expect("the package's index is JSON");
    Some(
        index
            .into_iter()
            .map(|entry| (entry["name"].as_str().unwrap().to_string(), entry["examples"].as_array().unwrap().clone()))
            .collect(),
    )
}

/// The basic example's Sensors.
fn sensors() -> Vec<Value> {
    let files = render_file(&root().join("examples/basic/requirements.yaml"), "examples/basic/requirements.yaml").unwrap().files;
    files
        .iter()
        .filter(|(path, _)| path.starts_with("events/sensor-"))
        .map(|(_, text)| serde_saphyr::from_str(text).unwrap())
        .collect()
}

/// Sets a JSON pointer, creating objects on the way.
fn set(value: &mut Value, pointer: &str, to: Value) {
    let mut current = value;
    for part in pointer.trim_start_matches('/').split('/') {
        if !current.is_object() {
            *current = json!({});
        }
        current = current.as_object_mut().unwrap().entry(part.to_string()).or_insert(Value::Null);
    }
    *current = to;
}

/// The example made to come from the project's own repository.
fn ours(mut payload: Value) -> Value {
    set(&mut payload, "/repository/full_name", json!(REPOSITORY));
    payload
}

/// Sensor → what its triggers did (k8s objects, http payloads, or why they failed).
fn fired(event: &str, payload: &Value) -> BTreeMap<String, Vec<Trigger>> {
    let mut out: BTreeMap<String, Vec<Trigger>> = BTreeMap::new();
    for trigger in dispatch(&sensors(), event, "72d3162e-cc78-11e3-81ab-4c9367dc0958", payload) {
        let sensor = match &trigger {
            Trigger::K8s { sensor, .. } | Trigger::Http { sensor, .. } | Trigger::Failed { sensor, .. } | Trigger::Dropped { sensor, .. } => sensor.clone(),
        };
        out.entry(sensor).or_default().push(trigger);
    }
    out
}

/// The task number a k8s trigger passed to the workflow it creates, or the state it wrote.
fn task_of(trigger: &Trigger) -> Option<String> {
    match trigger {
        Trigger::K8s { object, .. } if object["kind"] == "Workflow" => {
            object.pointer("/spec/arguments/parameters/0/value").and_then(Value::as_str).map(str::to_string)
        }
        Trigger::K8s { object, .. } => object.pointer("/data/task-number").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn started(fired: &BTreeMap<String, Vec<Trigger>>, sensor: &str) -> Vec<String> {
    fired.get(sensor).into_iter().flatten().filter_map(task_of).collect()
}

#[test]
fn merged_and_closed_pull_requests_on_task_branches_are_recorded() {
    let Some(examples) = examples() else { return };
    let closed: Vec<&Value> = examples["pull_request"].iter().filter(|e| e["action"] == "closed").collect();
    assert!(!closed.is_empty());
    for example in closed {
        for (branch, number) in [("task/7", "7"), ("task/7-add+health#@é", "7"), ("task/12-x", "12")] {
            for merged in [true, false] {
                let mut payload = ours(example.clone());
                set(&mut payload, "/pull_request/merged", json!(merged));
                set(&mut payload, "/pull_request/head/ref", json!(branch));
                set(&mut payload, "/pull_request/head/repo/full_name", json!(REPOSITORY));
                set(&mut payload, "/pull_request/base/ref", json!("main"));
                let fired = fired("pull_request", &payload);
                let (record, other) = if merged { ("shop-api-merge", "shop-api-merge-closed") } else { ("shop-api-merge-closed", "shop-api-merge") };
                assert_eq!(started(&fired, record), [number], "{branch} merged={merged}: {fired:?}");
                assert!(started(&fired, other).is_empty());
                let Some(Trigger::K8s { object, .. }) = fired[record].first() else { panic!() };
                assert_eq!(object["metadata"]["name"], format!("shop-api-task-{number}"));
                assert_eq!(object["data"]["merged"], if merged { "true" } else { "closed" });
                let Some(Trigger::Http { payload: body, .. }) = fired["shop-api-merge-wake"].first() else { panic!("{fired:?}") };
                assert!(body["nodeFieldSelector"].as_str().unwrap().ends_with(&format!("task-number.value={number}")));
            }
        }
        // A fork's branch of the same name is not the task's.
        let mut fork = ours(example.clone());
        set(&mut fork, "/pull_request/head/ref", json!("task/7"));
        set(&mut fork, "/pull_request/head/repo/full_name", json!("mallory/shop-api"));
        set(&mut fork, "/pull_request/base/ref", json!("main"));
        assert!(fired("pull_request", &fork).values().flatten().all(|t| matches!(t, Trigger::Dropped { .. })));
    }
}

fn comment_on_task_pr(example: &Value, body: &str) -> Value {
    let mut payload = ours(example.clone());
    set(&mut payload, "/issue/pull_request/url", json!("https://api.github.com/repos/acme/shop-api/pulls/1007"));
    set(&mut payload, "/issue/labels", json!([{"name": "bug"}, {"name": "task-force"}, {"name": "task-7"}]));
    set(&mut payload, "/comment/body", json!(body));
    set(&mut payload, "/comment/author_association", json!("MEMBER"));
    set(&mut payload, "/sender/type", json!("User"));
    set(&mut payload, "/sender/login", json!("maintainer"));
    payload
}

#[test]
fn comments_go_to_the_agent_or_press_play_by_one_rule() {
    let Some(examples) = examples() else { return };
    let created: Vec<&Value> = examples["issue_comment"].iter().filter(|e| e["action"] == "created").collect();
    assert!(!created.is_empty());
    for example in created {
        for (body, play, agent) in [
            ("Please rename the handler.", false, true),
            ("/play", true, false),
            ("/play\r\n", true, false),
            ("  /play \n", true, false),
            ("/play\nand rename the handler", false, true),
            ("/playground is broken", false, true),
        ] {
            let fired = fired("issue_comment", &comment_on_task_pr(example, body));
            assert_eq!(fired.get("shop-api-play-comment").is_some_and(|t| matches!(t[0], Trigger::K8s { .. })), play, "{body:?}: {fired:?}");
            let fix = started(&fired, "shop-api-pr-comment");
            assert_eq!(!fix.is_empty(), agent, "{body:?}: {fired:?}");
            if agent {
                assert_eq!(fix, ["7"], "the `task-7` label, not `task-force`");
            }
        }
    }
}

#[test]
fn ci_failures_start_the_fixer_whatever_optional_fields_the_payload_lacks() {
    let Some(examples) = examples() else { return };
    let mut seen_without = (false, false);
    for example in &examples["check_run"] {
        let mut payload = ours(example.clone());
        set(&mut payload, "/action", json!("completed"));
        set(&mut payload, "/check_run/conclusion", json!("failure"));
        set(&mut payload, "/check_run/check_suite/head_branch", json!("task/7-fix@it"));
        seen_without.0 |= example.pointer("/check_run/app/slug").is_none();
        let actions = example.pointer("/check_run/app/slug").and_then(Value::as_str) == Some("github-actions");
        let fired = fired("check_run", &payload);
        if actions {
            assert!(started(&fired, "shop-api-ci-check").is_empty(), "Actions failures come as workflow_run");
        } else {
            assert_eq!(started(&fired, "shop-api-ci-check"), ["7"], "{fired:?}");
        }
    }
    for example in &examples["workflow_run"] {
        let mut payload = ours(example.clone());
        set(&mut payload, "/action", json!("completed"));
        set(&mut payload, "/workflow_run/conclusion", json!("failure"));
        set(&mut payload, "/workflow_run/head_branch", json!("task/7"));
        seen_without.1 |= example.pointer("/workflow_run/actor").is_none();
        assert_eq!(started(&fired("workflow_run", &payload), "shop-api-ci-workflow-run"), ["7"]);
    }
    assert_eq!(seen_without, (true, true), "the examples include a check run without app slug and a run without actor");
}

#[test]
fn a_review_with_text_reaches_the_pr_comment_agent() {
    let Some(examples) = examples() else { return };
    for example in examples["pull_request_review"].iter().filter(|e| e["action"] == "submitted") {
        let mut payload = ours(example.clone());
        set(&mut payload, "/pull_request/head/ref", json!("task/7"));
        set(&mut payload, "/pull_request/head/repo/full_name", json!(REPOSITORY));
        set(&mut payload, "/review/author_association", json!("OWNER"));
        set(&mut payload, "/sender/type", json!("User"));
        for (state, body, expected) in [("changes_requested", json!("Use a constant."), true), ("approved", json!(null), false), ("commented", json!("  "), false)] {
            set(&mut payload, "/review/state", json!(state));
            set(&mut payload, "/review/body", body);
            assert_eq!(started(&fired("pull_request_review", &payload), "shop-api-review") == ["7"], expected, "{state}");
        }
    }
}

#[test]
fn a_push_that_adds_or_changes_the_backlog_presses_play() {
    let Some(examples) = examples() else { return };
    let backlog = "examples/basic/requirements.yaml";
    for example in &examples["push"] {
        for key in ["added", "modified"] {
            let mut payload = ours(example.clone());
            set(&mut payload, "/ref", json!("refs/heads/main"));
            set(&mut payload, "/sender/type", json!("User"));
            set(&mut payload, "/sender/login", json!("maintainer"));
            let commit = json!({"id": "0123456789abcdef0123456789abcdef01234567", "added": [], "removed": [], "modified": [], key: [backlog]});
            set(&mut payload, "/commits", json!([commit]));
            let fired = fired("push", &payload);
            let sensor = if key == "added" { "shop-api-play-push-added" } else { "shop-api-play-push" };
            assert!(fired.get(sensor).is_some_and(|t| matches!(t[0], Trigger::K8s { .. })), "{key}: {fired:?}");
        }
    }
}

#[test]
fn untouched_examples_start_nothing() {
    let Some(examples) = examples() else { return };
    // Every example as GitHub documents it, only the repository made ours: none is on a task
    // branch or from a trusted author with a task label, so no agent and no run starts.
    for (event, list) in &examples {
        for example in list {
            for trigger in dispatch(&sensors(), event, "d", &ours(example.clone())) {
                if let Trigger::K8s { object, sensor, .. } = &trigger {
                    assert_ne!(object["kind"], "Workflow", "{sensor} started a workflow on an untouched `{event}` example");
                }
            }
        }
    }
}
