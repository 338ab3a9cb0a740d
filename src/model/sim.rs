//! Scenarios: a rendered tree installed into the model's store, the run pressed, and the clock
//! moved through scripted agents and a scripted GitHub until nothing is left to happen.
//!
//! The scripted world:
//! * **Agents.** The agent controller moves every CodeRun and DocsRun to `Running` when it is
//!   created and to `Succeeded` (or `Failed`, as the scenario says) after the stage's duration;
//!   a run deleted before that stops working at once. Every interval is recorded, so a test can
//!   see two agents working on one task at the same time.
//! * **GitHub.** A task's pull request opens when its first agent succeeds (head `task/<n>`,
//!   label `task-<n>`, head repository the project's own). It is merged (or closed) when the
//!   scenario says, relative to the moment the task starts waiting for it; in `merge` and
//!   `auto-merge` modes the merge agent's success merges it. Each merge or close is delivered as
//!   a `pull_request` webhook to the Sensors (unless the scenario loses it), and the Sensors'
//!   triggers are applied: `k8s` actions to the store, Argo Server resume calls to the
//!   controller.
//! * **Containers** are not run: the model knows the roles of ours by template name (the
//!   acceptance give-up fails; the reconcile reads GitHub and the state ConfigMaps and resumes
//!   gates; the launcher replaces a finished run) and lets any other succeed after a few seconds.
//! * **CronWorkflows** with a `*/N * * * *` schedule start a Workflow every N minutes
//!   (`concurrencyPolicy: Forbid` skips a tick while the previous one runs).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::store::{Change, Key, Store, text_of};
use super::workflow::{Controller, Node, NodeType, Phase, World};

/// When a task's pull request is merged, relative to the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Merged this many seconds after the pull request opened (possibly before the task waits).
    AfterOpen(u64),
    /// Merged this many seconds after the task starts waiting for the merge.
    AfterWait(u64),
    /// Closed without merging, this many seconds after the task starts waiting.
    Closed(u64),
    /// Never merged.
    Never,
}

/// What happens in one run of the model.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Seconds each stage's agent works, by stage label (`author`, `lint`, ...); others: `default_duration`.
    pub durations: BTreeMap<String, u64>,
    /// Duration of a stage not in `durations`.
    pub default_duration: u64,
    /// Agent runs that fail: (task number, stage, remediation attempt); `None` for every attempt.
    pub failures: Vec<(u64, String, Option<u64>)>,
    /// A pseudo-random share of agent runs that fail (0.0 to 1.0), drawn from `seed`.
    pub failure_rate: f64,
    /// Seed of the pseudo-random draws.
    pub seed: u64,
    /// Pods evicted: (task number, stage), the first pod of that stage, halfway through.
    pub evictions: Vec<(u64, String)>,
    /// When each task's pull request is merged (default for tasks not listed: `merge`).
    pub merges: BTreeMap<u64, Merge>,
    /// Merge timing of the other tasks.
    pub merge: Merge,
    /// Webhook deliveries lost (GitHub does not redeliver): merges of these tasks.
    pub lost_webhooks: BTreeSet<u64>,
    /// Secrets that do not exist in the cluster even though the tree references them.
    pub missing_secrets: BTreeSet<String>,
    /// Secrets someone created by hand beside the tree (a token Secret the tree lacks, say).
    pub extra_secrets: BTreeSet<String>,
    /// Whether the DocsRun CRD is installed.
    pub docs_crd: bool,
    /// HTTP answers by URL (others: 200 "ok").
    pub http: BTreeMap<String, (u16, String)>,
    /// Extra deliveries: (time, event type, body).
    pub deliveries: Vec<(u64, String, Value)>,
    /// State written by hand (`kubectl patch configmap <project>-task-<n>`): (time, task, value of
    /// `merged`).
    pub state_writes: Vec<(u64, u64, String)>,
    /// Manual resumes of the run: (time, node field selector).
    pub resumes: Vec<(u64, String)>,
    /// The deploy target is Degraded for a minute after the first sync.
    pub transient_degraded: bool,
    /// Stop the clock here (seconds).
    pub horizon: u64,
    /// Whether to press play at time 0 (create the tree's `run/` Workflow).
    pub press: bool,
    /// Later presses: at each time, the finished run is deleted (`argo delete`) and the tree's
    /// `run/` Workflow created again (`argo submit`), as a person does by hand.
    pub presses: Vec<u64>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            durations: BTreeMap::new(),
            default_duration: 1800,
            failures: Vec::new(),
            failure_rate: 0.0,
            seed: 1,
            evictions: Vec::new(),
            merges: BTreeMap::new(),
            merge: Merge::AfterWait(600),
            lost_webhooks: BTreeSet::new(),
            missing_secrets: BTreeSet::new(),
            extra_secrets: BTreeSet::new(),
            docs_crd: true,
            http: BTreeMap::new(),
            deliveries: Vec::new(),
            resumes: Vec::new(),
            state_writes: Vec::new(),
            transient_degraded: false,
            horizon: 30 * 86400,
            press: true,
            presses: Vec::new(),
        }
    }
}

/// One agent's work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRun {
    /// CodeRun or DocsRun.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Task number (label `pressplay.dev/task-number`).
    pub task: u64,
    /// Stage (label `pressplay.dev/stage`).
    pub stage: String,
    /// The Workflow that created it (label `pressplay.dev/workflow`).
    pub workflow: String,
    /// Started.
    pub start: u64,
    /// Ended (finished or deleted), if it did.
    pub end: Option<u64>,
    /// Final phase.
    pub phase: String,
}

