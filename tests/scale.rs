//! A thousand tasks at run time (issue 9), under the model of the controllers: every Workflow
//! stays under 1 MiB with a remediation per task, each task starts as soon as its dependencies
//! have merged and waits for nothing else, a failure stops only what depends on it, pods and
//! agents stay bounded, and merges found by the Sensors reach each task's own Workflow.

use std::collections::{BTreeMap, BTreeSet};

use pressplay::model::sim::{self, Merge, Outcome, Scenario};

use crate::common::{records, render_text, synthetic_backlog};

/// The run's name in a backlog without a `project:` block.
const RUN: &str = "pressplay-play";
/// A task Workflow's name.
fn task_workflow(task: u64) -> String {
    format!("pressplay-task-{task}")
}

const MIB: usize = 1024 * 1024;

fn tree(backlog: &str) -> BTreeMap<String, String> {
    render_text(backlog).expect("renders").files
}

/// Task → its dependencies, from the rendered graph ConfigMaps.
fn graph(files: &BTreeMap<String, String>) -> BTreeMap<u64, Vec<u64>> {
    records(files)
        .into_iter()
        .map(|(n, r)| {
            let deps = r["deps"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().parse().unwrap()).collect();
            (n.parse().unwrap(), deps)
        })
        .collect()
}

/// Every task that depends on `root`, directly or not.
fn dependents(graph: &BTreeMap<u64, Vec<u64>>, root: u64) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let mut changed = true;
    while changed {
        changed = false;
        for (task, deps) in graph {
            if !out.contains(task) && deps.iter().any(|d| *d == root || out.contains(d)) {
                out.insert(*task);
                changed = true;
            }
        }
    }
    out
}

fn run(files: &BTreeMap<String, String>, scenario: &Scenario) -> Outcome {
    sim::run(files, scenario, &pressplay::model::dispatch).expect("the model runs")
}

/// Ten-minute stages, merges ten minutes after each task waits, the acceptance of every task
/// failing once (so every task goes through one remediation), and `failing` failing for good.
fn scenario(graph: &BTreeMap<u64, Vec<u64>>, failing: Option<u64>) -> Scenario {
    let mut failures: Vec<(u64, String, Option<u64>)> =
        graph.keys().map(|task| (*task, "acceptance".to_owned(), Some(0))).collect();
    if let Some(task) = failing {
        failures.push((task, "author".to_owned(), None));
    }
    Scenario {
        default_duration: 600,
        merge: Merge::AfterWait(600),
        failures,
        horizon: 400 * 86400,
        ..Scenario::default()
    }
}

/// The most task Workflows open at one time.
fn most_open(outcome: &Outcome) -> usize {
    let mut edges: Vec<(u64, i64)> = Vec::new();
    for w in outcome.workflows.iter().filter(|w| w.name.starts_with("pressplay-task-")) {
        edges.push((w.started, 1));
        edges.push((w.finished.unwrap_or(u64::MAX), -1));
    }
    edges.sort();
    let (mut open, mut most) = (0i64, 0i64);
    for (_, change) in edges {
        open += change;
        most = most.max(open);
    }
    usize::try_from(most).unwrap_or(0)
}

