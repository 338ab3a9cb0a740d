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
//!   acceptance give-up fails; the reconcile reads GitHub and the state ConfigMaps and wakes the
//!   waiting gates of Running task Workflows; the launcher replaces a finished run; the
//!   dispatcher `dispatch` starts the ready task Workflows, wakes the run when it is finished and
//!   gives the verdict) and lets any other succeed after a few seconds.
//! * **CronWorkflows** with a `*/N * * * *` schedule start a Workflow every N minutes
//!   (`concurrencyPolicy: Forbid` skips a tick while the previous one runs).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::store::{Change, Key, Store, text_of};
use super::workflow::{Controller, Node, NodeType, Phase, Resume, World};

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
    /// Manual resumes (`argo resume`): (time, node field selector). They go to the live task
    /// Workflow `<project>-task-<n>` when the selector names `inputs.parameters.task-number.value`
    /// and that Workflow exists, else to the run `<project>-play`.
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
    resumes: Vec<Resume>,
    notes: Vec<String>,
    /// The object the deploy agent syncs (from the `deploy-wait` template): API version, kind,
    /// namespace, name.
    deploy_target: Option<(String, String, String, String)>,
    /// Deploy-target updates to make: (time, object).
    argocd: Vec<(u64, Value)>,
}

impl<'s> Script<'s> {
    fn new(
        scenario: &'s Scenario,
        project: &str,
        namespace: &str,
        repository: String,
        deploy_target: Option<(String, String, String, String)>,
    ) -> Script<'s> {
        Script {
            scenario,
            project: project.to_string(),
            namespace: namespace.to_string(),
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
            deploy_target,
            argocd: Vec::new(),
        }
    }
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
        let env = env_of(template);
        if name == "dispatch" || (env.contains_key("GRAPH_MAPS") && env.contains_key("MAX_OPEN")) {
            return self.dispatch(store, &env);
        }
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

    fn resumes(&mut self) -> Vec<Resume> {
        std::mem::take(&mut self.resumes)
    }
}

impl Script<'_> {
    /// The press launcher's script, as its effect: a finished run is deleted and the new one
    /// created; a run in progress is left alone and the launcher fails saying so.
    fn press(&mut self, store: &mut Store, template: &Value) -> (u64, i32, String) {
        let env = env_of(template);
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
    /// in its state ConfigMap and wakes the gate of every Running task Workflow
    /// `<project>-task-<n>` whose state is final and whose gate waits (the script reads the
    /// Workflow's node status first, so nothing is resumed where no gate waits).
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
        let final_tasks: BTreeSet<u64> = maps.into_iter().map(|(task, _)| task).collect();
        let prefix = format!("{}-task-", self.project);
        let running: Vec<(String, u64)> = store
            .list("Workflow", &self.namespace)
            .filter(|(_, wf)| wf.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
            .filter_map(|(key, _)| Some((key.name.clone(), canonical(key.name.strip_prefix(&prefix)?)?)))
            .collect();
        for (workflow, task) in running {
            if final_tasks.contains(&task) {
                self.resumes.push(Resume { workflow, selector: gate_selector(task), if_waiting: true });
            }
        }
        (20, 0, String::new())
    }
}

/// The dispatcher's exit code and message when it cannot start (a variable missing, a graph
/// ConfigMap unreadable): Python's traceback, in one line.
fn broken(message: String) -> (u64, i32, String) {
    (DISPATCH_SECONDS, 1, message)
}

/// How long a dispatcher pod runs.
const DISPATCH_SECONDS: u64 = 5;

/// The longest line the dispatcher writes (the termination message).
const MAX_LINE: usize = 1024;

