//! GitHub deliveries through the rendered EventSource and Sensors of the basic example, under
//! the Argo Events model (`pressplay::model::events`).
//!
//! Two sources of payloads:
//! * small hand-made ones, which always run;
//! * the examples of GitHub's webhook documentation, from the npm package
//!   `@octokit/webhooks-examples`, adapted case by case (repository, branch, labels, author).
//!   The package is not part of the repository: `.ci/run` installs it into `target/npm`, or
//!   `PRESSPLAY_WEBHOOK_EXAMPLES` names its `api.github.com/index.json`. Without it those tests
//!   say so and pass.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use pressplay::model::events::{Action, Delivery, Outcome, deliver};
use serde_json::{Value, json};

use crate::common::{render_file, root};

const REPOSITORY: &str = "acme/shop-api";
const BACKLOG: &str = "examples/basic/requirements.yaml";

/// The basic example's EventSource and Sensors, rendered once.
fn docs() -> &'static [Value] {
    static DOCS: OnceLock<Vec<Value>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let files = render_file(&root().join(BACKLOG), BACKLOG).unwrap().files;
        files
            .iter()
            .filter(|(path, _)| path.starts_with("events/sensor-") || path.starts_with("events/eventsource-"))
            .map(|(_, text)| serde_saphyr::from_str(text).unwrap())
            .collect()
    })
}

/// The examples by event name, when the package is installed.
fn examples() -> Option<&'static BTreeMap<String, Vec<Value>>> {
    static EXAMPLES: OnceLock<Option<BTreeMap<String, Vec<Value>>>> = OnceLock::new();
    EXAMPLES
        .get_or_init(|| {
            let path =
                std::env::var_os("PRESSPLAY_WEBHOOK_EXAMPLES").map(std::path::PathBuf::from).unwrap_or_else(|| {
                    root().join("target/npm/node_modules/@octokit/webhooks-examples/api.github.com/index.json")
                });
            let Ok(text) = std::fs::read_to_string(&path) else {
                eprintln!(
                    "skipping: {} is not installed (.ci/run installs @octokit/webhooks-examples)",
                    path.display()
                );
                return None;
            };
            let index: Vec<Value> = serde_json::from_str(&text).expect("the package's index is JSON");
            Some(
                index
                    .into_iter()
                    .map(|e| (e["name"].as_str().unwrap().to_string(), e["examples"].as_array().unwrap().clone()))
                    .collect(),
            )
        })
        .as_ref()
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

/// The payload made to come from the project's repository, sent by a person.
fn ours(mut payload: Value) -> Value {
    set(&mut payload, "/repository/full_name", json!(REPOSITORY));
    set(&mut payload, "/sender/type", json!("User"));
    set(&mut payload, "/sender/login", json!("maintainer"));
    payload
}

fn send(event: &str, body: &Value) -> Outcome {
    let outcome = deliver(
        docs(),
        &Delivery { event: event.into(), id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(), body: body.clone() },
    );
    assert!(outcome.not_sent.is_empty(), "the hook receives `{event}`: {:?}", outcome.not_sent);
    outcome
}

/// What each Sensor did: the task number of the Workflow it created or the state it wrote, or
/// `http` for a wake-up.
fn effects(outcome: &Outcome) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for fired in &outcome.fired {
        let effect = match &fired.action {
            Ok(Action::K8s { object, .. }) if object["kind"] == "Workflow" => {
                let args = object.pointer("/spec/arguments/parameters/0/value").and_then(Value::as_str);
                args.map_or_else(|| "run".to_string(), str::to_string)
            }
            Ok(Action::K8s { object, .. }) => object["data"]["task-number"].as_str().unwrap_or("?").to_string(),
            Ok(Action::Http { .. }) => "http".into(),
            Err(e) => panic!("{} {} failed: {e}", fired.sensor, fired.trigger),
        };
        out.entry(fired.sensor.clone()).or_default().push(effect);
    }
    out
}

/// No dependency may drop an event with a filtering error: every filter path exists in every
/// payload GitHub sends for that event.
fn no_filter_errors(event: &str, outcome: &Outcome) {
    for dropped in &outcome.dropped {
        assert!(!dropped.error, "{} dropped `{event}` with an error: {}", dropped.sensor, dropped.reason);
    }
}

fn sensor(name: &str) -> String {
    format!("shop-api-{name}")
}

// ---------------------------------------------------------------------------------------------
// Hand-made payloads (always run)

