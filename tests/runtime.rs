//! Scenarios run through the run-time model (`pressplay::model`): the rendered tree, not the
//! plan, executed under the controllers' rules (see the model's module comments for the rules
//! and their sources). Each scenario also runs on the basic example as rendered before the
//! model existed (`tests/fixtures/model/before-basic/`, the committed output of that time), and
//! must catch the defect there: a scenario that cannot fail proves nothing.

use std::collections::BTreeMap;
use std::path::Path;

use pressplay::model::sim::{self, Merge, Outcome, Scenario, Trigger};
use serde_json::Value;

use crate::common::{render_file, root};

/// Delivers nothing: for scenarios about the workflow side alone.
fn no_events(_: &[Value], _: &str, _: &str, _: &Value) -> Vec<Trigger> {
    Vec::new()
}

/// The tree an example renders to today.
fn tree(example: &str) -> BTreeMap<String, String> {
    let path = root().join("examples").join(example);
    let input =
        if path.join("requirements.yaml").exists() { path.join("requirements.yaml") } else { path.join("tasks.json") };
    render_file(&input, "x").expect("the example renders").files
}

/// Runs a scenario on the old tree with the HTTP agent's token Secret created by hand, so that
/// the probe hang does not hide the defect a scenario is about.
fn run_before(scenario: &Scenario) -> Outcome {
    let mut scenario = scenario.clone();
    scenario.extra_secrets.insert("shop-api-orchestrator.service-account-token".into());
    run(&before(), &scenario)
}

/// The basic example's tree as rendered before the model (every defect below present).
fn before() -> BTreeMap<String, String> {
    let dir = root().join("tests/fixtures/model/before-basic");
    let mut files = BTreeMap::new();
    read_dir(&dir, &dir, &mut files);
    files
}

fn read_dir(base: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_dir(base, &path, files);
        } else {
            let relative = path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
            files.insert(relative, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// Without events; GitHub merges nothing by itself (the reconcile would record it): the
/// scenario writes the state it is about.
fn run(files: &BTreeMap<String, String>, scenario: &Scenario) -> Outcome {
    let scenario = Scenario { merge: Merge::Never, ..scenario.clone() };
    sim::run(files, &scenario, &no_events).expect("the model runs")
}

/// The stuck nodes whose message contains `text`.
fn stuck_with<'o>(outcome: &'o Outcome, text: &str) -> Vec<&'o (String, String, String, String)> {
    outcome.stuck.iter().filter(|s| s.3.contains(text)).collect()
}

/// Marks task 1 merged by hand five minutes after it starts waiting, then wakes it.
fn merged_by_hand(scenario: &mut Scenario, at: u64) {
    scenario.state_writes.push((at, 1, "true".into()));
    scenario.resumes.push((at + 1, gate(1)));
}

fn gate(task: u64) -> String {
    format!("templateName=gate-wait,inputs.parameters.gate.value=merged,inputs.parameters.task-number.value={task}")
}

/// Hours, as the model's seconds.
const H: u64 = 3600;

#[test]
fn http_probes_run_because_the_agent_pod_has_its_token() {
    let scenario = Scenario { horizon: 12 * H, ..Scenario::default() };
    let now = run(&tree("basic"), &scenario);
    assert!(stuck_with(&now, "service-account-token").is_empty(), "{:?}", now.stuck);
    assert!(now.agents_of(1).iter().any(|a| a.stage == "acceptance"), "the probes passed and acceptance ran");
    let then = run(&before(), &scenario);
    assert_eq!(stuck_with(&then, "service-account-token").len(), 1, "the old tree hangs on its probe");
    assert!(!then.agents_of(1).iter().any(|a| a.stage == "acceptance"));
}

#[test]
fn an_evicted_stage_reattaches_to_its_agent_and_emits_metrics_cleanly() {
    let scenario = Scenario { evictions: vec![(1, "author".into())], horizon: 12 * H, ..Scenario::default() };
    let now = run(&tree("basic"), &scenario);
    let authors = now.agents_of(1).into_iter().filter(|a| a.stage == "author").count();
    assert_eq!(authors, 1, "the retry found the agent at work");
    assert_eq!(now.max_agents_per_task(), 1);
    let play = now.workflow("shop-api-play").unwrap();
    assert!(play.conditions.is_empty(), "{:?}", play.conditions);

    let then = run_before(&scenario);
    assert!(then.max_agents_per_task() >= 2, "the old tree starts a second author on the same branch");
    let conditions = &then.workflow("shop-api-play").unwrap().conditions;
    assert!(conditions.iter().any(|c| c.contains("MetricsError") && c.contains("retries")), "{conditions:?}");
}