impl Script<'_> {
    /// The dispatcher (`lifecycle/dispatch.py`, template `dispatch`), as its effect. It follows
    /// the algorithm of the design contract step by step:
    /// 1. the run `RUN` from the store; gone or not Running (the phase the controller writes into
    ///    `status.phase`) → "no run", exit 0 (mode verdict: exit 1 "the run is gone");
    /// 2. the records of the graph ConfigMaps `<PROJECT>-graph-<k>` (k < `GRAPH_MAPS`, key
    ///    `tasks.json`: what the pod mounts at `GRAPH_DIR/<k>/tasks.json`), the task Workflows
    ///    (labels `pressplay.dev/project`, `pressplay.dev/component: task`) of this run
    ///    (`pressplay.dev/run` = its uid; `SELF`'s phase is `SELF_STATUS`), the state ConfigMaps
    ///    `STATE_PREFIX<n>`;
    /// 3. each task merged, failed, open, ready, held or waiting ([`Board::classes`]);
    /// 4. modes dispatch and check create the ready tasks' Workflows in record order while fewer
    ///    than `MAX_OPEN` are open (AlreadyExists counts as open);
    /// 5. finished = nothing open and nothing ready: dispatch then wakes the run's `end-wait`
    ///    (ignoring "no suspend nodes") and exits 0; check exits 0 when finished, else 1
    ///    "pending: ..."; verdict exits 0 "all N tasks merged" or 1 "failed: ...; held back: ...";
    /// 6. the line is at most 1 KiB.
    fn dispatch(&mut self, store: &mut Store, env: &BTreeMap<String, String>) -> (u64, i32, String) {
        let var = |name: &str| env.get(name).cloned().ok_or_else(|| format!("KeyError: '{name}'"));
        let (project, run_name, stages, state_prefix, max_open) =
            match (var("PROJECT"), var("RUN"), var("STAGES"), var("STATE_PREFIX"), var("MAX_OPEN")) {
                (Ok(p), Ok(r), Ok(s), Ok(x), Ok(m)) => (p, r, s, x, m),
                (p, r, s, x, m) => {
                    let missing = [p, r, s, x, m].into_iter().find_map(Result::err).unwrap_or_default();
                    return broken(missing);
                }
            };
        let Ok(max_open) = max_open.trim().parse::<usize>() else {
            return broken(format!("ValueError: MAX_OPEN {max_open:?} is not a number"));
        };
        let namespace = env.get("NAMESPACE").cloned().unwrap_or_else(|| self.namespace.clone());
        let mode = env.get("MODE").cloned().unwrap_or_default();
        if !["dispatch", "check", "verdict"].contains(&mode.as_str()) {
            return broken(format!("unknown mode {mode:?}"));
        }
        let own = env.get("SELF").cloned().unwrap_or_default();
        let own_status = env.get("SELF_STATUS").cloned().unwrap_or_default();
        // 1. The run.
        let run_key = Key { kind: "Workflow".into(), namespace: namespace.clone(), name: run_name.clone() };
        let run = store.get(&run_key);
        if run.and_then(|r| r.pointer("/status/phase")).and_then(Value::as_str) != Some("Running") {
            return if mode == "verdict" {
                (DISPATCH_SECONDS, 1, "the run is gone".into())
            } else {
                (DISPATCH_SECONDS, 0, "no run".into())
            };
        }
        let uid = run.and_then(|r| r.pointer("/metadata/uid")).map(text_of).unwrap_or_default();
        // 2. Records, this run's task Workflows, states.
        let graph_maps = match env.get("GRAPH_MAPS").map(|n| n.trim().parse::<usize>()) {
            Some(Ok(n)) => n,
            Some(Err(_)) => return broken("ValueError: GRAPH_MAPS is not a number".into()),
            None => (0..)
                .take_while(|k| {
                    let name = format!("{project}-graph-{k}");
                    store.get(&Key { kind: "ConfigMap".into(), namespace: namespace.clone(), name }).is_some()
                })
                .count(),
        };
        let mut records = Vec::new();
        for k in 0..graph_maps {
            let name = format!("{project}-graph-{k}");
            let key = Key { kind: "ConfigMap".into(), namespace: namespace.clone(), name: name.clone() };
            let Some(text) = store.get(&key).and_then(|cm| cm.pointer("/data/tasks.json")).and_then(Value::as_str)
            else {
                return broken(format!("FileNotFoundError: the graph ConfigMap {name} has no tasks.json"));
            };
            match serde_json::from_str::<Vec<Value>>(text) {
                Ok(items) => records.extend(items.iter().map(Record::of)),
                Err(e) => return broken(format!("{name}: tasks.json is not a JSON list: {e}")),
            }
        }
        let mut workflows = BTreeMap::new();
        let selector = format!("pressplay.dev/project={project},pressplay.dev/component=task");
        for key in store.select("Workflow", &namespace, &selector) {
            let Some(wf) = store.get(&key) else { continue };
            if Script::label(wf, "pressplay.dev/run") != uid {
                continue;
            }
            let mut phase = wf.pointer("/status/phase").map(text_of).unwrap_or_default();
            if !own.is_empty() && key.name == own && !own_status.is_empty() {
                phase = own_status.clone();
            }
            let message = wf.pointer("/status/message").map(text_of).unwrap_or_default();
            workflows.insert(Script::label(wf, "pressplay.dev/task-number"), (phase, message));
        }
        let states: BTreeMap<String, String> = store
            .list("ConfigMap", &namespace)
            .filter_map(|(key, cm)| {
                let n = canonical(key.name.strip_prefix(&state_prefix)?)?;
                Some((n.to_string(), cm.pointer("/data/merged").map(text_of).unwrap_or_default()))
            })
            .collect();
        // 3. Classes.
        let board = Board { records, workflows, states };
        let mut classes = board.classes();
        // 4. Start the ready tasks.
        let mut started = 0;
        if mode != "verdict" {
            let mut open = classes.iter().filter(|c| **c == Class::Open).count();
            for (record, class) in board.records.iter().zip(classes.iter_mut()) {
                if *class != Class::Ready || open >= max_open {
                    continue;
                }
                let workflow = json!({
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Workflow",
                    "metadata": {
                        "name": format!("{project}-task-{}", record.number),
                        "namespace": namespace,
                        "labels": {
                            "app.kubernetes.io/managed-by": "pressplay",
                            "pressplay.dev/project": project,
                            "pressplay.dev/component": "task",
                            "pressplay.dev/task-number": record.number,
                            "pressplay.dev/run": uid,
                        },
                        "ownerReferences": [{
                            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                            "name": run_name, "uid": uid, "blockOwnerDeletion": false,
                        }],
                    },
                    "spec": {
                        "workflowTemplateRef": {"name": stages},
                        "entrypoint": record.entrypoint,
                        "arguments": {"parameters": record.parameters},
                    },
                });
                match store.create(workflow, &namespace) {
                    Ok(_) => {
                        started += 1;
                        open += 1;
                        *class = Class::Open;
                    }
                    Err(e) if e.contains("AlreadyExists") => {
                        open += 1;
                        *class = Class::Open;
                    }
                    Err(e) => self.notes.push(format!("dispatch: task {}: {e}", record.number)),
                }
            }
        }
        // 5. What the mode says.
        let count = |wanted: fn(&Class) -> bool| classes.iter().filter(|c| wanted(c)).count();
        let (open, ready, waiting) =
            (count(|c| *c == Class::Open), count(|c| *c == Class::Ready), count(|c| *c == Class::Waiting));
        let (merged, failed, held) =
            (count(|c| *c == Class::Merged), count(|c| matches!(c, Class::Failed(_))), count(|c| *c == Class::Held));
        let finished = open == 0 && ready == 0;
        let pending = format!("pending: {open} open, {ready} ready, {waiting} waiting");
        let (exit, line) = match mode.as_str() {
            "dispatch" => {
                if finished {
                    self.resumes.push(Resume {
                        workflow: run_name,
                        selector: "templateName=end-wait".into(),
                        if_waiting: true,
                    });
                }
                (0, format!("started {started} task(s); {open} open, {merged} merged, {failed} failed, {held} held"))
            }
            "check" if finished => (0, format!("finished: {merged} merged, {failed} failed, {held} held")),
            "check" => (1, pending),
            _ if merged == classes.len() => (0, format!("all {} tasks merged", classes.len())),
            _ => {
                let failures: Vec<String> = board
                    .records
                    .iter()
                    .zip(&classes)
                    .filter_map(|(r, c)| match c {
                        Class::Failed(m) if m.is_empty() => Some(format!("task {}", r.number)),
                        Class::Failed(m) => Some(format!("task {} ({})", r.number, shorten(m, 120))),
                        _ => None,
                    })
                    .collect();
                let held_back: Vec<String> = board
                    .records
                    .iter()
                    .zip(&classes)
                    .filter(|(_, c)| **c == Class::Held)
                    .map(|(r, _)| r.number.clone())
                    .collect();
                let mut parts = Vec::new();
                if !failures.is_empty() {
                    parts.push(format!("failed: {}", listing(&failures, 640)));
                }
                if !held_back.is_empty() {
                    parts.push(format!("held back: {}", listing(&held_back, 240)));
                }
                if !finished || waiting > 0 {
                    parts.push(pending);
                }
                (1, parts.join("; "))
            }
        };
        // 6. One line of at most 1 KiB.
        (DISPATCH_SECONDS, exit, shorten(&line, MAX_LINE))
    }
}

