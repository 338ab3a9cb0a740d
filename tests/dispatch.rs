//! The dispatcher (`src/render/lifecycle/dispatch.py` after `common.py`): run against a fake
//! Kubernetes API and Argo Server on the loopback, with the task graph written where the graph
//! ConfigMaps are mounted (skipped without python3).

use serde_json::{Value, json};

use crate::lifecycle::{Seen, run_script, serve, tool};

const UID: &str = "0b6c3e2a-1111-2222-3333-444455556666";
const RUN: &str = "/kube/apis/argoproj.io/v1alpha1/namespaces/agents/workflows/shop-play";
const WORKFLOWS: &str = "/kube/apis/argoproj.io/v1alpha1/namespaces/agents/workflows";
const WAKE: &str = "/argo/api/v1/workflows/agents/shop-play/resume";

fn script() -> String {
    format!(
        "{}{}",
        include_str!("../src/render/lifecycle/common.py"),
        include_str!("../src/render/lifecycle/dispatch.py")
    )
}

fn record(n: u32, deps: &[u32]) -> Value {
    json!({
        "number": n.to_string(),
        "deps": deps.iter().map(u32::to_string).collect::<Vec<_>>(),
        "entrypoint": format!("chain-{}", n % 2),
        "parameters": [{"name": "task-number", "value": n.to_string()}, {"name": "agent", "value": "coder"}],
    })
}

/// Two graph ConfigMaps: 1, 2 (after 1), 3 | 4 (after 2), 5 (after 3), 6, 7.
fn graph() -> Vec<Vec<Value>> {
    vec![
        vec![record(1, &[]), record(2, &[1]), record(3, &[])],
        vec![record(4, &[2]), record(5, &[3]), record(6, &[]), record(7, &[])],
    ]
}

/// A task Workflow as the list answers it.
fn task(n: u32, phase: &str, run: &str, message: &str) -> Value {
    json!({
        "metadata": {"name": format!("shop-task-{n}"), "labels": {
            "pressplay.dev/project": "shop", "pressplay.dev/component": "task",
            "pressplay.dev/task-number": n.to_string(), "pressplay.dev/run": run,
        }},
        "status": {"phase": phase, "message": message},
    })
}

struct Cluster {
    /// The run's phase; None: there is no run.
    run: Option<&'static str>,
    workflows: Vec<Value>,
    /// (task, merged value) of the state ConfigMaps.
    states: Vec<(u32, &'static str)>,
    /// Task Workflows whose create answers AlreadyExists.
    exists: Vec<&'static str>,
    /// The Argo Server's answer to the run's resume.
    resume: (u16, Value),
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            run: Some("Running"),
            workflows: Vec::new(),
            states: Vec::new(),
            exists: Vec::new(),
            resume: (200, json!({})),
        }
    }
}