/// A pull request of the scripted GitHub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    /// Number.
    pub number: u64,
    /// Task number.
    pub task: u64,
    /// Opened.
    pub opened: u64,
    /// `open`, `merged` or `closed`.
    pub state: String,
    /// When it was merged or closed.
    pub closed: Option<u64>,
}

/// What a scenario produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Agent runs in creation order.
    pub agents: Vec<AgentRun>,
    /// Pull requests by task.
    pub prs: BTreeMap<u64, PullRequest>,
    /// When each task started waiting for its merge (first `gate-wait` or merge stage).
    pub waits: BTreeMap<u64, u64>,
    /// When each task's state ConfigMap first recorded `merged: "true"` (or `closed`).
    pub recorded: BTreeMap<u64, (u64, String)>,
    /// Workflows by name: (phase, message, started, finished, nodes, status bytes, conditions).
    pub workflows: Vec<WorkflowSummary>,
    /// Every trigger a Sensor fired or failed, with its time.
    pub triggers: Vec<(u64, String)>,
    /// Peak number of agents working at once.
    pub peak_agents: usize,
    /// Peak number of pods at once (resource and container nodes, agent pods, agents).
    pub peak_pods: usize,
    /// The largest object in the store: bytes and key.
    pub largest_object: (usize, String),
    /// The largest Workflow status: bytes and Workflow.
    pub largest_status: (usize, String),
    /// Every node of every Workflow: (workflow, node, template, phase, message), for debugging.
    pub nodes: Vec<(String, String, String, String, String)>,
    /// Time of the last event.
    pub end: u64,
    /// Nodes still waiting or running when the clock stopped: (workflow, node, template, message).
    pub stuck: Vec<(String, String, String, String)>,
    /// What the model could not do or decided to skip.
    pub notes: Vec<String>,
    /// Objects left at the end: kind → names.
    pub left: BTreeMap<String, Vec<String>>,
}

/// One Workflow's summary.
#[derive(Clone, Debug)]
pub struct WorkflowSummary {
    /// Name.
    pub name: String,
    /// Final phase.
    pub phase: String,
    /// Message.
    pub message: String,
    /// Started.
    pub started: u64,
    /// Finished.
    pub finished: Option<u64>,
    /// Node count.
    pub nodes: usize,
    /// Status bytes.
    pub status_bytes: usize,
    /// Conditions (MetricsError).
    pub conditions: Vec<String>,
    /// Whether a CronWorkflow started it.
    pub cron: bool,
}

impl Outcome {
    /// The summary of a Workflow by name (the last one of that name).
    pub fn workflow(&self, name: &str) -> Option<&WorkflowSummary> {
        self.workflows.iter().rev().find(|w| w.name == name)
    }

    /// The agent runs of a task.
    pub fn agents_of(&self, task: u64) -> Vec<&AgentRun> {
        self.agents.iter().filter(|a| a.task == task).collect()
    }

    /// The most agents that worked on one task at the same time.
    pub fn max_agents_per_task(&self) -> usize {
        let tasks: BTreeSet<u64> = self.agents.iter().map(|a| a.task).collect();
        tasks
            .into_iter()
            .map(|t| peak(&self.agents_of(t).iter().map(|a| (a.start, a.end.unwrap_or(self.end))).collect::<Vec<_>>()))
            .max()
            .unwrap_or(0)
    }

    /// When a task's pull request was merged.
    pub fn merged_at(&self, task: u64) -> Option<u64> {
        self.prs.get(&task).filter(|p| p.state == "merged").and_then(|p| p.closed)
    }

    /// When the first agent of a task started.
    pub fn started_at(&self, task: u64) -> Option<u64> {
        self.agents_of(task).iter().map(|a| a.start).min()
    }

    /// Agent-hours spent.
    pub fn agent_hours(&self) -> f64 {
        self.agents.iter().map(|a| a.end.unwrap_or(self.end) - a.start).sum::<u64>() as f64 / 3600.0
    }
}

fn peak(intervals: &[(u64, u64)]) -> usize {
    let mut events: Vec<(u64, i32)> = intervals.iter().flat_map(|(s, e)| [(*s, 1), (*e, -1)]).collect();
    events.sort_by_key(|(t, d)| (*t, *d));
    let (mut now, mut best) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        best = best.max(now);
    }
    usize::try_from(best).unwrap_or(0)
}

/// The scripted world.
struct Script<'s> {
    scenario: &'s Scenario,
    project: String,
    namespace: String,
    repository: String,
    agents: Vec<AgentRun>,
    /// Agent runs to finish: (time, index into agents).
    due: BTreeSet<(u64, usize)>,
    prs: BTreeMap<u64, PullRequest>,
    /// GitHub deliveries to make: (time, sequence, event, body).
    outbox: BTreeSet<(u64, u64, String, String)>,
    sequence: u64,
    waits: BTreeMap<u64, u64>,
    evicted: BTreeSet<String>,
    rng: u64,
    resumes: Vec<(String, String)>,
    notes: Vec<String>,
    /// The object the deploy agent syncs (from the `deploy-wait` template): API version, kind,
    /// namespace, name.
    deploy_target: Option<(String, String, String, String)>,
    /// Deploy-target updates to make: (time, object).
    argocd: Vec<(u64, Value)>,
}