#[test]
fn a_large_backlog_runs_bounded_in_its_exact_order_and_a_failure_stays_local() {
    // 1,000 tasks take the model about eight minutes in the test profile: the suite runs the same
    // checks on 200 tasks; PRESSPLAY_SCALE_TASKS=1000 runs the full size.
    let n = std::env::var("PRESSPLAY_SCALE_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let backlog = format!("defaults:\n  maxOpenTasks: 40\n{}", synthetic_backlog(n, 3, 7));
    let files = tree(&backlog);
    let graph = graph(&files);
    // A task in the first level with dependents: it fails for good.
    let failing = *graph.keys().find(|t| graph[t].is_empty() && !dependents(&graph, **t).is_empty()).unwrap();
    let held = dependents(&graph, failing);
    let outcome = run(&files, &scenario(&graph, Some(failing)));

    // 1. Bounded objects: no Workflow near 1 MiB, whatever the backlog's size.
    let (largest, which) = &outcome.largest_status;
    assert!(*largest < MIB / 2, "{which} reached {largest} bytes of status");
    assert!(outcome.largest_object.0 < MIB / 2, "{:?}", outcome.largest_object);
    let run_status = outcome.workflow(RUN).expect("the run");
    // The run holds only the dispatcher's steps and one wait round a day.
    assert!(run_status.status_bytes < 64 * 1024, "the run's status is {} bytes", run_status.status_bytes);

    // 2. Exactly the backlog's order: a task starts after each dependency merged, and as soon
    // as the last one did (give or take the dispatcher's pod), unless 40 tasks were open.
    let mut immediate = 0;
    for (task, deps) in &graph {
        let Some(started) = outcome.workflow(&task_workflow(*task)).map(|w| w.started) else {
            assert!(held.contains(task), "task {task} never started");
            continue;
        };
        let ready = deps.iter().map(|d| outcome.merged_at(*d).expect("a started task's dependency merged")).max();
        if let Some(ready) = ready {
            assert!(started >= ready, "task {task} started at {started}, before its dependencies merged at {ready}");
            if started <= ready + 300 {
                immediate += 1;
            }
        } else {
            immediate += usize::from(started <= 300);
        }
    }
    // A task Workflow whose exit handler has started its successors counts as ended for the
    // dispatcher while it finishes: a moment of overlap, never more than a few.
    assert!(most_open(&outcome) <= 40 + 3, "{} task Workflows open at once", most_open(&outcome));
    assert!(immediate > 0);

    // 3. Failure stays local: the failed task held back exactly its dependents; every other
    // task merged; the run failed naming the task and what it held back.
    for task in graph.keys() {
        if *task == failing || held.contains(task) {
            assert_eq!(outcome.merged_at(*task), None, "task {task} merged");
        } else {
            assert!(outcome.merged_at(*task).is_some(), "task {task} did not merge:\n{}", outcome.stuck.len());
        }
    }
    for task in &held {
        assert!(outcome.workflow(&task_workflow(*task)).is_none(), "held-back task {task} started");
    }
    assert_eq!(run_status.phase, "Failed");
    assert!(run_status.message.contains(&format!("task {failing}")), "{}", run_status.message);
    assert!(run_status.message.contains("held back"), "{}", run_status.message);

    // 4. Pods and agents bounded.
    assert!(outcome.peak_agents <= 4, "{} agents at once", outcome.peak_agents);
    assert!(outcome.peak_pods <= 3 * 4 + 6, "{} pods at once", outcome.peak_pods);
}

#[test]
fn pressing_play_again_redoes_nothing_that_merged() {
    let files = tree(&synthetic_backlog(60, 2, 11));
    let graph = graph(&files);
    let failing = *graph.keys().find(|t| graph[t].is_empty() && !dependents(&graph, **t).is_empty()).unwrap();
    let held = dependents(&graph, failing);
    let mut scenario = scenario(&graph, Some(failing));
    let first = run(&files, &Scenario { horizon: 30 * 86400, ..scenario.clone() });
    let first_end = first.workflow(RUN).and_then(|w| w.finished).expect("the first run ended");
    assert_eq!(first.workflow(RUN).unwrap().phase, "Failed");
    // Play is pressed again after the first run ended: the launcher's effect, by hand.
    scenario.presses.push(first_end + 3600);
    let outcome = run(&files, &scenario);
    for task in graph.keys() {
        let authors = outcome.agents_of(*task).into_iter().filter(|a| a.stage == "author").count();
        if *task == failing || held.contains(task) {
            continue;
        }
        // One author run, and one for the remediation every task goes through: none again.
        assert_eq!(authors, 2, "task {task}: {authors} author runs");
    }
    let failed_authors = outcome.agents_of(failing).into_iter().filter(|a| a.stage == "author").count();
    assert!(failed_authors >= 2, "the failed task ran again in the second run ({failed_authors})");
    let second = outcome.workflow(RUN).unwrap();
    assert!(second.started > first_end, "the second run is the one reported");
    assert_eq!(second.phase, "Failed");
}