#[test]
fn fifty_early_wake_ups_stay_below_the_depth_limit() {
    let mut scenario = Scenario { horizon: 3 * 86400, default_duration: 600, ..Scenario::default() };
    // Every ten minutes from the first hour on, someone resumes task 1's wait; it merges at the end.
    for k in 0..50 {
        scenario.resumes.push((H + 600 * k, gate(1)));
    }
    merged_by_hand(&mut scenario, H + 600 * 50 + 60);
    let now = run(&tree("basic"), &scenario);
    let play = now.workflow("shop-api-play").unwrap();
    assert!(!play.message.contains("recursion"), "{}", play.message);
    assert!(now.started_at(2).is_some(), "task 2 started after task 1's merge");

    let then = run_before(&scenario);
    let old = then.workflow("shop-api-play").unwrap();
    assert!(old.message.contains("Maximum recursion depth exceeded"), "{old:?}");
}

#[test]
fn a_pull_request_closed_without_merging_ends_the_task_with_that_reason() {
    let mut scenario = Scenario { horizon: 2 * 86400, default_duration: 600, ..Scenario::default() };
    scenario.state_writes.push((3 * H, 1, "closed".into()));
    scenario.resumes.push((3 * H + 1, gate(1)));
    let now = run(&tree("basic"), &scenario);
    let play = now.workflow("shop-api-play").unwrap();
    assert_eq!(play.phase, "Failed", "{play:?}");
    assert!(play.message.contains("closed without merging"), "{}", play.message);
    assert!(now.started_at(2).is_none(), "dependents of a closed task never start");

    let then = run_before(&scenario);
    assert!(then.started_at(2).is_some(), "the old tree took a closed pull request for a merge");
}

#[test]
fn a_state_written_after_the_wake_up_is_seen_within_a_reconcile_period() {
    let mut scenario = Scenario { horizon: 5 * 86400, default_duration: 600, ..Scenario::default() };
    // The wake-up overtakes the state write by two minutes (more than the 30 s settle).
    scenario.resumes.push((3 * H, gate(1)));
    scenario.state_writes.push((3 * H + 120, 1, "true".into()));
    let now = run(&tree("basic"), &scenario);
    let started = now.started_at(2).expect("task 2 starts");
    // The reconcile (every 15 minutes) finds the final state and wakes the gate.
    assert!(started <= 3 * H + 120 + 900 + 300, "within a reconcile period of the write, started at {started}");

    let then = run_before(&scenario);
    assert!(then.started_at(2).is_none(), "the old tree waits forever");
}

#[test]
fn a_task_never_merged_fails_within_thirty_days() {
    let scenario = Scenario { horizon: 40 * 86400, default_duration: 600, ..Scenario::default() };
    let now = run(&tree("basic"), &scenario);
    let play = now.workflow("shop-api-play").unwrap();
    assert_eq!(play.phase, "Failed");
    // 30 days of waiting after its stages.
    assert!(play.finished.unwrap() <= 31 * 86400, "{play:?}");
    assert!(play.message.contains("not merged yet"), "{}", play.message);
    // Rounds are retries: the status stays bounded and the depth flat.
    assert!(play.nodes < 1_000, "{} nodes", play.nodes);

    let then = run_before(&scenario);
    assert_eq!(then.workflow("shop-api-play").unwrap().phase, "Running", "the old tree never ends");
}