/// Runs the dispatcher against `cluster` with the graph `maps`; `env` replaces defaults.
fn dispatch(cluster: Cluster, maps: &[Vec<Value>], env: &[(&str, &str)]) -> (i32, String, Vec<Seen>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (k, records) in maps.iter().enumerate() {
        let path = dir.join(format!("graph/{k}"));
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("tasks.json"), Value::from(records.clone()).to_string()).unwrap();
    }
    std::fs::create_dir_all(dir.join("secrets/waker")).unwrap();
    std::fs::create_dir_all(dir.join("account")).unwrap();
    std::fs::write(dir.join("secrets/waker/authorization"), "Bearer waker-token").unwrap();
    std::fs::write(dir.join("account/token"), "kube-token").unwrap();
    let mut items: Vec<Value> = cluster
        .states
        .iter()
        .map(|(n, merged)| json!({"metadata": {"name": format!("shop-task-{n}")}, "data": {"merged": merged}}))
        .collect();
    // Not states: the graph, a non-canonical number, another project's.
    items.push(json!({"metadata": {"name": "shop-graph-0"}, "data": {"tasks.json": "[]"}}));
    items.push(json!({"metadata": {"name": "shop-task-06"}, "data": {"merged": "true"}}));
    items.push(json!({"metadata": {"name": "other-task-6"}, "data": {"merged": "true"}}));
    let configmaps = json!({"metadata": {}, "items": items});
    let workflows = json!({"metadata": {}, "items": cluster.workflows});
    let run =
        cluster.run.map(|phase| json!({"metadata": {"name": "shop-play", "uid": UID}, "status": {"phase": phase}}));
    let exists = cluster.exists.clone();
    let resume = cluster.resume.clone();
    let (base, seen) = serve(Box::new(move |r: &Seen| match (r.method.as_str(), r.path.as_str()) {
        ("GET", RUN) => run.clone().map_or((404, json!({"reason": "NotFound"})), |run| (200, run)),
        ("GET", p) if p.starts_with(&format!("{WORKFLOWS}?")) => (200, workflows.clone()),
        ("GET", p) if p.starts_with("/kube/api/v1/namespaces/agents/configmaps?") => (200, configmaps.clone()),
        ("POST", WORKFLOWS) => {
            let name = r.json()["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            if exists.contains(&name.as_str()) { (409, json!({"reason": "AlreadyExists"})) } else { (201, r.json()) }
        }
        ("PUT", WAKE) => resume.clone(),
        _ => (418, json!({})),
    }));
    let mut overrides: Vec<(&str, String)> = vec![
        ("PROJECT", "shop".to_owned()),
        ("NAMESPACE", "agents".to_owned()),
        ("RUN", "shop-play".to_owned()),
        ("STAGES", "shop-stages".to_owned()),
        ("STATE_PREFIX", "shop-task-".to_owned()),
        ("TASK_PREFIX", "shop-task-".to_owned()),
        ("END_TEMPLATE", "end-wait".to_owned()),
        ("MAX_OPEN", "3".to_owned()),
        ("GRAPH_DIR", dir.join("graph").display().to_string()),
        ("GRAPH_MAPS", maps.len().to_string()),
        ("ARGO_SERVER", format!("{base}/argo")),
        ("KUBE_API", format!("{base}/kube")),
        ("SECRETS_DIR", dir.join("secrets").display().to_string()),
        ("SERVICE_ACCOUNT_DIR", dir.join("account").display().to_string()),
        ("MODE", "dispatch".to_owned()),
        ("SELF", String::new()),
        ("SELF_STATUS", String::new()),
    ];
    for &(name, value) in env {
        overrides.retain(|(n, _)| *n != name);
        overrides.push((name, value.to_owned()));
    }
    let (code, message) = run_script(dir, &script(), &[], &overrides);
    let seen = seen.lock().unwrap().clone();
    (code, message, seen)
}