impl Script<'_> {
    /// The deploy agent's work, as its profile asks: the preview synced with this task's
    /// change, labelled with the task number (and the deploy token, when the run passes one).
    /// Argo CD then reports it healthy; with `transient_degraded` the first sync is Degraded
    /// for a minute first.
    fn deployed(&mut self, now: u64, object: &Value, task: u64) {
        let Some((api, kind, namespace, name)) = self.deploy_target.clone() else { return };
        let token = object.pointer("/spec/env/PRESSPLAY_DEPLOY_TOKEN").map(text_of).unwrap_or_default();
        let mut labels = json!({"pressplay-task": task.to_string()});
        if !token.is_empty() {
            labels["pressplay-deploy"] = json!(token);
        }
        let target = |health: &str| {
            json!({
                "apiVersion": api, "kind": kind,
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "status": {"health": {"status": health}, "sync": {"status": "Synced", "revision": format!("{task:040x}")}, "operationState": {"phase": "Succeeded"}},
            })
        };
        if self.scenario.transient_degraded && self.argocd.is_empty() {
            self.argocd.push((now, target("Degraded")));
            self.argocd.push((now + 60, target("Healthy")));
        } else {
            self.argocd.push((now, target("Healthy")));
        }
    }

    fn random(&mut self) -> f64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    }

    fn label(object: &Value, name: &str) -> String {
        object.pointer(&format!("/metadata/labels/{}", name.replace('/', "~1"))).map(text_of).unwrap_or_default()
    }

    /// A CodeRun or DocsRun appeared: schedule its end.
    fn agent_created(&mut self, now: u64, store: &mut Store, key: &Key) {
        let Some(object) = store.get(key).cloned() else { return };
        let task: u64 = Script::label(&object, "pressplay.dev/task-number").parse().unwrap_or(0);
        let stage = Script::label(&object, "pressplay.dev/stage");
        let attempt: u64 = object
            .pointer("/spec/env/PRESSPLAY_REMEDIATION_ATTEMPT")
            .or_else(|| object.pointer("/metadata/annotations/pressplay.dev~1remediation-attempt"))
            .map(text_of)
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let duration = self.scenario.durations.get(&stage).copied().unwrap_or(self.scenario.default_duration);
        let scripted =
            self.scenario.failures.iter().any(|(t, s, a)| *t == task && *s == stage && a.is_none_or(|a| a == attempt));
        let drawn = self.scenario.failure_rate > 0.0 && self.random() < self.scenario.failure_rate;
        let phase = if scripted || drawn { "Failed" } else { "Succeeded" };
        let _ = store.set(key, "/status/phase", json!("Running"));
        let index = self.agents.len();
        self.agents.push(AgentRun {
            kind: key.kind.clone(),
            name: key.name.clone(),
            task,
            stage: stage.clone(),
            workflow: Script::label(&object, "pressplay.dev/workflow"),
            start: now,
            end: None,
            phase: phase.into(),
        });
        // The merge agent in `merge`/`auto-merge` mode merges; in `wait` mode it waits for people.
        let mode = object.pointer("/spec/env/PRESSPLAY_MERGE_MODE").map(text_of).unwrap_or_default();
        if stage == "merge" && mode == "wait" {
            self.waits.entry(task).or_insert(now);
        }
        self.due.insert((now + duration, index));
    }

    fn agent_finished(&mut self, now: u64, store: &mut Store, index: usize) {
        let run = self.agents[index].clone();
        if run.end.is_some() {
            return;
        }
        let key = Key { kind: run.kind.clone(), namespace: self.namespace.clone(), name: run.name.clone() };
        if store.get(&key).is_none() {
            return;
        }
        self.agents[index].end = Some(now);
        let mut phase = run.phase.clone();
        if run.stage == "merge" {
            let mode = store
                .get(&key)
                .and_then(|o| o.pointer("/spec/env/PRESSPLAY_MERGE_MODE").map(text_of))
                .unwrap_or_default();
            if mode == "wait" {
                // It polls until a person merges: it ends when the PR does.
                match self.prs.get(&run.task).map(|p| (p.state.clone(), p.closed)) {
                    Some((state, Some(closed))) if state == "merged" => {
                        let _ = closed;
                    }
                    Some((state, _)) if state == "closed" => phase = "Failed".into(),
                    _ => {
                        self.agents[index].end = None;
                        self.due.insert((now + 300, index));
                        return;
                    }
                }
            } else if phase == "Succeeded" {
                self.merge_pr(now, run.task, true);
            }
        }
        if run.stage == "deploy"
            && phase == "Succeeded"
            && let Some(object) = store.get(&key).cloned()
        {
            self.deployed(now, &object, run.task);
        }
        let _ = store.set(&key, "/status/phase", json!(phase));
        if phase == "Succeeded" {
            let pr = 1000 + run.task;
            let _ = store.set(
                &key,
                "/status/pullRequestUrl",
                json!(format!("https://github.com/{}/pull/{pr}", self.repository)),
            );
            if !self.prs.contains_key(&run.task) && run.task > 0 && run.stage != "triage" {
                self.prs.insert(
                    run.task,
                    PullRequest { number: pr, task: run.task, opened: now, state: "open".into(), closed: None },
                );
                if let Merge::AfterOpen(delay) = self.merge_of(run.task) {
                    self.schedule_merge(now + delay, run.task, true);
                }
            }
        }
    }

    fn merge_of(&self, task: u64) -> Merge {
        self.scenario.merges.get(&task).copied().unwrap_or(self.scenario.merge)
    }

    fn schedule_merge(&mut self, at: u64, task: u64, merged: bool) {
        self.sequence += 1;
        self.outbox.insert((at, self.sequence, if merged { "merge".into() } else { "close".into() }, task.to_string()));
    }

    fn merge_pr(&mut self, now: u64, task: u64, merged: bool) {
        let Some(pr) = self.prs.get_mut(&task) else { return };
        if pr.state != "open" {
            return;
        }
        pr.state = if merged { "merged".into() } else { "closed".into() };
        pr.closed = Some(now);
        if self.scenario.lost_webhooks.contains(&task) {
            return;
        }
        let body = self.pull_request_payload(task, merged);
        self.sequence += 1;
        self.outbox.insert((now, self.sequence, "pull_request".into(), body.to_string()));
    }

    fn pull_request_payload(&self, task: u64, merged: bool) -> Value {
        let pr = &self.prs[&task];
        let repo = json!({"full_name": self.repository, "name": self.repository.rsplit('/').next().unwrap_or("")});
        json!({
            "action": "closed",
            "number": pr.number,
            "pull_request": {
                "number": pr.number,
                "state": "closed",
                "merged": merged,
                "merge_commit_sha": if merged { json!(format!("{:040x}", task)) } else { Value::Null },
                "labels": [{"name": format!("task-{task}")}],
                "head": {"ref": format!("task/{task}"), "repo": repo.clone()},
                "base": {"ref": "main", "repo": repo.clone()},
                "user": {"login": "pressplay-author[bot]", "type": "Bot"},
            },
            "repository": repo,
            "sender": {"login": "octocat", "type": "User"},
        })
    }

    /// Tasks that started waiting: schedule their merges.
    fn observe_waits(&mut self, now: u64, controller: &Controller) {
        for run in controller.runs.iter().filter(|r| !r.done()) {
            for node in &run.nodes {
                let waiting = (node.template == "gate-wait" && node.phase == Phase::Running)
                    || node.template.ends_with("await-merge");
                if !waiting {
                    continue;
                }
                let Some(task) =
                    node.inputs.iter().find(|(n, _)| n == "task-number").and_then(|(_, v)| v.parse::<u64>().ok())
                else {
                    continue;
                };
                if self.waits.contains_key(&task) {
                    continue;
                }
                self.waits.insert(task, now);
            }
        }
        let waiting: Vec<(u64, u64)> = self.waits.iter().map(|(t, w)| (*t, *w)).collect();
        for (task, since) in waiting {
            if self.prs.get(&task).is_none_or(|p| p.state != "open") {
                continue;
            }
            let already = self
                .outbox
                .iter()
                .any(|(_, _, kind, t)| (kind == "merge" || kind == "close") && *t == task.to_string());
            if already {
                continue;
            }
            match self.merge_of(task) {
                Merge::AfterWait(delay) => self.schedule_merge(since + delay, task, true),
                Merge::Closed(delay) => self.schedule_merge(since + delay, task, false),
                Merge::AfterOpen(_) | Merge::Never => {}
            }
        }
    }
}