#[test]
fn two_tasks_deploying_at_once_each_test_their_own_deployment() {
    // Tasks 2 and 3 both depend on task 1 only: they run side by side and share the preview.
    let mut scenario = Scenario { horizon: 4 * 86400, default_duration: 600, ..Scenario::default() };
    merged_by_hand(&mut scenario, 2 * H);
    for task in [2, 3] {
        scenario.state_writes.push((8 * H, task, "true".into()));
        scenario.resumes.push((8 * H + 1, gate(task)));
    }
    let now = run(&tree("basic"), &scenario);
    let window = |o: &Outcome, task: u64| {
        let runs = o.agents_of(task);
        let start = runs.iter().filter(|a| a.stage == "deploy").map(|a| a.start).min().expect("deployed");
        let end = runs.iter().filter(|a| a.stage == "acceptance").filter_map(|a| a.end).max().expect("accepted");
        (start, end)
    };
    let (a, b) = (window(&now, 2), window(&now, 3));
    assert!(a.1 <= b.0 || b.1 <= a.0, "deploy-to-acceptance windows overlap: {a:?} {b:?}");

    // The old tree deploys both at once; the later deployment relabels the preview, and task
    // 2's wait never sees its own.
    let then = run_before(&scenario);
    let deploys: Vec<(u64, u64)> = [2, 3]
        .iter()
        .flat_map(|t| then.agents_of(*t).into_iter().filter(|a| a.stage == "deploy").map(|a| (a.start, a.end.unwrap())))
        .collect();
    assert!(deploys[0].0 < deploys[1].1 && deploys[1].0 < deploys[0].1, "{deploys:?}");
    assert!(then.workflow("shop-api-play").unwrap().message.contains("deadline"));
}

#[test]
fn a_transient_degraded_is_read_again() {
    let mut scenario =
        Scenario { horizon: 12 * H, default_duration: 600, transient_degraded: true, ..Scenario::default() };
    merged_by_hand(&mut scenario, 5 * H);
    let now = run(&tree("basic"), &scenario);
    assert!(now.agents_of(1).iter().any(|a| a.stage == "acceptance"), "the wait saw Healthy on its next attempt");
    let then = run_before(&scenario);
    assert!(!then.agents_of(1).iter().any(|a| a.stage == "acceptance"), "the old tree fails the task at once");
}

#[test]
fn cleanup_after_a_merge_needs_no_docsrun_crd_and_never_fails_the_task() {
    let mut scenario = Scenario { horizon: 12 * H, default_duration: 600, docs_crd: false, ..Scenario::default() };
    merged_by_hand(&mut scenario, 3 * H);
    let now = run(&tree("basic"), &scenario);
    assert!(now.started_at(2).is_some(), "task 1 succeeded after its cleanup");
    assert!(
        now.left.get("CodeRun").is_none_or(|runs| runs.iter().all(|r| !r.starts_with("shop-api-1-"))),
        "{:?}",
        now.left
    );

    let then = run_before(&scenario);
    assert!(then.started_at(2).is_none(), "the old cleanup fails task 1 after its merge");
}

#[test]
fn a_failed_run_leaves_no_agent_working() {
    // The author of task 1 outlives its 3 h deadline: the step fails, the run fails.
    let mut durations = BTreeMap::new();
    durations.insert("author".to_string(), 5 * H);
    let scenario = Scenario { horizon: 12 * H, durations, ..Scenario::default() };
    let now = run(&tree("basic"), &scenario);
    let play = now.workflow("shop-api-play").unwrap();
    assert_eq!(play.phase, "Failed");
    let finished = play.finished.unwrap();
    for agent in &now.agents {
        assert!(agent.end.is_some_and(|end| end <= finished), "{agent:?} outlived the run ({finished})");
    }
    let then = run_before(&scenario);
    let finished = then.workflow("shop-api-play").unwrap().finished.unwrap();
    assert!(
        then.agents.iter().any(|a| a.end.is_none_or(|end| end > finished)),
        "the old tree leaves its author working"
    );
}

// ------------------------------------------------------------------------------------------------
// With the Sensors: GitHub's deliveries go through the Argo Events model.

fn run_events(files: &BTreeMap<String, String>, scenario: &Scenario) -> Outcome {
    sim::run(files, scenario, &pressplay::model::dispatch).expect("the model runs")
}

/// Task number → the task numbers it depends on, read off the tree's graph ConfigMaps.
fn dependencies_in_tree(files: &BTreeMap<String, String>) -> BTreeMap<u64, Vec<u64>> {
    crate::common::records(files)
        .into_iter()
        .map(|(number, record)| {
            let deps =
                record["deps"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().parse().unwrap()).collect();
            (number.parse().unwrap(), deps)
        })
        .collect()
}