/// A task record of a graph ConfigMap.
#[derive(Clone, Debug)]
struct Record {
    number: String,
    deps: Vec<String>,
    entrypoint: String,
    parameters: Value,
}

impl Record {
    fn of(item: &Value) -> Record {
        Record {
            number: text_of(&item["number"]),
            deps: item["deps"].as_array().into_iter().flatten().map(text_of).collect(),
            entrypoint: text_of(&item["entrypoint"]),
            parameters: item.get("parameters").cloned().unwrap_or_else(|| json!([])),
        }
    }
}

/// What the dispatcher makes of a task (step 3 of the contract).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Class {
    /// Its state says merged.
    Merged,
    /// Its Workflow of this run failed or errored, or succeeded without the merge: the message.
    Failed(String),
    /// Its Workflow of this run is Pending or Running.
    Open,
    /// No Workflow of this run and every dependency merged.
    Ready,
    /// A dependency failed or is held (transitively).
    Held,
    /// Anything else.
    Waiting,
}

/// What the dispatcher read: records in order, this run's task Workflows by task number
/// (phase, message), states by task number (`merged`).
struct Board {
    records: Vec<Record>,
    workflows: BTreeMap<String, (String, String)>,
    states: BTreeMap<String, String>,
}

impl Board {
    /// The class of every record, in record order.
    fn classes(&self) -> Vec<Class> {
        let by_number: BTreeMap<&str, &Record> = self.records.iter().map(|r| (r.number.as_str(), r)).collect();
        let mut memo = BTreeMap::new();
        self.records.iter().map(|r| self.class(&r.number, &by_number, &mut memo, &mut BTreeSet::new())).collect()
    }