impl World for Script<'_> {
    fn container(&mut self, now: u64, store: &mut Store, run: &str, template: &Value) -> (u64, i32, String) {
        let name = text_of(&template["name"]);
        if name.contains("reconcile") {
            return self.reconcile(now, store);
        }
        let _ = run;
        if name == "press" {
            return self.press(store, template);
        }
        // A script that ends in `exit 1` fails; what it echoes first is its message.
        let script = template
            .pointer("/container/args")
            .and_then(Value::as_array)
            .and_then(|a| a.last())
            .map(text_of)
            .unwrap_or_default();
        if script.trim_end().ends_with("exit 1") {
            let env: BTreeMap<String, String> = template
                .pointer("/container/env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|e| (text_of(&e["name"]), text_of(&e["value"])))
                .collect();
            let mut message =
                script.split("echo \"").nth(1).and_then(|m| m.split('"').next()).unwrap_or(&name).to_string();
            for (k, v) in &env {
                message = message.replace(&format!("${k}"), v);
            }
            return (1, 1, message);
        }
        (5, 0, String::new())
    }

    fn http(&mut self, _now: u64, url: &str, _method: &str) -> (u16, String) {
        self.scenario.http.get(url).cloned().unwrap_or((200, "ok".into()))
    }

    fn evicted(&mut self, _now: u64, run: &str, node: &Node) -> bool {
        if node.kind != NodeType::Pod || node.phase != Phase::Running {
            return false;
        }
        let stage = node.template.trim_start_matches("coderun-").trim_start_matches("docsrun-");
        let task =
            node.inputs.iter().find(|(n, _)| n == "task-number").and_then(|(_, v)| v.parse::<u64>().ok()).unwrap_or(0);
        let id = format!("{run}/{task}/{stage}");
        if self.scenario.evictions.iter().any(|(t, s)| *t == task && s == stage) && !self.evicted.contains(&id) {
            // Halfway through the agent's work: the agent keeps working.
            let working = self.agents.iter().any(|a| a.task == task && a.stage == stage && a.end.is_none());
            if working {
                self.evicted.insert(id);
                return true;
            }
        }
        false
    }

    fn resumes(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.resumes)
    }
}