/// The names of the Workflows the dispatcher created, in order.
fn created(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json()["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn wakes(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter().filter(|r| r.method == "PUT").collect()
}

fn skip() -> bool {
    if tool("python3") {
        return false;
    }
    eprintln!("skipped: python3 not found");
    true
}

#[test]
fn dispatch_starts_ready_tasks_up_to_max_open_in_graph_order() {
    if skip() {
        return;
    }
    let (code, message, seen) = dispatch(Cluster::default(), &graph(), &[]);
    assert_eq!(code, 0, "{message}");
    // Ready: 1, 3, 6, 7 (2, 4 and 5 wait for a merge); three may be open.
    assert_eq!(created(&seen), ["shop-task-1", "shop-task-3", "shop-task-6"]);
    assert_eq!(message, "started 3 task(s); 3 open, 0 merged, 0 failed, 0 held");
    assert!(wakes(&seen).is_empty(), "not finished: the run is not woken");
    let first = seen.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(first.path, WORKFLOWS);
    assert_eq!(first.authorization, "Bearer kube-token");
    assert_eq!(
        first.json(),
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {
                "name": "shop-task-1",
                "namespace": "agents",
                "labels": {
                    "app.kubernetes.io/managed-by": "pressplay",
                    "pressplay.dev/project": "shop",
                    "pressplay.dev/component": "task",
                    "pressplay.dev/task-number": "1",
                    "pressplay.dev/run": UID,
                },
                "ownerReferences": [{
                    "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "shop-play",
                    "uid": UID, "blockOwnerDeletion": false,
                }],
            },
            "spec": {
                "workflowTemplateRef": {"name": "shop-stages"},
                "entrypoint": "chain-1",
                "arguments": {"parameters": [
                    {"name": "task-number", "value": "1"}, {"name": "agent", "value": "coder"},
                ]},
            },
        })
    );
    let posts: Vec<Value> = seen.iter().filter(|r| r.method == "POST").map(Seen::json).collect();
    assert_eq!(posts[2]["spec"]["entrypoint"], "chain-0");
    assert_eq!(posts[2]["spec"]["arguments"]["parameters"][0]["value"], "6");
    // What it read: the run, the task Workflows and the states, by their labels.
    let list = seen.iter().find(|r| r.path.starts_with(&format!("{WORKFLOWS}?"))).unwrap();
    assert!(
        list.path.contains("labelSelector=pressplay.dev%2Fproject%3Dshop%2Cpressplay.dev%2Fcomponent%3Dtask"),
        "{}",
        list.path
    );
    assert_eq!(seen[0].path, RUN);
}

#[test]
fn a_dependency_not_merged_keeps_a_task_back_and_a_merged_one_frees_it() {
    if skip() {
        return;
    }
    // 1 goes, 3 merged: 5 (after 3) is ready, 2 (after 1) is not.
    let cluster = Cluster {
        workflows: vec![task(1, "Running", UID, ""), task(3, "Succeeded", UID, "")],
        states: vec![(3, "true"), (1, "closed")],
        ..Cluster::default()
    };
    let (code, message, seen) = dispatch(cluster, &graph(), &[("MAX_OPEN", "2")]);
    assert_eq!(code, 0, "{message}");
    assert_eq!(created(&seen), ["shop-task-5"]);
    assert_eq!(message, "started 1 task(s); 2 open, 1 merged, 0 failed, 0 held");
}

#[test]
fn a_failed_task_holds_back_its_dependents_and_others_still_start() {
    if skip() {
        return;
    }
    // 1 failed: 2 (after 1) and 4 (after 2) are held back; 3 merged, so 5 starts; 6 and 7 start.
    // A failed Workflow of an older run (another uid) does not count: 6 is started anew.
    let cluster = Cluster {
        workflows: vec![
            task(1, "Failed", UID, "the agent gave up"),
            task(3, "Succeeded", UID, ""),
            task(6, "Failed", "0b6c3e2a-0000-0000-0000-000000000000", "an old run"),
        ],
        states: vec![(3, "true")],
        ..Cluster::default()
    };
    let (code, message, seen) = dispatch(cluster, &graph(), &[]);
    assert_eq!(code, 0, "{message}");
    assert_eq!(created(&seen), ["shop-task-5", "shop-task-6", "shop-task-7"]);
    assert_eq!(message, "started 3 task(s); 3 open, 1 merged, 1 failed, 2 held");
}

#[test]
fn an_existing_workflow_counts_as_open() {
    if skip() {
        return;
    }
    let cluster = Cluster { exists: vec!["shop-task-1"], ..Cluster::default() };
    let (code, message, seen) = dispatch(cluster, &graph(), &[("MAX_OPEN", "2")]);
    assert_eq!(code, 0, "{message}");
    assert_eq!(created(&seen), ["shop-task-1", "shop-task-3"], "tried 1 (exists), then 3; 6 waits");
    assert_eq!(message, "started 1 task(s); 2 open, 0 merged, 0 failed, 0 held");
    assert!(!message.contains("problem"), "{message}");
}