/// Every task merged, each after its dependencies merged, the run succeeded and nothing works on.
fn assert_all_merged_in_order(files: &BTreeMap<String, String>, outcome: &Outcome, run: &str) {
    for (task, dependencies) in &dependencies_in_tree(files) {
        let merged =
            outcome.merged_at(*task).unwrap_or_else(|| panic!("task {task} not merged:\n{}", sim::timeline(outcome)));
        let started = outcome.started_at(*task).expect("started");
        for dependency in dependencies {
            let before = outcome.merged_at(*dependency).expect("dependency merged");
            assert!(before <= started, "task {task} started at {started}, before {dependency} merged at {before}");
        }
        assert!(started < merged);
    }
    let play = outcome.workflow(run).expect("the run");
    assert_eq!(play.phase, "Succeeded", "{play:?}\n{:?}", outcome.stuck);
    assert!(outcome.agents.iter().all(|a| a.end.is_some()), "an agent still works");
    assert!(play.conditions.is_empty(), "{:?}", play.conditions);
}

#[test]
fn every_example_runs_to_the_last_merge() {
    for (example, run) in [("basic", "shop-api-play"), ("taskmaster", "pressplay-play")] {
        let files = tree(example);
        let outcome = run_events(&files, &Scenario { default_duration: 900, ..Scenario::default() });
        assert_all_merged_in_order(&files, &outcome, run);
    }
}

#[test]
fn the_merge_event_may_come_before_during_or_days_after_the_wait() {
    let files = tree("basic");
    for merge in [Merge::AfterOpen(60), Merge::AfterWait(600), Merge::AfterWait(2 * 86400)] {
        let outcome = run_events(&files, &Scenario { merge, default_duration: 900, ..Scenario::default() });
        assert_all_merged_in_order(&files, &outcome, "shop-api-play");
        // Within a minute of the merge the next task starts (the wake-up, not the re-check).
        // (or of the end of task 1's last agent, when the merge came first).
        let (merged, next) = (outcome.merged_at(1).unwrap(), outcome.started_at(2).unwrap());
        let done = outcome.agents_of(1).iter().filter_map(|a| a.end).max().unwrap();
        assert!(next <= merged.max(done) + 60, "{merge:?}: merged {merged}, task 1 done {done}, task 2 at {next}");
    }
}

#[test]
fn the_merge_record_does_not_depend_on_the_waker_secret() {
    let mut scenario = Scenario { default_duration: 900, horizon: 10 * 86400, ..Scenario::default() };
    scenario.missing_secrets.insert("shop-api-waker".into());
    let now = run_events(&tree("basic"), &scenario);
    assert!(now.recorded.contains_key(&1), "the merge was recorded without the waker");
    let (merged, next) = (now.merged_at(1).unwrap(), now.started_at(2).unwrap());
    assert!(next <= merged + 12 * H + 300, "the gate's re-check found it: merged {merged}, next {next}");

    let then = run_events(&run_before_files(), &scenario);
    assert!(!then.recorded.contains_key(&1), "the old merge Sensor records nothing without the waker Secret");
}

fn run_before_files() -> BTreeMap<String, String> {
    let mut files = before();
    files.insert(
        "rbac/secret-token.yaml".into(),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: shop-api-orchestrator.service-account-token\n  namespace: agents\n".into(),
    );
    files
}

#[test]
fn a_pr_comment_during_the_lint_agent_waits_for_it() {
    // Task 1's PR opens when its author finishes (00:30); lint runs 00:30–01:00; a maintainer
    // comments at 00:40.
    let mut scenario = Scenario { horizon: 2 * 86400, ..Scenario::default() };
    let comment = serde_json::json!({
        "action": "created",
        "issue": {"number": 1001, "pull_request": {"url": "https://api.github.com/repos/acme/shop-api/pulls/1001"},
                  "labels": [{"name": "task-force"}, {"name": "task-1"}]},
        "comment": {"body": "Please rename the handler.\r\n", "author_association": "MEMBER", "user": {"login": "maintainer"}},
        "repository": {"full_name": "acme/shop-api"},
        "sender": {"login": "maintainer", "type": "User"},
    });
    scenario.deliveries.push((40 * 60, "issue_comment".into(), comment));
    let now = run_events(&tree("basic"), &scenario);
    let fix =
        now.agents_of(1).into_iter().find(|a| a.stage == "pr-comment").cloned().expect("the comment reached an agent");
    assert_eq!(now.max_agents_per_task(), 1, "{}", sim::timeline(&now));
    let lint = now.agents_of(1).into_iter().find(|a| a.stage == "lint").cloned().unwrap();
    assert!(fix.start >= lint.end.unwrap(), "the comment's agent started while lint worked");

    let then = run_events(&run_before_files(), &scenario);
    assert!(
        then.agents_of(1).iter().all(|a| a.stage != "pr-comment"),
        "the old filter took `task-force` and dropped it"
    );
}