impl Script<'_> {
    /// The press launcher's script, as its effect: a finished run is deleted and the new one
    /// created; a run in progress is left alone and the launcher fails saying so.
    fn press(&mut self, store: &mut Store, template: &Value) -> (u64, i32, String) {
        let env: BTreeMap<String, String> = template
            .pointer("/script/env")
            .or_else(|| template.pointer("/container/env"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| (text_of(&e["name"]), text_of(&e["value"])))
            .collect();
        let Some(manifest) = env.get("RUN_MANIFEST").and_then(|m| serde_json::from_str::<Value>(m).ok()) else {
            return (1, 1, "the launcher has no RUN_MANIFEST".into());
        };
        let Ok(key) = Store::key_of(&manifest, &self.namespace) else { return (1, 1, "bad RUN_MANIFEST".into()) };
        if let Some(existing) = store.get(&key) {
            let phase = existing.pointer("/status/phase").map(text_of).unwrap_or_default();
            if phase.is_empty() || phase == "Running" || phase == "Pending" {
                return (2, 1, format!("a run is in progress: {}; it goes on, this press changed nothing", key.name));
            }
            let _ = store.delete(&key);
        }
        match store.create(manifest, &self.namespace) {
            Ok(_) => (10, 0, String::new()),
            Err(e) => (10, 1, e),
        }
    }

    /// The reconcile CronWorkflow's script, as its effect: records every merged or closed task PR
    /// in its state ConfigMap and resumes every gate whose state is final.
    fn reconcile(&mut self, _now: u64, store: &mut Store) -> (u64, i32, String) {
        for pr in self.prs.values() {
            if pr.state == "open" {
                continue;
            }
            let value = if pr.state == "merged" { "true" } else { "closed" };
            let patch = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("{}-task-{}", self.project, pr.task), "labels": {"workflows.argoproj.io/configmap-type": "Parameter"}},
                "data": {"merged": value, "task-number": pr.task.to_string(), "pr": pr.number.to_string()},
            });
            let _ = store.merge_patch(&patch, &self.namespace, true);
        }
        let maps: Vec<(u64, String)> = store
            .list("ConfigMap", &self.namespace)
            .filter_map(|(key, cm)| {
                let task = key.name.strip_prefix(&format!("{}-task-", self.project))?.parse().ok()?;
                let merged = cm["data"]["merged"].as_str()?;
                (merged == "true" || merged == "closed").then(|| (task, merged.to_string()))
            })
            .collect();
        let runs: Vec<String> = store.list("Workflow", &self.namespace).map(|(k, _)| k.name.clone()).collect();
        for (task, _) in maps {
            for run in &runs {
                self.resumes.push((run.clone(), format!("templateName=gate-wait,inputs.parameters.gate.value=merged,inputs.parameters.task-number.value={task}")));
            }
        }
        (20, 0, String::new())
    }
}

/// Sends a delivery to the Sensors and applies what their triggers do.
pub type Dispatch = dyn Fn(&[Value], &str, &str, &Value) -> Vec<Trigger>;

/// What one Sensor trigger did with a delivery.
#[derive(Clone, Debug)]
pub enum Trigger {
    /// A `k8s` trigger: operation and object.
    K8s { sensor: String, operation: String, object: Value },
    /// An `http` trigger: URL, method and JSON payload.
    Http { sensor: String, url: String, method: String, payload: Value },
    /// A trigger that failed (a parameter did not resolve, say).
    Failed { sensor: String, reason: String },
    /// A Sensor that dropped the event (a filter's path did not exist, say).
    Dropped { sensor: String, reason: String },
}