#[test]
fn the_last_exit_handler_finds_the_run_finished_and_wakes_its_end_wait() {
    if skip() {
        return;
    }
    // Every task merged but 7, whose Workflow still runs its exit handler: it succeeded without
    // a merge (its pull request was closed).
    let cluster = || Cluster {
        workflows: vec![task(7, "Running", UID, "")],
        states: vec![(1, "true"), (2, "true"), (3, "true"), (4, "true"), (5, "true"), (6, "true"), (7, "closed")],
        ..Cluster::default()
    };
    // Without SELF, 7 still goes: not finished.
    let (code, message, seen) = dispatch(cluster(), &graph(), &[]);
    assert_eq!(code, 0, "{message}");
    assert!(wakes(&seen).is_empty(), "{message}");
    assert_eq!(message, "started 0 task(s); 1 open, 6 merged, 0 failed, 0 held");
    // As 7's exit handler: 7 is done, so the run is finished and its end-wait is woken.
    let env = [("SELF", "shop-task-7"), ("SELF_STATUS", "Succeeded")];
    let (code, message, seen) = dispatch(cluster(), &graph(), &env);
    assert_eq!(code, 0, "{message}");
    assert!(created(&seen).is_empty());
    let wakes = wakes(&seen);
    assert_eq!(wakes.len(), 1);
    assert_eq!(wakes[0].path, WAKE);
    assert_eq!(wakes[0].json(), json!({"nodeFieldSelector": "templateName=end-wait"}));
    assert_eq!(wakes[0].authorization, "Bearer waker-token");
    assert_eq!(message, "started 0 task(s); 0 open, 6 merged, 1 failed, 0 held; finished: woke the run");
    // A run not waiting yet ("no suspend nodes") is fine.
    let not_yet = Cluster {
        resume: (
            500,
            json!({"code": 2, "message": "no suspend nodes matching nodeFieldSelector: templateName=end-wait"}),
        ),
        ..cluster()
    };
    let (code, message, _) = dispatch(not_yet, &graph(), &env);
    assert_eq!(code, 0, "{message}");
    assert!(message.ends_with("finished: the run did not wait (yet)"), "{message}");
    // A refusal is reported, and the exit handler still succeeds.
    let refused = Cluster { resume: (403, json!({})), ..cluster() };
    let (code, message, _) = dispatch(refused, &graph(), &env);
    assert_eq!(code, 0, "{message}");
    assert!(
        message.contains("the run could not be woken (1 problem(s), first: shop-play: resume failed (HTTP 403))"),
        "{message}"
    );
}

#[test]
fn check_fails_while_tasks_are_open_and_passes_when_finished() {
    if skip() {
        return;
    }
    let merged: Vec<(u32, &str)> = (2..=7).map(|n| (n, "true")).collect();
    // 1 goes: pending.
    let going = Cluster { workflows: vec![task(1, "Running", UID, "")], states: merged.clone(), ..Cluster::default() };
    let (code, message, seen) = dispatch(going, &graph(), &[("MODE", "check")]);
    assert_eq!(code, 1, "{message}");
    assert_eq!(message, "pending: 1 open, 0 ready, 0 waiting");
    assert!(created(&seen).is_empty() && wakes(&seen).is_empty());
    // 1 is ready (no Workflow yet): check starts it, and is still pending.
    let ready = Cluster { states: merged.clone(), ..Cluster::default() };
    let (code, message, seen) = dispatch(ready, &graph(), &[("MODE", "check")]);
    assert_eq!(code, 1, "{message}");
    assert_eq!(created(&seen), ["shop-task-1"]);
    assert_eq!(message, "pending: 1 open, 0 ready, 0 waiting");
    // 1 failed: finished (the verdict tells the rest); check wakes nothing.
    let failed = Cluster { workflows: vec![task(1, "Error", UID, "")], states: merged, ..Cluster::default() };
    let (code, message, seen) = dispatch(failed, &graph(), &[("MODE", "check")]);
    assert_eq!(code, 0, "{message}");
    assert_eq!(message, "finished: 6 merged, 1 failed, 0 held, 0 waiting");
    assert!(wakes(&seen).is_empty());
}