#[test]
fn with_events_off_a_second_run_skips_merged_tasks() {
    let text = std::fs::read_to_string(root().join("examples/basic/requirements.yaml")).unwrap();
    let text = text.replace("defaults:\n", "events:\n  enabled: false\ndefaults:\n");
    let files = crate::common::render_text(&text).expect("renders").files;
    // People merge each pull request ten minutes after its task starts waiting. No Sensor hears
    // it: only the reconcile CronWorkflow, which reads GitHub, can record the merges. The run
    // is pressed again a day later.
    let mut scenario = Scenario { horizon: 3 * 86400, default_duration: 600, ..Scenario::default() };
    scenario.presses.push(86400);
    let outcome = run_events(&files, &scenario);
    let tasks: Vec<u64> = dependencies_in_tree(&files).into_keys().collect();
    assert_eq!(outcome.recorded.len(), tasks.len(), "a merge went unrecorded:\n{}", sim::timeline(&outcome));
    assert!(outcome.recorded.values().all(|(_, value)| value == "true"));
    for task in tasks {
        let authors = outcome.agents_of(task).into_iter().filter(|a| a.stage == "author").count();
        assert_eq!(authors, 1, "the second run redid merged task {task}:\n{}", sim::timeline(&outcome));
    }
}

fn play_comment() -> Value {
    serde_json::json!({
        "action": "created",
        "issue": {"number": 42, "labels": []},
        "comment": {"body": "/play\r\n", "author_association": "OWNER", "user": {"login": "maintainer"}},
        "repository": {"full_name": "acme/shop-api"},
        "sender": {"login": "maintainer", "type": "User"},
    })
}

#[test]
fn play_while_the_previous_run_exists_starts_it_or_says_why_not() {
    let files = tree("basic");
    // Pressed again while the first run works, then after it finished (inside its TTL).
    let mut scenario =
        Scenario { default_duration: 600, horizon: 2 * 86400, merge: Merge::AfterWait(60), ..Scenario::default() };
    scenario.deliveries.push((H, "issue_comment".into(), play_comment()));
    scenario.deliveries.push((86400, "issue_comment".into(), play_comment()));
    let outcome = run_events(&files, &scenario);
    let runs: Vec<_> = outcome.workflows.iter().filter(|w| w.name == "shop-api-play").collect();
    assert_eq!(runs.len(), 2, "the second press started a new run: {:?}", outcome.workflows);
    assert!(runs[1].started >= 86400);
    let refused: Vec<_> =
        outcome.workflows.iter().filter(|w| w.name.starts_with("shop-api-press-") && w.phase == "Failed").collect();
    assert_eq!(refused.len(), 1, "{:?}", outcome.workflows);
    assert!(refused[0].message.contains("a run is in progress"), "{}", refused[0].message);

    let then = run_events(&run_before_files(), &scenario);
    let old = then.workflows.iter().filter(|w| w.name == "shop-api-play").count();
    assert_eq!(old, 1, "the old Sensor's create fails silently while the run exists");
    assert!(then.triggers.iter().any(|(_, t)| t.contains("AlreadyExists")), "{:?}", then.triggers);
}

#[test]
fn a_lost_merge_webhook_is_recovered_by_the_reconcile() {
    let files = tree("basic");
    let mut scenario = Scenario { default_duration: 600, horizon: 4 * 86400, ..Scenario::default() };
    scenario.lost_webhooks.insert(1);
    let now = run_events(&files, &scenario);
    let (merged, next) = (now.merged_at(1).unwrap(), now.started_at(2).expect("task 2 started"));
    assert!(next <= merged + 15 * 60 + 120, "within one reconcile period: merged {merged}, next {next}");

    let then = run_events(&run_before_files(), &scenario);
    assert!(then.started_at(2).is_none(), "the old tree waits forever for a lost webhook");
}