/// Runs a scenario on a rendered tree (relative path → text).
pub fn run(files: &BTreeMap<String, String>, scenario: &Scenario, dispatch: &Dispatch) -> Result<Outcome, String> {
    let mut docs = Vec::new();
    let mut press = None;
    for (path, text) in files {
        if path.ends_with("kustomization.yaml") || !path.ends_with(".yaml") {
            continue;
        }
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| format!("{path}: {e}"))?;
        if path.starts_with("run/") {
            press = Some(doc);
        } else {
            docs.push(doc);
        }
    }
    let mut store = Store::new(["CodeRun".to_string(), "Application".to_string(), "ExternalSecret".to_string()]);
    if scenario.docs_crd {
        store.install("DocsRun");
    }
    let orchestrator = docs
        .iter()
        .find(|d| {
            d["kind"] == "WorkflowTemplate"
                && d.pointer("/metadata/labels/pressplay.dev~1component").and_then(Value::as_str)
                    == Some("orchestrator")
        })
        .ok_or("the tree has no orchestrator WorkflowTemplate")?;
    let project = orchestrator.pointer("/metadata/labels/pressplay.dev~1project").map(text_of).unwrap_or_default();
    let namespace = orchestrator.pointer("/metadata/namespace").map(text_of).unwrap_or_default();
    let repository = orchestrator
        .pointer("/metadata/labels/pressplay.dev~1repository")
        .map(text_of)
        .unwrap_or_default()
        .replacen('.', "/", 1);
    for doc in &docs {
        store.create(doc.clone(), &namespace).map_err(|e| format!("installing the tree: {e}"))?;
    }
    // What the cluster provides beside the tree: Secrets the ExternalSecret and the user create
    // (all but the missing ones), the deploy target.
    for secret in referenced_secrets(&docs).into_iter().chain(scenario.extra_secrets.iter().cloned()) {
        if !scenario.missing_secrets.contains(&secret) {
            let _ =
                store.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret}}), &namespace);
        }
    }
    let mut script = Script {
        scenario,
        project: project.clone(),
        namespace: namespace.clone(),
        repository,
        agents: Vec::new(),
        due: BTreeSet::new(),
        prs: BTreeMap::new(),
        outbox: BTreeSet::new(),
        sequence: 0,
        waits: BTreeMap::new(),
        evicted: BTreeSet::new(),
        rng: scenario.seed,
        resumes: Vec::new(),
        notes: Vec::new(),
        deploy_target: deploy_target(&docs),
        argocd: Vec::new(),
    };
    for (at, event, body) in &scenario.deliveries {
        script.sequence += 1;
        script.outbox.insert((*at, script.sequence, event.clone(), body.to_string()));
    }
    let mut controller = Controller::default();
    let mut outcome = Outcome::default();
    let _ = store.drain();
    let press = press.ok_or("the tree has no run/ Workflow")?;
    if scenario.press {
        store.create(press.clone(), &namespace)?;
    }
    let mut presses = scenario.presses.clone();
    let crons: Vec<Value> = docs.iter().filter(|d| d["kind"] == "CronWorkflow").cloned().collect();
    let mut pending_resumes: Vec<(u64, String)> = scenario.resumes.clone();
    let mut state_writes = scenario.state_writes.clone();
    let mut recorded: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut samples_pods = 0usize;
    let mut guard = 0u64;
    loop {
        guard += 1;
        if guard > 2_000_000 {
            outcome.notes.push("the model stopped after two million steps".into());
            break;
        }
        // Settle this instant.
        for _ in 0..200 {
            let before = controller.fingerprint();
            controller.pass(&mut store, &mut script);
            let changes = store.drain();
            controller.observe(&store, &changes);
            for change in &changes {
                match change {
                    Change::Created(key) if key.kind == "CodeRun" || key.kind == "DocsRun" => {
                        script.agent_created(controller.now, &mut store, key);
                    }
                    // A deleted run stops its agent.
                    Change::Deleted(key) if key.kind == "CodeRun" || key.kind == "DocsRun" => {
                        let now = controller.now;
                        for agent in script.agents.iter_mut().filter(|a| a.name == key.name && a.end.is_none()) {
                            agent.end = Some(now);
                            agent.phase = "Deleted".into();
                        }
                    }
                    _ => {}
                }
            }
            let _ = store.drain();
            script.observe_waits(controller.now, &controller);
            if changes.is_empty() && controller.fingerprint() == before {
                break;
            }
        }
        record_states(&store, &project, &namespace, controller.now, &mut recorded);
        samples_pods = samples_pods.max(pods_now(&controller, &script));
        // The next instant anything happens.
        let now = controller.now;
        let next = [
            controller.timers.range(now + 1..).next().copied(),
            script.due.iter().next().map(|(t, _)| *t),
            script.outbox.iter().next().map(|(t, ..)| *t),
            pending_resumes.iter().map(|(t, _)| *t).min(),
            script.argocd.iter().map(|(t, _)| *t).min(),
            state_writes.iter().map(|(t, ..)| *t).min(),
            presses.iter().copied().min(),
            next_cron(&crons, now),
        ]
        .into_iter()
        .flatten()
        .filter(|t| *t >= now)
        .min();
        let Some(next) = next else { break };
        if next > scenario.horizon {
            break;
        }
        let next = next.max(now);
        controller.now = next;
        controller.timers.retain(|t| *t > next);
        let due: Vec<(u64, usize)> = script.due.iter().take_while(|(t, _)| *t <= next).copied().collect();
        for item in due {
            script.due.remove(&item);
            script.agent_finished(next, &mut store, item.1);
        }
        let updates: Vec<(u64, Value)> = script.argocd.iter().filter(|(t, _)| *t <= next).cloned().collect();
        script.argocd.retain(|(t, _)| *t > next);
        for (_, object) in updates {
            let _ = store.apply(object, &namespace);
        }
        let deliveries: Vec<(u64, u64, String, String)> =
            script.outbox.iter().take_while(|(t, ..)| *t <= next).cloned().collect();
        for item in deliveries {
            script.outbox.remove(&item);
            let (_, _, event, body) = item;
            match event.as_str() {
                "merge" => script.merge_pr(next, body.parse().unwrap_or(0), true),
                "close" => script.merge_pr(next, body.parse().unwrap_or(0), false),
                _ => {
                    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let delivery = format!("{:08x}-0000-4000-8000-{:012x}", next, script.sequence);
                    let sensors: Vec<Value> = store
                        .list("Sensor", &namespace)
                        .map(|(_, s)| s.clone())
                        .filter(|s| {
                            super::events::secrets_referenced(s).iter().all(|name| {
                                store
                                    .get(&Key {
                                        kind: "Secret".into(),
                                        namespace: namespace.clone(),
                                        name: name.clone(),
                                    })
                                    .is_some()
                            })
                        })
                        .collect();
                    for trigger in dispatch(&sensors, &event, &delivery, &body) {
                        apply_trigger(next, &mut store, &mut controller, &namespace, trigger, &mut outcome.triggers);
                    }
                }
            }
        }
        presses.retain(|t| {
            if *t > next {
                return true;
            }
            if let Ok(key) = Store::key_of(&press, &namespace) {
                if store.get(&key).is_some_and(|w| {
                    w.pointer("/status/phase").map(text_of).is_some_and(|p| p != "Running" && p != "Pending")
                }) {
                    let _ = store.delete(&key);
                }
                if let Err(e) = store.create(press.clone(), &namespace) {
                    outcome.notes.push(format!("t={next}: press: {e}"));
                }
            }
            false
        });
        state_writes.retain(|(t, task, value)| {
            if *t > next {
                return true;
            }
            let patch = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("{project}-task-{task}"), "labels": {"workflows.argoproj.io/configmap-type": "Parameter"}},
                "data": {"merged": value},
            });
            let _ = store.merge_patch(&patch, &namespace, true);
            false
        });
        pending_resumes.retain(|(t, selector)| {
            if *t <= next {
                let run = format!("{project}-play");
                if let Err(e) = controller.resume(&namespace, &run, selector) {
                    outcome.notes.push(format!("t={next}: manual resume: {e}"));
                }
                false
            } else {
                true
            }
        });
        for cron in &crons {
            start_cron(cron, next, &mut store, &controller, &namespace);
        }
        controller.collect_garbage(&mut store);
    }
    // The report.
    outcome.end = controller.now;
    for run in &controller.runs {
        let stuck = !run.done();
        for node in &run.nodes {
            outcome.nodes.push((
                run.key.name.clone(),
                node.name.clone(),
                node.template.clone(),
                node.phase.name().into(),
                node.message.clone(),
            ));
            if stuck && !node.phase.done() && node.children.is_empty() {
                outcome.stuck.push((
                    run.key.name.clone(),
                    node.name.clone(),
                    node.template.clone(),
                    node.message.clone(),
                ));
            }
        }
        let bytes = if run.done() { run.status_bytes } else { run.status_size() };
        if bytes > controller.largest_status.0 {
            controller.largest_status = (bytes, run.key.name.clone());
        }
        outcome.workflows.push(WorkflowSummary {
            name: run.key.name.clone(),
            phase: if run.done() { run.phase.name().into() } else { "Running".into() },
            message: run.message.clone(),
            started: run.started,
            finished: run.finished,
            nodes: run.nodes.len(),
            status_bytes: bytes,
            conditions: run.conditions.clone(),
            cron: run.cron,
        });
    }
    outcome.largest_status = controller.largest_status.clone();
    outcome.largest_object = (store.largest.0, store.largest.1.as_ref().map(ToString::to_string).unwrap_or_default());
    outcome.peak_agents =
        peak(&script.agents.iter().map(|a| (a.start, a.end.unwrap_or(controller.now))).collect::<Vec<_>>());
    outcome.peak_pods = samples_pods;
    outcome.agents = script.agents;
    outcome.prs = script.prs;
    outcome.waits = script.waits;
    outcome.recorded = recorded;
    outcome.notes.extend(controller.notes);
    outcome.notes.extend(script.notes);
    for (key, object) in store.all() {
        let phase = object.pointer("/status/phase").map(text_of).unwrap_or_default();
        if ["CodeRun", "DocsRun", "Workflow"].contains(&key.kind.as_str()) {
            outcome.left.entry(key.kind.clone()).or_default().push(format!("{} {phase}", key.name));
        }
    }
    Ok(outcome)
}