fn pr_comment(body: &str, labels: &[&str]) -> Value {
    ours(json!({
        "action": "created",
        "issue": {
            "number": 1007,
            "html_url": format!("https://github.com/{REPOSITORY}/pull/1007"),
            "pull_request": {"url": format!("https://api.github.com/repos/{REPOSITORY}/pulls/1007")},
            "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        },
        "comment": {"body": body, "author_association": "MEMBER"},
    }))
}

#[test]
fn a_label_that_starts_like_a_task_label_does_not_hide_the_task_label() {
    let outcome = send("issue_comment", &pr_comment("Please rename the handler.", &["task-force", "task-7"]));
    assert_eq!(effects(&outcome)[&sensor("pr-comment")], ["7"]);
    let outcome = send("issue_comment", &pr_comment("Please rename the handler.", &["task-force", "task-7x"]));
    assert!(!effects(&outcome).contains_key(&sensor("pr-comment")), "no label is exactly task-<n>");
    no_filter_errors("issue_comment", &outcome);
}

#[test]
fn a_comment_is_a_command_only_when_it_is_play_and_nothing_else() {
    for (body, play) in [
        ("/play", true),
        ("/play\r\n", true),
        ("\n  /play \t\r\n", true),
        ("/play\nand rename the handler", false),
        ("/playground is broken", false),
        ("please /play", false),
        ("Please rename the handler.", false),
    ] {
        let outcome = send("issue_comment", &pr_comment(body, &["task-7"]));
        let effects = effects(&outcome);
        assert_eq!(effects.contains_key(&sensor("play-comment")), play, "{body:?}: {effects:?}");
        assert_eq!(effects.contains_key(&sensor("pr-comment")), !play, "{body:?}: exactly one of the two");
        no_filter_errors("issue_comment", &outcome);
    }
}

#[test]
fn a_comment_on_a_plain_issue_is_no_pr_comment_and_no_filter_error() {
    let mut comment = pr_comment("Please rename the handler.", &["task-7"]);
    comment["issue"].as_object_mut().unwrap().remove("pull_request");
    let outcome = send("issue_comment", &comment);
    assert!(effects(&outcome).is_empty());
    no_filter_errors("issue_comment", &outcome);
}

fn closed_pr(branch: &str, merged: bool) -> Value {
    ours(json!({
        "action": "closed",
        "pull_request": {
            "number": 31, "merged": merged,
            "merge_commit_sha": "0123456789abcdef0123456789abcdef01234567",
            "head": {"ref": branch, "repo": {"full_name": REPOSITORY}},
            "base": {"ref": "main"},
        },
    }))
}

#[test]
fn task_branches_map_to_their_number_whatever_follows_it() {
    for (branch, number) in [
        ("task/7", Some("7")),
        ("task/7-add+health#@é", Some("7")),
        ("task/12-x/y", Some("12")),
        ("task/7x", None),
        ("feature/7", None),
        ("task/", None),
    ] {
        let outcome = send("pull_request", &closed_pr(branch, true));
        let effects = effects(&outcome);
        match number {
            Some(n) => {
                assert_eq!(effects[&sensor("merge")], [n], "{branch}");
                assert_eq!(effects[&sensor("merge-wake")], ["http"], "{branch}");
            }
            None => assert!(effects.is_empty(), "{branch}: {effects:?}"),
        }
        no_filter_errors("pull_request", &outcome);
    }
}

#[test]
fn merged_and_closed_prs_write_the_state_the_gate_reads_and_wake_it() {
    for (merged, record, value) in [(true, "merge", "true"), (false, "merge-closed", "closed")] {
        let outcome = send("pull_request", &closed_pr("task/7-orders", merged));
        let by_sensor: BTreeMap<&str, &Action> =
            outcome.fired.iter().map(|f| (f.sensor.as_str(), f.action.as_ref().unwrap())).collect();
        assert_eq!(by_sensor.len(), 2, "the record and the wake-up: {by_sensor:?}");
        let Action::K8s { operation, patch_strategy, object } = by_sensor[sensor(record).as_str()] else { panic!() };
        assert_eq!((operation.as_str(), patch_strategy.as_deref()), ("patch", Some("application/merge-patch+json")));
        assert_eq!(object["metadata"]["name"], "shop-api-task-7");
        assert_eq!(object["data"]["merged"], value);
        assert_eq!(object["data"]["pr"], "31");
        assert_eq!(object["data"]["task-number"], "7");
        let commit = if merged { "0123456789abcdef0123456789abcdef01234567" } else { "" };
        assert_eq!(object["data"]["merge-commit"], commit);
        let Action::Http { payload, secure_headers, .. } = by_sensor[sensor("merge-wake").as_str()] else { panic!() };
        assert_eq!(
            payload["nodeFieldSelector"],
            "templateName=gate-wait,inputs.parameters.gate.value=merged,inputs.parameters.task-number.value=7"
        );
        assert!(!secure_headers.is_empty(), "the wake-up authenticates");
    }
    // The record holds no Secret, so a missing waker Secret cannot stop it.
    for doc in docs() {
        let name = doc["metadata"]["name"].as_str().unwrap();
        let secrets = pressplay::model::events::secrets_referenced(doc);
        if name == sensor("merge") || name == sensor("merge-closed") {
            assert!(secrets.is_empty(), "{name} mounts {secrets:?}");
        }
        if name == sensor("merge-wake") {
            assert!(!secrets.is_empty());
        }
    }
}

#[test]
fn a_fork_branch_named_like_a_task_is_not_the_task() {
    let mut fork = closed_pr("task/7", true);
    set(&mut fork, "/pull_request/head/repo/full_name", json!("mallory/shop-api"));
    assert!(send("pull_request", &fork).fired.is_empty());
}

#[test]
fn ci_failures_are_judged_on_fields_every_payload_has() {
    // A check run whose app has no slug, and a workflow run without `actor`.
    let check = ours(json!({"action": "completed", "check_run": {
        "conclusion": "failure", "app": {"id": 1}, "pull_requests": [],
        "check_suite": {"head_branch": "task/7-fix"},
    }}));
    let outcome = send("check_run", &check);
    assert_eq!(effects(&outcome)[&sensor("ci-check")], ["7"]);
    no_filter_errors("check_run", &outcome);
    let mut actions = check.clone();
    set(&mut actions, "/check_run/app/slug", json!("github-actions"));
    assert!(send("check_run", &actions).fired.is_empty(), "Actions failures come as workflow_run");
    let run = ours(json!({"action": "completed", "workflow_run": {
        "conclusion": "failure", "head_branch": "task/7", "pull_requests": [{"number": 31}],
    }}));
    let outcome = send("workflow_run", &run);
    assert_eq!(effects(&outcome)[&sensor("ci-workflow-run")], ["7"]);
    no_filter_errors("workflow_run", &outcome);
    // The CI agent's own fix failing starts nothing.
    let mut own = run.clone();
    set(&mut own, "/sender/login", json!(format!("{}[bot]", pressplay::spec::AgentRole::CiFailure.github_app())));
    assert!(send("workflow_run", &own).fired.is_empty());
}

#[test]
fn a_push_that_adds_or_modifies_the_backlog_presses_play_once() {
    for key in ["added", "modified", "removed"] {
        let commit = json!({"id": "0123456789abcdef0123456789abcdef01234567", "added": [], "removed": [], "modified": ["README.md"], key: ["README.md", BACKLOG]});
        let push = ours(json!({"ref": "refs/heads/main", "commits": [commit]}));
        let outcome = send("push", &push);
        let presses: Vec<&str> = outcome.fired.iter().map(|f| f.sensor.as_str()).collect();
        if key == "removed" {
            assert!(presses.is_empty(), "a removed backlog has nothing to run");
        } else {
            assert_eq!(presses.len(), 1, "{key}: {presses:?}");
        }
        no_filter_errors("push", &outcome);
    }
    let other_branch = ours(
        json!({"ref": "refs/heads/task/7", "commits": [{"id": "0123456789abcdef0123456789abcdef01234567", "added": [], "removed": [], "modified": [BACKLOG]}]}),
    );
    assert!(send("push", &other_branch).fired.is_empty());
}

#[test]
fn review_text_reaches_the_agent_from_trusted_reviewers_only() {
    let review = |state: &str, body: Value, association: &str| {
        ours(json!({"action": "submitted",
            "review": {"state": state, "body": body, "author_association": association},
            "pull_request": {"number": 31, "head": {"ref": "task/7-x", "repo": {"full_name": REPOSITORY}}}}))
    };
    for (state, body, association, agent) in [
        ("changes_requested", json!("Use a constant."), "OWNER", true),
        ("commented", json!("Why?"), "MEMBER", true),
        ("approved", json!("LGTM"), "OWNER", false),
        ("commented", json!(null), "OWNER", false),
        ("commented", json!(" \r\n"), "OWNER", false),
        ("changes_requested", json!("Use a constant."), "NONE", false),
    ] {
        let outcome = send("pull_request_review", &review(state, body.clone(), association));
        assert_eq!(effects(&outcome).contains_key(&sensor("review")), agent, "{state} {body} {association}");
        no_filter_errors("pull_request_review", &outcome);
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub's documented payloads (when @octokit/webhooks-examples is installed)

#[test]
fn documented_payloads_never_make_a_filter_fail() {
    let Some(examples) = examples() else { return };
    let subscribed = [
        "check_run",
        "issue_comment",
        "issues",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "push",
        "workflow_run",
    ];
    for event in subscribed {
        for example in &examples[event] {
            no_filter_errors(event, &send(event, &ours(example.clone())));
        }
    }
}

#[test]
fn documented_payloads_as_github_sends_them_start_no_workflow() {
    let Some(examples) = examples() else { return };
    // Only the repository made ours: none of them is on a task branch, from a trusted author
    // with a task label, or a push of the backlog, so no agent and no run starts; only an issue
    // a trusted author opens is triaged.
    for (event, list) in examples {
        for example in list {
            let mut payload = example.clone();
            set(&mut payload, "/repository/full_name", json!(REPOSITORY));
            let outcome = deliver(docs(), &Delivery { event: event.clone(), id: "d".into(), body: payload });
            for fired in &outcome.fired {
                let kind = match &fired.action {
                    Ok(Action::K8s { object, .. }) => object["kind"].as_str().unwrap_or_default().to_string(),
                    other => format!("{other:?}"),
                };
                let triage = event == "issues"
                    && example["action"] == "opened"
                    && ["OWNER", "MEMBER", "COLLABORATOR"]
                        .contains(&example["issue"]["author_association"].as_str().unwrap_or(""));
                if triage {
                    assert_eq!(fired.sensor, sensor("triage"));
                } else {
                    assert_ne!(kind, "Workflow", "{} started a workflow on `{event}`", fired.sensor);
                }
            }
        }
    }
}

#[test]
fn documented_closed_prs_on_task_branches_are_recorded() {
    let Some(examples) = examples() else { return };
    let closed: Vec<&Value> = examples["pull_request"].iter().filter(|e| e["action"] == "closed").collect();
    assert!(!closed.is_empty());
    for example in closed {
        for (branch, number) in [("task/7", "7"), ("task/7-add+health#@é", "7"), ("task/12-x", "12")] {
            for (merged, record) in [(true, "merge"), (false, "merge-closed")] {
                let mut payload = ours(example.clone());
                set(&mut payload, "/pull_request/merged", json!(merged));
                set(&mut payload, "/pull_request/head/ref", json!(branch));
                set(&mut payload, "/pull_request/head/repo/full_name", json!(REPOSITORY));
                set(&mut payload, "/pull_request/base/ref", json!("main"));
                let effects = effects(&send("pull_request", &payload));
                assert_eq!(effects.len(), 2, "{branch} merged={merged}: {effects:?}");
                assert_eq!(effects[&sensor(record)], [number]);
                assert_eq!(effects[&sensor("merge-wake")], ["http"]);
            }
        }
    }
}

fn documented_pr_comment(example: &Value, body: &str) -> Value {
    let mut payload = ours(example.clone());
    let number = payload["issue"]["number"].clone();
    set(&mut payload, "/issue/html_url", json!(format!("https://github.com/{REPOSITORY}/pull/{number}")));
    set(
        &mut payload,
        "/issue/pull_request/url",
        json!(format!("https://api.github.com/repos/{REPOSITORY}/pulls/{number}")),
    );
    set(&mut payload, "/issue/labels", json!([{"name": "bug"}, {"name": "task-force"}, {"name": "task-7"}]));
    set(&mut payload, "/comment/body", json!(body));
    set(&mut payload, "/comment/author_association", json!("MEMBER"));
    payload
}

#[test]
fn documented_comments_go_to_the_agent_or_press_play_by_one_rule() {
    let Some(examples) = examples() else { return };
    let created: Vec<&Value> = examples["issue_comment"].iter().filter(|e| e["action"] == "created").collect();
    assert!(!created.is_empty());
    for example in created {
        for (body, play) in [
            ("Please rename the handler.", false),
            ("/play", true),
            ("/play\r\n", true),
            ("/play\nand rename it", false),
        ] {
            let effects = effects(&send("issue_comment", &documented_pr_comment(example, body)));
            assert_eq!(effects.contains_key(&sensor("play-comment")), play, "{body:?}: {effects:?}");
            if !play {
                assert_eq!(effects[&sensor("pr-comment")], ["7"], "the `task-7` label, not `task-force`");
            } else {
                assert!(!effects.contains_key(&sensor("pr-comment")));
            }
        }
    }
}

#[test]
fn documented_ci_failures_start_the_fixer_whatever_optional_fields_they_lack() {
    let Some(examples) = examples() else { return };
    let mut seen_without = (false, false);
    for example in &examples["check_run"] {
        let mut payload = ours(example.clone());
        set(&mut payload, "/action", json!("completed"));
        set(&mut payload, "/check_run/conclusion", json!("failure"));
        set(&mut payload, "/check_run/check_suite/head_branch", json!("task/7-fix@it"));
        seen_without.0 |= example.pointer("/check_run/app/slug").is_none();
        let actions = example.pointer("/check_run/app/slug").and_then(Value::as_str) == Some("github-actions");
        let effects = effects(&send("check_run", &payload));
        let expected: &[&str] = if actions { &[] } else { &["7"] };
        assert_eq!(effects.get(&sensor("ci-check")).map(Vec::as_slice).unwrap_or_default(), expected);
    }
    for example in &examples["workflow_run"] {
        let mut payload = ours(example.clone());
        set(&mut payload, "/action", json!("completed"));
        set(&mut payload, "/workflow_run/conclusion", json!("failure"));
        set(&mut payload, "/workflow_run/head_branch", json!("task/7"));
        seen_without.1 |= example.pointer("/workflow_run/actor").is_none();
        assert_eq!(effects(&send("workflow_run", &payload))[&sensor("ci-workflow-run")], ["7"]);
    }
    assert_eq!(seen_without, (true, true), "the examples include a check run without app slug and a run without actor");
}

#[test]
fn documented_reviews_and_review_comments_reach_the_agent() {
    let Some(examples) = examples() else { return };
    for example in examples["pull_request_review"].iter().filter(|e| e["action"] == "submitted") {
        let mut payload = ours(example.clone());
        set(&mut payload, "/pull_request/head/ref", json!("task/7"));
        set(&mut payload, "/pull_request/head/repo/full_name", json!(REPOSITORY));
        set(&mut payload, "/review/author_association", json!("OWNER"));
        for (state, body, expected) in [
            ("changes_requested", json!("Use a constant."), true),
            ("approved", json!(null), false),
            ("commented", json!("  "), false),
        ] {
            set(&mut payload, "/review/state", json!(state));
            set(&mut payload, "/review/body", body);
            assert_eq!(
                effects(&send("pull_request_review", &payload)).contains_key(&sensor("review")),
                expected,
                "{state}"
            );
        }
    }
    for example in examples["pull_request_review_comment"].iter().filter(|e| e["action"] == "created") {
        let mut payload = ours(example.clone());
        set(&mut payload, "/pull_request/head/ref", json!("task/7-x"));
        set(&mut payload, "/comment/author_association", json!("COLLABORATOR"));
        assert_eq!(effects(&send("pull_request_review_comment", &payload))[&sensor("review-comment")], ["7"]);
    }
}

#[test]
fn documented_pushes_of_the_backlog_press_play() {
    let Some(examples) = examples() else { return };
    for example in &examples["push"] {
        for key in ["added", "modified"] {
            let mut payload = ours(example.clone());
            set(&mut payload, "/ref", json!("refs/heads/main"));
            let commit = json!({"id": "0123456789abcdef0123456789abcdef01234567", "added": [], "removed": [], "modified": [], key: [BACKLOG]});
            set(&mut payload, "/commits", json!([commit]));
            let effects = effects(&send("push", &payload));
            assert_eq!(effects.len(), 1, "{key}: {effects:?}");
        }
    }
}

#[test]
fn documented_issues_from_trusted_authors_are_triaged_once() {
    let Some(examples) = examples() else { return };
    for example in examples["issues"].iter().filter(|e| e["action"] == "opened") {
        let mut payload = ours(example.clone());
        set(&mut payload, "/issue/author_association", json!("OWNER"));
        let outcome = send("issues", &payload);
        let Some(Ok(Action::K8s { object, .. })) = outcome.fired.first().map(|f| &f.action) else {
            panic!("{outcome:?}")
        };
        assert_eq!(object["metadata"]["name"], format!("shop-api-triage-{}", example["issue"]["number"]));
        set(&mut payload, "/issue/author_association", json!("NONE"));
        assert!(send("issues", &payload).fired.is_empty());
    }
}