#[test]
fn verdict_names_every_failed_task_and_every_task_it_holds_back() {
    if skip() {
        return;
    }
    // 1 failed (its message, tags defused), 3 succeeded without a merge; 2, 4 (after 1) and 5
    // (after 3) are held back; 6 and 7 merged.
    let cluster = Cluster {
        workflows: vec![
            task(1, "Failed", UID, "the agent gave up {{workflow.name}}\nsee logs"),
            task(3, "Succeeded", UID, ""),
        ],
        states: vec![(6, "true"), (7, "true")],
        ..Cluster::default()
    };
    let (code, message, seen) = dispatch(cluster, &graph(), &[("MODE", "verdict")]);
    assert_eq!(code, 1, "{message}");
    assert_eq!(
        message,
        "failed: task 1 (the agent gave up ((workflow.name)) see logs), task 3 (succeeded without a merge); \
         held back: 2, 4, 5"
    );
    assert!(created(&seen).is_empty() && wakes(&seen).is_empty());
    // Every task merged.
    let all = Cluster { states: (1..=7).map(|n| (n, "true")).collect(), ..Cluster::default() };
    let (code, message, _) = dispatch(all, &graph(), &[("MODE", "verdict")]);
    assert_eq!(code, 0, "{message}");
    assert_eq!(message, "all 7 tasks merged");
    // No run: the verdict cannot be given.
    let gone = Cluster { run: None, ..Cluster::default() };
    let (code, message, _) = dispatch(gone, &graph(), &[("MODE", "verdict")]);
    assert_eq!(code, 1, "{message}");
    assert_eq!(message, "the run is gone");
}

#[test]
fn the_message_stays_within_one_kib() {
    if skip() {
        return;
    }
    // 300 tasks: 1..=150 failed with long messages, each holding one back.
    let mut maps = vec![Vec::new(), Vec::new()];
    let mut workflows = Vec::new();
    for n in 1..=150u32 {
        maps[0].push(record(n, &[]));
        maps[1].push(record(n + 150, &[n]));
        workflows.push(task(n, "Failed", UID, &"x".repeat(300)));
    }
    let cluster = Cluster { workflows, ..Cluster::default() };
    let (code, message, _) = dispatch(cluster, &maps, &[("MODE", "verdict")]);
    assert_eq!(code, 1);
    assert!(message.len() <= 1024, "{} bytes", message.len());
    assert!(message.starts_with("failed: task 1 (xxx"), "{message}");
    assert!(message.contains(" more; held back: 151, 152"), "{message}");
    assert!(message.ends_with(" more"), "{message}");
}

#[test]
fn without_a_running_run_nothing_is_created() {
    if skip() {
        return;
    }
    for run in [None, Some("Succeeded"), Some("Failed")] {
        for mode in ["dispatch", "check"] {
            let cluster = Cluster { run, ..Cluster::default() };
            let (code, message, seen) = dispatch(cluster, &graph(), &[("MODE", mode)]);
            assert_eq!(code, 0, "{mode}: {message}");
            assert!(message.starts_with("no run shop-play"), "{message}");
            assert_eq!(seen.len(), 1, "only the run was read: {seen:?}");
            assert_eq!(seen[0].path, RUN);
        }
    }
}

#[test]
fn an_unreadable_graph_is_reported_and_nothing_is_created() {
    if skip() {
        return;
    }
    // GRAPH_MAPS says 3; only two are mounted. The exit handler still succeeds; check fails.
    let (code, message, seen) = dispatch(Cluster::default(), &graph(), &[("GRAPH_MAPS", "3")]);
    assert_eq!(code, 0, "{message}");
    assert!(message.contains("tasks.json cannot be read"), "{message}");
    assert!(created(&seen).is_empty() && wakes(&seen).is_empty());
    let (code, message, _) = dispatch(Cluster::default(), &graph(), &[("GRAPH_MAPS", "3"), ("MODE", "check")]);
    assert_eq!(code, 1, "{message}");
}