    fn class(
        &self,
        number: &str,
        by_number: &BTreeMap<&str, &Record>,
        memo: &mut BTreeMap<String, Class>,
        visiting: &mut BTreeSet<String>,
    ) -> Class {
        if let Some(class) = memo.get(number) {
            return class.clone();
        }
        let class = if self.states.get(number).map(String::as_str) == Some("true") {
            Class::Merged
        } else if let Some((phase, message)) = self.workflows.get(number) {
            match phase.as_str() {
                "Failed" | "Error" | "Succeeded" => Class::Failed(message.clone()),
                _ => Class::Open,
            }
        } else if let Some(record) = by_number.get(number).filter(|_| visiting.insert(number.to_string())) {
            let deps: Vec<Class> = record.deps.iter().map(|d| self.class(d, by_number, memo, visiting)).collect();
            visiting.remove(number);
            if deps.iter().all(|c| *c == Class::Merged) {
                Class::Ready
            } else if deps.iter().any(|c| matches!(c, Class::Failed(_) | Class::Held)) {
                Class::Held
            } else {
                Class::Waiting
            }
        } else {
            // A dependency without a record (or a cycle): nothing will start it.
            Class::Waiting
        };
        memo.insert(number.to_string(), class.clone());
        class
    }
}

/// Items joined by ", " within `budget` bytes, the rest as "… and k more".
fn listing(items: &[String], budget: usize) -> String {
    let mut out = String::new();
    for (k, item) in items.iter().enumerate() {
        let rest = items.len() - k;
        if !out.is_empty() && out.len() + 2 + item.len() + 20 > budget {
            let _ = write!(out, " … and {rest} more");
            return out;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(item);
    }
    out
}

/// At most `limit` bytes, cut at a character boundary with "…".
fn shorten(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A task number in canonical digits (`0`, `12`; not `012`, `+1`).
fn canonical(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.len() <= 16 && text.bytes().all(|b| b.is_ascii_digit());
    (digits && (text == "0" || !text.starts_with('0'))).then(|| text.parse().ok()).flatten()
}

/// The node field selector of a task's merge gate.
fn gate_selector(task: u64) -> String {
    format!("templateName=gate-wait,inputs.parameters.gate.value=merged,inputs.parameters.task-number.value={task}")
}

/// The environment of a container or script template (literal values).
fn env_of(template: &Value) -> BTreeMap<String, String> {
    template
        .pointer("/script/env")
        .or_else(|| template.pointer("/container/env"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("value").is_some())
        .map(|e| (text_of(&e["name"]), text_of(&e["value"])))
        .collect()
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
    let mut script = Script::new(scenario, &project, &namespace, repository, deploy_target(&docs));
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
                // A task's gate waits in the task's own Workflow when it has one.
                let run = selector
                    .split(',')
                    .find_map(|p| p.strip_prefix("inputs.parameters.task-number.value="))
                    .map(|task| format!("{project}-task-{task}"))
                    .filter(|name| controller.run(&namespace, name).is_some_and(|r| !r.done()))
                    .unwrap_or_else(|| format!("{project}-play"));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The stages of project `p`: one trivial chain per task (a container that "merges" its task,
    /// writing the state ConfigMap, or fails), the exit handler calling `dispatch` with the
    /// task Workflow's name and status, and `dispatch` itself as the renderer writes it.
    fn stages(max_open: usize) -> Value {
        let chain = |n: u64| {
            json!({"name": format!("chain-{n}"), "inputs": {"parameters": [{"name": "task-number"}]},
                   "container": {"image": "busybox", "args": ["{{inputs.parameters.task-number}}", "work"]}})
        };
        let env = |name: &str, value: &str| json!({"name": name, "value": value});
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "p-stages"},
            "spec": {
                // A Workflow that does not name its entrypoint runs nothing.
                "entrypoint": "missing",
                "serviceAccountName": "p-agents",
                "onExit": "exit-handler",
                "templates": [
                    chain(1), chain(2), chain(3),
                    {"name": "exit-handler", "steps": [[{
                        "name": "dispatch", "template": "dispatch",
                        "arguments": {"parameters": [
                            {"name": "mode", "value": "dispatch"},
                            {"name": "self", "value": "{{workflow.name}}"},
                            {"name": "self-status", "value": "{{workflow.status}}"},
                        ]},
                    }]]},
                    {"name": "dispatch",
                     "inputs": {"parameters": [
                         {"name": "mode"}, {"name": "self", "default": ""}, {"name": "self-status", "default": ""},
                     ]},
                     "synchronization": {"mutexes": [{"name": "p-dispatch"}]},
                     "script": {"image": "python", "command": ["python3"], "source": "main()", "env": [
                         env("PROJECT", "p"), env("NAMESPACE", "ns"), env("RUN", "p-play"),
                         env("STAGES", "p-stages"), env("STATE_PREFIX", "p-task-"),
                         env("MAX_OPEN", &max_open.to_string()), env("GRAPH_DIR", "/graph"), env("GRAPH_MAPS", "1"),
                         env("MODE", "{{inputs.parameters.mode}}"),
                         env("SELF", "{{inputs.parameters.self}}"),
                         env("SELF_STATUS", "{{inputs.parameters.self-status}}"),
                     ]}},
                ],
            },
        })
    }

    /// The run: dispatch, then rounds of (end-wait, check) until the check passes, then the verdict.
    fn run_workflow() -> Value {
        let dispatch = |name: &str, mode: &str| {
            json!({"name": name, "templateRef": {"name": "p-stages", "template": "dispatch"},
                   "arguments": {"parameters": [{"name": "mode", "value": mode}]}})
        };
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": "p-play"},
            "spec": {
                "entrypoint": "main",
                "templates": [
                    {"name": "main", "steps": [
                        [dispatch("dispatch", "dispatch")],
                        [{"name": "end-round", "template": "end-round"}],
                        [dispatch("verdict", "verdict")],
                    ]},
                    {"name": "end-round", "retryStrategy": {"limit": 120, "retryPolicy": "Always"}, "steps": [
                        [{"name": "end-wait", "template": "end-wait"}],
                        [dispatch("check", "check")],
                    ]},
                    {"name": "end-wait", "suspend": {"duration": "6h"}},
                ],
            },
        })
    }

    fn graph() -> Value {
        let record = |n: &str, deps: &[&str]| {
            json!({"number": n, "deps": deps, "entrypoint": format!("chain-{n}"),
                   "parameters": [{"name": "task-number", "value": n}]})
        };
        let records = json!([record("1", &[]), record("2", &["1"]), record("3", &[])]);
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p-graph-0"},
               "data": {"tasks.json": records.to_string()}})
    }

    /// The scripted world with the task chains: task `n`'s container works `durations[n]`
    /// seconds and then records its merge, or fails when `n` is in `failing`.
    struct Tasks<'s> {
        script: Script<'s>,
        durations: BTreeMap<String, u64>,
        failing: BTreeSet<String>,
        /// Merges to record: (time, task).
        merges: Vec<(u64, String)>,
    }

    impl World for Tasks<'_> {
        fn container(&mut self, now: u64, store: &mut Store, run: &str, template: &Value) -> (u64, i32, String) {
            if !text_of(&template["name"]).starts_with("chain-") {
                return self.script.container(now, store, run, template);
            }
            let task = template.pointer("/container/args/0").map(text_of).unwrap_or_default();
            let duration = self.durations.get(&task).copied().unwrap_or(100);
            if self.failing.contains(&task) {
                return (duration, 1, "agent failed".into());
            }
            self.merges.push((now + duration - 1, task));
            (duration, 0, String::new())
        }
        fn http(&mut self, now: u64, url: &str, method: &str) -> (u16, String) {
            self.script.http(now, url, method)
        }
        fn evicted(&mut self, _: u64, _: &str, _: &Node) -> bool {
            false
        }
        fn resumes(&mut self) -> Vec<Resume> {
            self.script.resumes()
        }
    }

    struct Cluster<'s> {
        store: Store,
        controller: Controller,
        world: Tasks<'s>,
    }

    impl<'s> Cluster<'s> {
        fn new(scenario: &'s Scenario, max_open: usize) -> Cluster<'s> {
            let mut store = Store::default();
            store.create(stages(max_open), "ns").expect("stages");
            store.create(graph(), "ns").expect("graph");
            let _ = store.drain();
            store.create(run_workflow(), "ns").expect("the run");
            let script = Script::new(scenario, "p", "ns", "o/p".into(), None);
            let world = Tasks { script, durations: BTreeMap::new(), failing: BTreeSet::new(), merges: Vec::new() };
            Cluster { store, controller: Controller::default(), world }
        }

        fn settle(&mut self) {
            for _ in 0..100 {
                let changes = self.store.drain();
                self.controller.observe(&self.store, &changes);
                let before = self.controller.fingerprint();
                self.controller.pass(&mut self.store, &mut self.world);
                let changes = self.store.drain();
                self.controller.observe(&self.store, &changes);
                if changes.is_empty() && self.controller.fingerprint() == before {
                    return;
                }
            }
        }

        /// Runs until `until` or until nothing is due.
        fn run_until(&mut self, until: u64) {
            loop {
                self.settle();
                let now = self.controller.now;
                let merges = self.world.merges.iter().map(|(t, _)| *t).filter(|t| *t > now).min();
                let timer = self.controller.timers.range(now + 1..).next().copied();
                let Some(next) = [merges, timer].into_iter().flatten().min() else { return };
                if next > until {
                    return;
                }
                self.controller.now = next;
                self.controller.timers.retain(|t| *t > next);
                let due: Vec<String> =
                    self.world.merges.iter().filter(|(t, _)| *t == next).map(|(_, n)| n.clone()).collect();
                for task in due {
                    let state = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("p-task-{task}")}, "data": {"merged": "true"}});
                    self.store.merge_patch(&state, "ns", true).expect("state written");
                }
            }
        }

        fn workflow(&self, name: &str) -> Option<&Value> {
            self.store.get(&Key { kind: "Workflow".into(), namespace: "ns".into(), name: name.into() })
        }

        /// The run of a Workflow by name, live or deleted (the last one of that name).
        fn run(&self, name: &str) -> &super::super::workflow::Run {
            self.controller.runs.iter().rev().find(|r| r.name() == name).unwrap_or_else(|| panic!("no run {name}"))
        }
    }

    #[test]
    fn the_dispatcher_starts_ready_tasks_and_the_last_one_ends_the_run() {
        let scenario = Scenario::default();
        let mut cluster = Cluster::new(&scenario, 2);
        // Task 3 ends first: its exit handler's dispatcher sees task 1 still open.
        cluster.world.durations.insert("1".into(), 1000);
        cluster.run_until(10);
        // Tasks 1 and 3 start at once; 2 waits for 1.
        assert!(cluster.workflow("p-task-1").is_some() && cluster.workflow("p-task-3").is_some());
        assert!(cluster.workflow("p-task-2").is_none(), "task 2 started before task 1 merged");
        let uid = cluster.workflow("p-play").unwrap()["metadata"]["uid"].clone();
        let task = cluster.workflow("p-task-1").unwrap().clone();
        assert_eq!(task["metadata"]["labels"]["pressplay.dev/run"], uid);
        assert_eq!(task["metadata"]["labels"]["pressplay.dev/task-number"], "1");
        assert_eq!(task["metadata"]["labels"]["pressplay.dev/component"], "task");
        assert_eq!(task["metadata"]["ownerReferences"][0]["uid"], uid);
        assert_eq!(task["metadata"]["ownerReferences"][0]["name"], "p-play");
        // The Workflow's entrypoint overrides the template's, and its arguments reach the inputs.
        let root = cluster.run("p-task-1").node("p-task-1").expect("the root node");
        assert_eq!(root.template, "chain-1");
        assert_eq!(root.inputs, [("task-number".to_string(), "1".to_string())]);
        cluster.run_until(30 * 86400);
        let (one, two, three) = (cluster.run("p-task-1"), cluster.run("p-task-2"), cluster.run("p-task-3"));
        for run in [one, two, three] {
            assert_eq!(run.phase, Phase::Succeeded, "{}: {}", run.name(), run.message);
        }
        // Task 2 starts from task 1's exit handler (task 1's Workflow still Running, its status
        // passed as SELF_STATUS), once task 1's entrypoint ended merged.
        let merged = one.node("p-task-1").and_then(|n| n.finished).expect("task 1's entrypoint ended");
        assert!(two.started >= merged, "task 2 at {} before task 1 merged at {merged}", two.started);
        assert!(two.started <= one.finished.unwrap(), "task 2 waited for task 1's Workflow to end");
        assert!(three.finished.unwrap() < merged, "task 3 is not the one that ended first");
        let play = cluster.run("p-play");
        assert_eq!(play.phase, Phase::Succeeded, "{}", play.message);
        // Woken by the last task's exit handler, not by the 6-hour round.
        assert!(play.finished.unwrap() < two.finished.unwrap() + 60, "the run ended at {:?}", play.finished);
        let verdict = play.nodes.iter().find(|n| n.display == "verdict").expect("the verdict");
        assert_eq!(verdict.phase, Phase::Succeeded);
        assert!(cluster.controller.notes.is_empty(), "{:?}", cluster.controller.notes);
        assert!(cluster.world.script.notes.is_empty(), "{:?}", cluster.world.script.notes);
    }

    #[test]
    fn max_open_limits_the_task_workflows_at_once() {
        let scenario = Scenario::default();
        let mut cluster = Cluster::new(&scenario, 1);
        cluster.run_until(10);
        assert!(cluster.workflow("p-task-1").is_some());
        assert!(cluster.workflow("p-task-3").is_none(), "two open with MAX_OPEN 1");
        cluster.run_until(30 * 86400);
        assert_eq!(cluster.run("p-play").phase, Phase::Succeeded, "{}", cluster.run("p-play").message);
        let one = cluster.run("p-task-1").node("p-task-1").and_then(|n| n.finished).expect("task 1 ended");
        assert!(cluster.run("p-task-3").started >= one, "task 3 started while task 1 was open");
    }

    #[test]
    fn a_failed_task_holds_back_its_dependents_and_the_others_go_on() {
        let scenario = Scenario::default();
        let mut cluster = Cluster::new(&scenario, 2);
        cluster.world.failing.insert("1".into());
        // Task 1 ends last: its own exit handler finds the run finished (its Workflow is still
        // Running then; SELF_STATUS says Failed) and wakes it.
        cluster.world.durations.insert("1".into(), 1000);
        cluster.run_until(30 * 86400);
        assert_eq!(cluster.run("p-task-1").phase, Phase::Failed);
        assert!(cluster.workflow("p-task-2").is_none(), "task 2 started after its dependency failed");
        assert_eq!(cluster.run("p-task-3").phase, Phase::Succeeded);
        let play = cluster.run("p-play");
        assert_eq!(play.phase, Phase::Failed);
        assert_eq!(play.message, "failed: task 1 (agent failed); held back: 2");
        assert!(play.finished.unwrap() < 1100, "the run ended at {:?}", play.finished);
    }

    #[test]
    fn deleting_the_run_deletes_its_task_workflows() {
        let scenario = Scenario::default();
        let mut cluster = Cluster::new(&scenario, 2);
        cluster.run_until(10);
        assert!(cluster.controller.run("ns", "p-task-1").is_some());
        let key = Key { kind: "Workflow".into(), namespace: "ns".into(), name: "p-play".into() };
        cluster.store.delete(&key).expect("deleted");
        cluster.run_until(30 * 86400);
        for name in ["p-play", "p-task-1", "p-task-3"] {
            assert!(cluster.workflow(name).is_none(), "{name} is still in the store");
            assert!(cluster.controller.run("ns", name).is_none(), "the controller still runs {name}");
        }
        assert_eq!(cluster.controller.live().count(), 0);
        assert!(cluster.workflow("p-task-2").is_none());
    }

    #[test]
    fn classes_follow_the_contract() {
        let record = |n: &str, deps: &[&str]| Record {
            number: n.into(),
            deps: deps.iter().map(|d| (*d).to_string()).collect(),
            entrypoint: String::new(),
            parameters: json!([]),
        };
        let board = Board {
            records: vec![
                record("1", &[]),
                record("2", &["1"]),
                record("3", &["2"]),
                record("4", &[]),
                record("5", &["4"]),
                record("6", &[]),
                record("7", &["6"]),
            ],
            workflows: [("1", "Failed"), ("4", "Succeeded"), ("6", "Running")]
                .into_iter()
                .map(|(n, p)| (n.to_string(), (p.to_string(), String::new())))
                .collect(),
            states: [("4".to_string(), "true".to_string())].into_iter().collect(),
        };
        assert_eq!(
            board.classes(),
            [
                Class::Failed(String::new()),
                Class::Held,
                Class::Held,
                Class::Merged,
                Class::Ready,
                Class::Open,
                Class::Waiting
            ]
        );
        assert_eq!(listing(&["a".into(), "b".into()], 100), "a, b");
        let many: Vec<String> = (0..100).map(|n| n.to_string()).collect();
        let short = listing(&many, 60);
        assert!(short.len() <= 60 && short.ends_with("more"), "{short}");
        assert_eq!(canonical("012"), None);
        assert_eq!(canonical("12"), Some(12));
    }
}