fn deploy_target(docs: &[Value]) -> Option<(String, String, String, String)> {
    for doc in docs.iter().filter(|d| d["kind"] == "WorkflowTemplate") {
        for template in doc.pointer("/spec/templates").and_then(Value::as_array).into_iter().flatten() {
            if template["name"] == "deploy-wait"
                && let Some(manifest) = template.pointer("/resource/manifest").and_then(Value::as_str)
                && let Ok(object) = serde_saphyr::from_str::<Value>(manifest)
            {
                let field = |p: &str| object.pointer(p).map(text_of).unwrap_or_default();
                return Some((
                    field("/apiVersion"),
                    field("/kind"),
                    field("/metadata/namespace"),
                    field("/metadata/name"),
                ));
            }
        }
    }
    None
}

fn pods_now(controller: &Controller, script: &Script<'_>) -> usize {
    let nodes: usize = controller
        .runs
        .iter()
        .filter(|r| !r.done())
        .map(|r| r.nodes.iter().filter(|n| n.kind == NodeType::Pod && n.phase == Phase::Running).count())
        .sum();
    let agent_pods =
        controller.runs.iter().filter(|r| !r.done() && r.nodes.iter().any(|n| n.kind == NodeType::Http)).count();
    nodes + agent_pods + script.agents.iter().filter(|a| a.end.is_none()).count()
}

fn record_states(store: &Store, project: &str, namespace: &str, now: u64, recorded: &mut BTreeMap<u64, (u64, String)>) {
    let prefix = format!("{project}-task-");
    for (key, cm) in store.list("ConfigMap", namespace) {
        let Some(task) = key.name.strip_prefix(&prefix).and_then(|t| t.parse::<u64>().ok()) else { continue };
        if let Some(value) = cm["data"]["merged"].as_str()
            && (value == "true" || value == "closed")
        {
            recorded.entry(task).or_insert((now, value.to_string()));
        }
    }
}

fn apply_trigger(
    now: u64,
    store: &mut Store,
    controller: &mut Controller,
    namespace: &str,
    trigger: Trigger,
    log: &mut Vec<(u64, String)>,
) {
    match trigger {
        Trigger::K8s { sensor, operation, object } => {
            let name = object.pointer("/metadata/name").map(text_of).unwrap_or_default();
            let result = match operation.as_str() {
                "patch" => store.merge_patch(&object, namespace, true).map(|_| ()),
                "update" => store.apply(object, namespace).map(|_| ()),
                "delete" => Store::key_of(&object, namespace)
                    .and_then(|k| if store.get(&k).is_some() { store.delete(&k) } else { Ok(()) }),
                _ => store.create(object, namespace).map(|_| ()),
            };
            log.push((
                now,
                format!("{sensor}: k8s {operation} {name}: {}", result.err().unwrap_or_else(|| "ok".into())),
            ));
        }
        Trigger::Http { sensor, url, method, payload } => {
            let path = url.split_once("/api/v1/workflows/").map(|(_, p)| p.to_string()).unwrap_or_default();
            let parts: Vec<&str> = path.split('/').collect();
            let result = match (method.as_str(), parts.as_slice()) {
                ("PUT", [ns, name, "resume"]) => controller
                    .resume(ns, name, payload["nodeFieldSelector"].as_str().unwrap_or(""))
                    .map(|n| format!("resumed {n} node(s)")),
                _ => Err(format!("{method} {url} is not modelled")),
            };
            log.push((
                now,
                format!("{sensor}: http {method} {url}: {}", result.unwrap_or_else(|e| format!("HTTP 500: {e}"))),
            ));
        }
        Trigger::Failed { sensor, reason } => log.push((now, format!("{sensor}: trigger failed: {reason}"))),
        Trigger::Dropped { sensor, reason } => log.push((now, format!("{sensor}: event dropped: {reason}"))),
    }
}

fn collect_secret_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if (k == "secretKeyRef" || k == "caCertSecret" || k == "clientCertSecret" || k == "clientKeySecret")
                    && let Some(name) = v["name"].as_str()
                {
                    out.insert(name.to_string());
                }
                collect_secret_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secret_refs(v, out)),
        _ => {}
    }
}

fn referenced_secrets(docs: &[Value]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for doc in docs {
        if doc["kind"] == "ExternalSecret" {
            if let Some(name) = doc.pointer("/spec/target/name").and_then(Value::as_str) {
                out.insert(name.to_string());
            }
            continue;
        }
        if doc["kind"] == "Secret" {
            continue;
        }
        collect_secret_refs(doc, &mut out);
    }
    out
}

fn cron_every(cron: &Value) -> Option<u64> {
    let schedule =
        cron.pointer("/spec/schedule").or_else(|| cron.pointer("/spec/schedules/0")).and_then(Value::as_str)?;
    let minute = schedule.split_whitespace().next()?;
    minute.strip_prefix("*/").and_then(|n| n.parse::<u64>().ok()).map(|n| n * 60)
}

fn next_cron(crons: &[Value], now: u64) -> Option<u64> {
    crons.iter().filter_map(cron_every).map(|every| (now / every + 1) * every).min()
}

fn start_cron(cron: &Value, now: u64, store: &mut Store, controller: &Controller, namespace: &str) {
    let Some(every) = cron_every(cron) else { return };
    if !now.is_multiple_of(every) {
        return;
    }
    let name = cron.pointer("/metadata/name").map(text_of).unwrap_or_default();
    let forbid = cron.pointer("/spec/concurrencyPolicy").and_then(Value::as_str) == Some("Forbid");
    let prefix = format!("{name}-");
    if forbid && controller.live().any(|r| r.key.name.starts_with(&prefix)) {
        return;
    }
    let workflow = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": format!("{name}-{now}"), "labels": {"workflows.argoproj.io/cron-workflow": name}},
        "spec": cron.pointer("/spec/workflowSpec").cloned().unwrap_or(Value::Null),
    });
    let _ = store.create(workflow, namespace);
}

/// The per-task timeline as text.
pub fn timeline(outcome: &Outcome) -> String {
    let mut out = String::new();
    let tasks: BTreeSet<u64> = outcome.agents.iter().map(|a| a.task).chain(outcome.prs.keys().copied()).collect();
    for task in tasks {
        let _ = write!(out, "task {task}:");
        for agent in outcome.agents_of(task) {
            let _ = write!(
                out,
                " {}[{}–{}]{}",
                agent.stage,
                clock(agent.start),
                agent.end.map_or("…".into(), clock),
                if agent.phase == "Failed" { "✗" } else { "" }
            );
        }
        if let Some(wait) = outcome.waits.get(&task) {
            let _ = write!(out, " wait[{}", clock(*wait));
        }
        match outcome.prs.get(&task) {
            Some(pr) if pr.state == "merged" => {
                let _ = write!(out, "] merged {}", pr.closed.map_or(String::new(), clock));
            }
            Some(pr) if pr.state == "closed" => {
                let _ = write!(out, "] closed {}", pr.closed.map_or(String::new(), clock));
            }
            _ => out.push_str(if outcome.waits.contains_key(&task) { "…]" } else { "" }),
        }
        out.push('\n');
    }
    out
}

/// `1d02:05` for seconds.
pub fn clock(seconds: u64) -> String {
    let (days, rest) = (seconds / 86400, seconds % 86400);
    let (hours, minutes) = (rest / 3600, (rest % 3600) / 60);
    if days > 0 { format!("{days}d{hours:02}:{minutes:02}") } else { format!("{hours:02}:{minutes:02}") }
}

/// A Mermaid Gantt chart of the agents' work and the merge waits.
pub fn mermaid(outcome: &Outcome) -> String {
    let mut out = String::from("gantt\n  dateFormat X\n  axisFormat %H:%M\n");
    let tasks: BTreeSet<u64> = outcome.agents.iter().map(|a| a.task).collect();
    for task in tasks {
        let _ = writeln!(out, "  section task {task}");
        for agent in outcome.agents_of(task) {
            let end = agent.end.unwrap_or(outcome.end).max(agent.start + 1);
            let tag = if agent.phase == "Failed" { "crit, " } else { "" };
            let _ = writeln!(out, "    {} :{tag}{}, {}", agent.stage, agent.start, end);
        }
        if let Some(wait) = outcome.waits.get(&task) {
            let end = outcome.merged_at(task).unwrap_or(outcome.end).max(*wait + 1);
            let _ = writeln!(out, "    merge wait :active, {wait}, {end}");
        }
    }
    out
}
