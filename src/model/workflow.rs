//! The Workflow controller of the model: runs Workflows found in the [`Store`] the way Argo
//! Workflows v4.1.2's `workflow/controller/operator.go` does, one reconcile at a time.
//!
//! Rules (files are in argoproj/argo-workflows at v4.1.2):
//! * Every reconcile walks the workflow from its entrypoint (`operate` → `executeTemplate`); a node
//!   that exists is continued, a missing one is created. Node names are `<wf>`, `<parent>.<task>`
//!   for DAG tasks, `<parent>[i]` and `<parent>[i].<step>` for steps, `<node>(k)` for retry
//!   attempts, `<node>(i:item)` for `withParam` items (`dag.go`, `steps.go`, `operator.go`).
//! * Template depth: each nested `executeTemplate` adds one; beyond 100 the workflow errors with
//!   "Maximum recursion depth exceeded" (`controller.go` `maxAllowedStackDepth`).
//! * Inputs: arguments, then `default`, then `valueFrom.configMapKeyRef` (read when the node is
//!   created; the ConfigMap must carry `workflows.argoproj.io/configmap-type: Parameter`; a
//!   missing map or key gives the default) (`workflow/common/util.go` `ProcessArgs`,
//!   `substituteConfigMapKeyRefParam`). The template's text is then substituted with
//!   [`super::subst`] (inputs, `workflow.*`), unresolved tags left for later passes.
//! * `workflowTemplateRef`: the Workflow runs the WorkflowTemplate's spec with its own spec
//!   fields over it (`entrypoint`, `onExit`, `arguments` by name, ...; `workflow/util/merge.go`
//!   `JoinWorkflowSpec`), and the entrypoint gets the workflow's arguments as its inputs
//!   (`operator.go` `operate`).
//! * DAG (`dag.go`): a task runs once every task its `depends` names is complete and the
//!   expression holds; if it does not hold the task is Omitted. A false `when` gives Skipped.
//!   `failFast` (default true): once a task fails no new task starts. The DAG fails when a task
//!   failed or errored without `continueOn`.
//! * Steps (`steps.go`): groups in order; a false `when` is Skipped; a failed step without
//!   `continueOn` fails its group and the template.
//! * `retryStrategy` (`operator.go` `processNodeRetries`): a Retry node whose children are attempts;
//!   `retryPolicy` OnError retries Error only, OnFailure Failed only, Always both (default
//!   OnFailure); at most `limit` retries; backoff `duration * factor^k`.
//! * Synchronization (`workflow/sync`): a template's semaphores and mutexes are taken before its
//!   node starts (the node is Pending, no pod) and released when the node completes; the
//!   workflow's own before its first node. A semaphore's limit is the ConfigMap key's value.
//! * `resource` (`workflow/executor/resource.go`): the manifest is sent at the start of the pod
//!   (`create`, `apply`, `patch` as merge patch, `delete` with `flags`, `get`); then the success
//!   and failure conditions are polled against the live object; the object vanishing fails the
//!   node. `setOwnerReference` owns the object by the Workflow.
//! * `http` (`workflow/controller/agent.go`): run by the workflow's agent pod, which mounts the
//!   token Secret `<serviceAccount>.service-account-token`; without it the pod never starts and
//!   the node stays Pending.
//! * `suspend`: Running until resumed, or until `duration` has passed (then Succeeded).
//!   Resume with a node field selector matches active suspend nodes on `templateName`,
//!   `displayName`, `name`, `inputs.parameters.<p>.value`; no match is an error
//!   (`workflow/util/util.go` `updateSuspendedNode`, `SelectorMatchesNode`).
//! * `activeDeadlineSeconds` of a template: a pod running longer is Failed.
//! * `onExit`: runs after the entrypoint completes; the workflow's phase is the entrypoint's.
//! * Metrics (`operator.go` `computeMetrics`): emitted when a node with template metrics completes,
//!   with `{{duration}}`, `{{status}}` and the inputs; `{{retries}}` only on a Retry node (an
//!   attempt node has none). An unresolved tag sets the workflow condition MetricsError.
//! * `ttlStrategy`: the Workflow is deleted the given seconds after it completes
//!   (`workflow/gccontroller`), and with it what it owns.
//! * Status size: `status.nodes` as NodeStatus JSON plus `storedTemplates` (every template
//!   reached through a `templateRef`, `templateresolution/context.go`) plus
//!   `storedWorkflowTemplateSpec`, against the 1 MiB limit (`workflow/packer/packer.go`).
//!
//! Simplified: one reconcile reacts at once to every change (no informer delay, no requeue
//! backoff); pods start instantly; containers are scripted by the [`World`] rather than run; no
//! artifacts, no `podSpecPatch`, no daemons, no `withItems`/`withSequence`, no DAG `target`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::expr;
use super::store::{Change, Key, Store, condition_holds, dotted, kind_of_resource, text_of};
use super::subst::{Vars, go_json, parse_json, substitute};

/// The largest Workflow object the controller writes (`workflow/packer/packer.go`, 1 MiB).
pub const MAX_WORKFLOW_BYTES: usize = 1024 * 1024;

/// Argo's template depth limit.
pub const MAX_DEPTH: usize = 100;

/// A node's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Waiting (a lock, a pod that cannot start).
    Pending,
    /// Running.
    Running,
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Error.
    Error,
    /// `when` was false.
    Skipped,
    /// `depends` was false.
    Omitted,
}

impl Phase {
    /// Whether the node is done.
    pub fn done(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }

    /// Argo's name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Error => "Error",
            Phase::Skipped => "Skipped",
            Phase::Omitted => "Omitted",
        }
    }

    fn failed(self) -> bool {
        matches!(self, Phase::Failed | Phase::Error)
    }
}

/// A node's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    /// The workflow or a DAG template.
    Dag,
    /// A steps template.
    Steps,
    /// One group of steps.
    StepGroup,
    /// A pod (container, script, resource).
    Pod,
    /// An `http` template.
    Http,
    /// A suspend template.
    Suspend,
    /// The parent of retry attempts.
    Retry,
    /// A `withParam` fan-out.
    TaskGroup,
    /// Skipped or omitted before it had a template.
    Skipped,
}

/// One node of a Workflow's status.
#[derive(Clone, Debug)]
pub struct Node {
    /// Full name.
    pub name: String,
    /// Display name.
    pub display: String,
    /// Type.
    pub kind: NodeType,
    /// The template name (the `templateRef` template when it came from one).
    pub template: String,
    /// The WorkflowTemplate of a `templateRef`.
    pub template_ref: Option<String>,
    /// Phase.
    pub phase: Phase,
    /// Message.
    pub message: String,
    /// When it started.
    pub started: u64,
    /// When it finished.
    pub finished: Option<u64>,
    /// Input parameters.
    pub inputs: Vec<(String, String)>,
    /// Output parameters.
    pub outputs: Vec<(String, String)>,
    /// Children (indexes).
    pub children: Vec<usize>,
    /// The template after input substitution.
    processed: Value,
    /// Where the template came from (for resolving calls from it).
    ctx: Option<String>,
    /// Locks held.
    held: Vec<String>,
    /// When the pod or suspend ends (scripted or by duration).
    until: Option<u64>,
    /// A scripted exit code for containers.
    exit: i32,
    /// The object a resource template works on.
    object: Option<Key>,
    /// When the template's deadline passes.
    deadline: Option<u64>,
}

/// A running (or finished) Workflow.
#[derive(Debug)]
pub struct Run {
    /// The Workflow object.
    pub key: Key,
    /// Nodes in creation order.
    pub nodes: Vec<Node>,
    by_name: HashMap<String, usize>,
    /// The workflow's phase.
    pub phase: Phase,
    /// Message of a failed or errored run.
    pub message: String,
    /// Started.
    pub started: u64,
    /// Finished.
    pub finished: Option<u64>,
    /// Conditions (`MetricsError: ...`).
    pub conditions: Vec<String>,
    /// Metrics emitted: (name, labels, value).
    pub metrics: Vec<(String, BTreeMap<String, String>, String)>,
    spec: Value,
    top: Option<String>,
    globals: Vars,
    stored: BTreeMap<String, Value>,
    held: Vec<String>,
    uid: String,
    exit_done: bool,
    /// Largest status seen, bytes of JSON.
    pub status_bytes: usize,
    /// Node count at the last size check.
    checked: usize,
    /// Whether a CronWorkflow started it (label `workflows.argoproj.io/cron-workflow`).
    pub cron: bool,
}

impl Run {
    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.by_name.get(name).map(|i| &self.nodes[*i])
    }

    /// Whether the run is complete.
    pub fn done(&self) -> bool {
        self.finished.is_some()
    }

    /// The Workflow's name.
    pub fn name(&self) -> &str {
        &self.key.name
    }

    /// The size of the status the controller would write: with `status.nodes` as they are when
    /// the Workflow fits in [`MAX_WORKFLOW_BYTES`], else with the nodes gzipped and
    /// base64-encoded into `status.compressedNodes` (`workflow/packer/packer.go`,
    /// `compressWorkflowIfNeeded`; offloading needs a database, which a default install lacks).
    pub fn status_size(&self) -> usize {
        let (raw, nodes) = self.status_parts();
        let spec = serde_json::to_vec(&self.spec).map_or(0, |v| v.len());
        if raw + spec <= MAX_WORKFLOW_BYTES {
            return raw;
        }
        use std::io::Write as _;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = gzip.write_all(&nodes);
        let compressed = gzip.finish().map_or(0, |v| v.len());
        raw - nodes.len() + compressed.div_ceil(3) * 4
    }

    /// The status's JSON size, and the JSON of its nodes.
    fn status_parts(&self) -> (usize, Vec<u8>) {
        let nodes: serde_json::Map<String, Value> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (node_id(&self.key.name, i, &n.name), node_status(&self.key.name, n, &self.nodes)))
            .collect();
        let status = json!({
            "phase": self.phase.name(),
            "startedAt": "2026-12-04T17:00:00Z",
            "finishedAt": "2026-12-04T17:00:00Z",
            "progress": "100/100",
            "nodes": nodes,
            "storedTemplates": self.stored,
            "storedWorkflowTemplateSpec": self.spec,
            "conditions": [{"type": "PodRunning", "status": "False"}, {"type": "Completed", "status": "True"}],
            "resourcesDuration": {"cpu": 1000, "memory": 1000},
            "taskResultsCompletionStatus": {},
        });
        let nodes = serde_json::to_vec(&status["nodes"]).unwrap_or_default();
        (serde_json::to_vec(&status).map_or(0, |v| v.len()), nodes)
    }

    /// Whether the Workflow (spec, its stored WorkflowTemplate spec, status) fits the limit.
    pub fn fits(&self) -> bool {
        let spec = serde_json::to_vec(&self.spec).map_or(0, |v| v.len());
        self.status_size() + spec <= MAX_WORKFLOW_BYTES
    }
}

fn node_id(wf: &str, index: usize, name: &str) -> String {
    if index == 0 {
        return wf.to_string();
    }
    // fnv32a of the node name, as `workflow_types.go` `NodeID`.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{wf}-{hash}")
}

/// A NodeStatus with the fields the controller fills in, realistic values included.
fn node_status(wf: &str, node: &Node, all: &[Node]) -> Value {
    let kind = match node.kind {
        NodeType::Dag => "DAG",
        NodeType::Steps => "Steps",
        NodeType::StepGroup => "StepGroup",
        NodeType::Pod => "Pod",
        NodeType::Http => "HTTP",
        NodeType::Suspend => "Suspend",
        NodeType::Retry => "Retry",
        NodeType::TaskGroup => "TaskGroup",
        NodeType::Skipped => "Skipped",
    };
    let mut status = json!({
        "id": node_id(wf, usize::from(node.name != wf), &node.name),
        "name": node.name,
        "displayName": node.display,
        "type": kind,
        "templateName": node.template,
        "templateScope": "local/",
        "phase": node.phase.name(),
        "boundaryID": wf,
        "startedAt": "2026-12-04T17:00:00Z",
        "finishedAt": "2026-12-04T17:00:00Z",
        "progress": "1/1",
    });
    if let Some(wt) = &node.template_ref {
        status["templateRef"] = json!({"name": wt, "template": node.template});
    }
    if !node.message.is_empty() {
        status["message"] = json!(node.message);
    }
    if !node.inputs.is_empty() {
        status["inputs"] =
            json!({"parameters": node.inputs.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>()});
    }
    if !node.outputs.is_empty() || node.kind == NodeType::Pod {
        let mut outputs = json!({"exitCode": "0"});
        if !node.outputs.is_empty() {
            outputs["parameters"] =
                json!(node.outputs.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>());
        }
        status["outputs"] = outputs;
    }
    if node.kind == NodeType::Pod {
        status["hostNodeName"] = json!("ip-10-0-12-34.eu-west-1.compute.internal");
        status["resourcesDuration"] = json!({"cpu": 12, "memory": 24});
    }
    if !node.children.is_empty() {
        status["children"] = json!(node.children.iter().map(|c| node_id(wf, *c, &all[*c].name)).collect::<Vec<_>>());
    }
    status
}

/// What the rest of the world does, scripted by a scenario.
pub trait World {
    /// A container template's pod starts: how long it runs and its exit code; the world may
    /// act on the store (a reconcile script patches objects, say).
    fn container(&mut self, now: u64, store: &mut Store, run: &str, template: &Value) -> (u64, i32, String);
    /// An `http` template's request: status and body.
    fn http(&mut self, now: u64, url: &str, method: &str) -> (u16, String);
    /// Whether the pod of this node is evicted now (called while it runs).
    fn evicted(&mut self, now: u64, run: &str, node: &Node) -> bool;
    /// Resumes asked for by containers (`argo resume`, `PUT .../resume` in a script).
    fn resumes(&mut self) -> Vec<Resume> {
        Vec::new()
    }
}

/// A resume a container asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The Workflow's name (in the namespace of the runs).
    pub workflow: String,
    /// The node field selector.
    pub selector: String,
    /// Only where a node matches: the script read the Workflow's node status first and resumes
    /// only a waiting node, or it ignores the "no suspend nodes" answer. Without it a miss is
    /// noted as an error.
    pub if_waiting: bool,
}

/// The controller: every Workflow in the store, its locks, and the clock.
#[derive(Debug, Default)]
pub struct Controller {
    /// Runs by Workflow key (a deleted Workflow keeps its run here for the report).
    pub runs: Vec<Run>,
    index: BTreeMap<Key, usize>,
    /// Lock → holders (run uid / node name).
    locks: BTreeMap<String, Vec<String>>,
    /// Lock waiters in arrival order.
    queue: Vec<(String, Vec<String>)>,
    /// Times something is due (suspend durations, backoffs, deadlines, TTLs).
    pub timers: BTreeSet<u64>,
    /// The clock, seconds.
    pub now: u64,
    /// Errors of the model itself or things it does not model, for the report.
    pub notes: Vec<String>,
    /// The largest status of any run.
    pub largest_status: (usize, String),
}

/// A workflow-level error that stops the run.
struct Abort(String);

impl Controller {
    /// Picks up Workflows created in the store and forgets deleted ones.
    pub fn observe(&mut self, store: &Store, changes: &[Change]) {
        for change in changes {
            match change {
                Change::Created(key) if key.kind == "Workflow" => {
                    if let Some(object) = store.get(key) {
                        self.start(store, key.clone(), object.clone());
                    }
                }
                Change::Deleted(key) if key.kind == "Workflow" => {
                    if let Some(i) = self.index.remove(key) {
                        let uid = self.runs[i].uid.clone();
                        self.release_all(&uid);
                        if self.runs[i].finished.is_none() {
                            self.runs[i].finished = Some(self.now);
                            self.runs[i].phase = Phase::Failed;
                            self.runs[i].message = "deleted".into();
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The runs still going.
    pub fn live(&self) -> impl Iterator<Item = &Run> {
        self.index.values().map(|i| &self.runs[*i]).filter(|r| !r.done())
    }

    /// The run of a live Workflow.
    pub fn run(&self, namespace: &str, name: &str) -> Option<&Run> {
        let key = Key { kind: "Workflow".into(), namespace: namespace.into(), name: name.into() };
        self.index.get(&key).map(|i| &self.runs[*i])
    }

    fn start(&mut self, store: &Store, key: Key, object: Value) {
        let mut spec = object["spec"].clone();
        let mut top = None;
        if let Some(wt) = spec.pointer("/workflowTemplateRef/name").and_then(Value::as_str).map(str::to_string) {
            let wt = wt.as_str();
            let wt_key = Key { kind: "WorkflowTemplate".into(), namespace: key.namespace.clone(), name: wt.into() };
            match store.get(&wt_key) {
                Some(template) => {
                    // The Workflow's own fields win over the WorkflowTemplate's (`operator.go`
                    // `setStoredWfSpec` → `workflow/util/merge.go` `JoinWorkflowSpec`).
                    spec = join_spec(&spec, &template["spec"]);
                    top = Some(wt.to_string());
                }
                None => {
                    self.notes.push(format!("{}: WorkflowTemplate {wt} not found", key.name));
                }
            }
        }
        let uid = object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();
        let mut globals = Vars::new();
        globals.insert("workflow.name".into(), key.name.clone());
        globals.insert("workflow.namespace".into(), key.namespace.clone());
        globals.insert("workflow.uid".into(), uid.clone());
        globals.insert(
            "workflow.serviceAccountName".into(),
            spec["serviceAccountName"].as_str().unwrap_or("default").to_string(),
        );
        for param in spec.pointer("/arguments/parameters").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = param["name"].as_str() {
                let value = param.get("value").or_else(|| param.get("default")).map(text_of).unwrap_or_default();
                globals.insert(format!("workflow.parameters.{name}"), value);
            }
        }
        let run = Run {
            key: key.clone(),
            nodes: Vec::new(),
            by_name: HashMap::new(),
            phase: Phase::Pending,
            message: String::new(),
            started: self.now,
            finished: None,
            conditions: Vec::new(),
            metrics: Vec::new(),
            spec,
            top,
            globals,
            stored: BTreeMap::new(),
            held: Vec::new(),
            uid,
            exit_done: false,
            status_bytes: 0,
            checked: 0,
            cron: object.pointer("/metadata/labels/workflows.argoproj.io~1cron-workflow").is_some(),
        };
        self.index.insert(key, self.runs.len());
        self.runs.push(run);
    }

    /// One reconcile of every live workflow; the caller feeds the store's changes back through
    /// [`Controller::observe`] and calls again until [`Controller::fingerprint`] settles.
    pub fn pass(&mut self, store: &mut Store, world: &mut dyn World) {
        let live: Vec<usize> = self.index.values().copied().filter(|i| self.runs[*i].finished.is_none()).collect();
        for i in live {
            self.operate(i, store, world);
        }
        for wake in world.resumes() {
            let namespace = self.runs.first().map(|r| r.key.namespace.clone()).unwrap_or_default();
            if wake.if_waiting && self.waiting(&namespace, &wake.workflow, &wake.selector) == 0 {
                continue;
            }
            if let Err(e) = self.resume(&namespace, &wake.workflow, &wake.selector) {
                self.notes.push(format!("t={}: resume {}: {e}", self.now, wake.workflow));
            }
        }
    }

    /// What changes when anything progresses.
    pub fn fingerprint(&self) -> (usize, usize, usize) {
        // Only live runs change; finished ones count once.
        let live = || self.index.values().map(|i| &self.runs[*i]).filter(|r| !r.done());
        let nodes: usize = live().map(|r| r.nodes.len()).sum();
        let finished = self.runs.iter().filter(|r| r.done()).count();
        let done: usize = live().map(|r| r.nodes.iter().filter(|n| n.phase.done()).count()).sum::<usize>() + finished;
        let running: usize = live().map(|r| r.nodes.iter().filter(|n| n.phase == Phase::Running).count()).sum();
        (nodes, done, running)
    }

    fn operate(&mut self, i: usize, store: &mut Store, world: &mut dyn World) {
        if self.runs[i].phase == Phase::Pending {
            let locks = sync_locks(
                &self.runs[i].spec.get("synchronization").cloned().unwrap_or(Value::Null),
                &self.runs[i].key.namespace,
            );
            let holder = format!("{}/", self.runs[i].uid);
            if !self.acquire(&holder, &locks, store) {
                return;
            }
            self.runs[i].held = locks;
            self.runs[i].phase = Phase::Running;
            self.runs[i].started = self.now;
            self.write_phase(i, store);
        }
        // The entrypoint runs with the workflow's arguments as its arguments, so they reach its
        // inputs by name (`operator.go` `operate`: `executeTemplate(ctx, woc.wf.Name,
        // &wfv1.WorkflowStep{Template: woc.execWf.Spec.Entrypoint}, tmplCtx,
        // woc.execWf.Spec.Arguments, ...)`; `execWf` is the joined spec).
        let entry = self.runs[i].spec["entrypoint"].as_str().unwrap_or("main").to_string();
        let name = self.runs[i].key.name.clone();
        let top = self.runs[i].top.clone();
        let args = argument_pairs(&self.runs[i].spec["arguments"]);
        let result = self.execute(i, store, world, &name, &name, top.as_deref(), &entry, None, &args, 0, false);
        let root = match result {
            Ok(root) => root,
            Err(Abort(message)) => {
                self.finish_run(i, store, Phase::Error, message);
                return;
            }
        };
        // The controller refuses to write a Workflow over the limit and fails the run
        // (`operator.go`, "workflow is longer than maximum allowed size"). Checked every 50 nodes.
        if self.runs[i].nodes.len() >= self.runs[i].checked + 50 {
            self.runs[i].checked = self.runs[i].nodes.len();
            if !self.runs[i].fits() {
                let size = self.runs[i].status_size();
                let message = format!(
                    "workflow is longer than maximum allowed size: status {size} bytes with its nodes compressed"
                );
                self.finish_run(i, store, Phase::Error, message);
                return;
            }
        }
        let Some(root) = root else { return };
        let phase = self.runs[i].nodes[root].phase;
        if !phase.done() {
            return;
        }
        if let Some(exit) = self.runs[i].spec["onExit"].as_str().map(str::to_string)
            && !self.runs[i].exit_done
        {
            let status = if phase == Phase::Succeeded || phase == Phase::Skipped { "Succeeded" } else { phase.name() };
            self.runs[i].globals.insert("workflow.status".into(), status.into());
            let exit_name = format!("{name}.onExit");
            match self.execute(i, store, world, &exit_name, "onExit", top.as_deref(), &exit, None, &[], 0, false) {
                Ok(Some(n)) if self.runs[i].nodes[n].phase.done() => self.runs[i].exit_done = true,
                Ok(_) => return,
                Err(Abort(message)) => {
                    self.finish_run(i, store, Phase::Error, message);
                    return;
                }
            }
        }
        let message = self.runs[i].nodes[root].message.clone();
        let phase = if phase == Phase::Succeeded || phase == Phase::Skipped { Phase::Succeeded } else { phase };
        self.finish_run(i, store, phase, message);
    }

    fn write_phase(&self, i: usize, store: &mut Store) {
        let run = &self.runs[i];
        if store.get(&run.key).is_some() {
            let _ = store.set(&run.key, "/status/phase", json!(run.phase.name()));
            if !run.message.is_empty() {
                let _ = store.set(&run.key, "/status/message", json!(run.message));
            }
        }
    }

    fn finish_run(&mut self, i: usize, store: &mut Store, phase: Phase, message: String) {
        let uid = self.runs[i].uid.clone();
        self.release_all(&uid);
        let run = &mut self.runs[i];
        run.phase = phase;
        run.message = message;
        run.finished = Some(self.now);
        run.status_bytes = run.status_size();
        if run.status_bytes > self.largest_status.0 {
            self.largest_status = (run.status_bytes, run.key.name.clone());
        }
        let ttl = &run.spec["ttlStrategy"];
        let after = match phase {
            Phase::Succeeded => ttl["secondsAfterSuccess"].as_u64(),
            _ => ttl["secondsAfterFailure"].as_u64(),
        }
        .or_else(|| ttl["secondsAfterCompletion"].as_u64());
        if let Some(after) = after {
            self.timers.insert(self.now + after);
        }
        self.write_phase(i, store);
    }

    /// Deletes the Workflows whose TTL has passed.
    pub fn collect_garbage(&mut self, store: &mut Store) {
        let due: Vec<Key> = self
            .index
            .iter()
            .filter_map(|(key, i)| {
                let run = &self.runs[*i];
                let finished = run.finished?;
                let ttl = &run.spec["ttlStrategy"];
                let after = if run.phase == Phase::Succeeded {
                    ttl["secondsAfterSuccess"].as_u64()
                } else {
                    ttl["secondsAfterFailure"].as_u64()
                }
                .or_else(|| ttl["secondsAfterCompletion"].as_u64())?;
                (finished + after <= self.now).then(|| key.clone())
            })
            .collect();
        for key in due {
            let _ = store.delete(&key);
        }
    }

    /// How many active suspend nodes of a live Workflow a node field selector matches (what a
    /// script reading the Workflow's `status.nodes` sees waiting); 0 for a Workflow that is gone
    /// or done.
    pub fn waiting(&self, namespace: &str, name: &str, selector: &str) -> usize {
        let key = Key { kind: "Workflow".into(), namespace: namespace.into(), name: name.into() };
        let Some(run) = self.index.get(&key).map(|i| &self.runs[*i]).filter(|r| !r.done()) else { return 0 };
        run.nodes.iter().filter(|node| suspend_matches(node, selector)).count()
    }

    /// `PUT .../resume` with a node field selector (`workflow/util/util.go` `ResumeWorkflow`).
    pub fn resume(&mut self, namespace: &str, name: &str, selector: &str) -> Result<usize, String> {
        let key = Key { kind: "Workflow".into(), namespace: namespace.into(), name: name.into() };
        let i = *self.index.get(&key).ok_or_else(|| format!("workflows.argoproj.io \"{name}\" not found"))?;
        let now = self.now;
        let mut count = 0;
        for node in &mut self.runs[i].nodes {
            if suspend_matches(node, selector) {
                node.phase = Phase::Succeeded;
                node.finished = Some(now);
                count += 1;
            }
        }
        if count == 0 {
            return Err(format!(
                "currently, set only targets suspend nodes: no suspend nodes matching nodeFieldSelector: {selector}"
            ));
        }
        let held: Vec<String> = self.runs[i]
            .nodes
            .iter()
            .filter(|n| n.finished == Some(now) && n.kind == NodeType::Suspend)
            .map(|n| format!("{}/{}", self.runs[i].uid, n.name))
            .collect();
        for holder in held {
            self.release(&holder);
        }
        Ok(count)
    }

    // ---------------------------------------------------------------------------------------
    // Locks

    fn acquire(&mut self, holder: &str, locks: &[String], store: &Store) -> bool {
        if locks.is_empty() {
            return true;
        }
        let limit = |lock: &str| -> usize {
            match lock.split_once("/semaphore/") {
                Some((namespace, rest)) => {
                    let (map, key) = rest.split_once('/').unwrap_or((rest, ""));
                    let key_ = Key { kind: "ConfigMap".into(), namespace: namespace.into(), name: map.into() };
                    store.get(&key_).and_then(|cm| cm["data"][key].as_str().and_then(|v| v.parse().ok())).unwrap_or(0)
                }
                None => 1,
            }
        };
        // First in line among the waiters for each of these locks (`workflow/sync` queues by
        // priority, then creation time).
        let position = self.queue.iter().position(|(h, _)| h == holder);
        let ahead = self.queue[..position.unwrap_or(self.queue.len())]
            .iter()
            .any(|(_, ls)| ls.iter().any(|l| locks.contains(l)));
        let free = locks.iter().all(|lock| self.locks.get(lock).map_or(0, Vec::len) < limit(lock));
        if free && !ahead {
            for lock in locks {
                self.locks.entry(lock.clone()).or_default().push(holder.to_string());
            }
            if let Some(p) = position {
                self.queue.remove(p);
            }
            return true;
        }
        if position.is_none() {
            self.queue.push((holder.to_string(), locks.to_vec()));
        }
        false
    }

    fn release(&mut self, holder: &str) {
        for holders in self.locks.values_mut() {
            holders.retain(|h| h != holder);
        }
        self.queue.retain(|(h, _)| h != holder);
    }

    fn release_all(&mut self, uid: &str) {
        let prefix = format!("{uid}/");
        for holders in self.locks.values_mut() {
            holders.retain(|h| !h.starts_with(&prefix));
        }
        self.queue.retain(|(h, _)| !h.starts_with(&prefix));
    }

    /// Current holders of every lock.
    pub fn lock_holders(&self) -> &BTreeMap<String, Vec<String>> {
        &self.locks
    }

    // ---------------------------------------------------------------------------------------
    // Templates

    fn resolve(
        &mut self,
        i: usize,
        store: &Store,
        ctx: Option<&str>,
        name: &str,
    ) -> Result<(Value, Option<String>), String> {
        let namespace = self.runs[i].key.namespace.clone();
        let find =
            |templates: &Value| templates.as_array().and_then(|ts| ts.iter().find(|t| t["name"] == name)).cloned();
        let template = match ctx {
            Some(wt) if Some(wt) != self.runs[i].top.as_deref() => {
                let key = Key { kind: "WorkflowTemplate".into(), namespace, name: wt.into() };
                let owner =
                    store.get(&key).ok_or_else(|| format!("workflowtemplates.argoproj.io \"{wt}\" not found"))?;
                find(&owner["spec"]["templates"])
            }
            _ => find(&self.runs[i].spec["templates"]),
        }
        .ok_or_else(|| format!("template {name} not found"))?;
        if let Some(wt) = ctx
            && Some(wt) != self.runs[i].top.as_deref()
        {
            self.runs[i].stored.insert(format!("namespaced/{wt}/{name}"), template.clone());
        }
        Ok((template, ctx.map(str::to_string)))
    }

    fn add_node(&mut self, i: usize, node: Node, parent: Option<usize>) -> usize {
        let run = &mut self.runs[i];
        let index = run.nodes.len();
        run.by_name.insert(node.name.clone(), index);
        run.nodes.push(node);
        if let Some(parent) = parent {
            run.nodes[parent].children.push(index);
        }
        index
    }

    fn blank(&self, name: &str, display: &str, template: &str, kind: NodeType, phase: Phase) -> Node {
        Node {
            name: name.into(),
            display: display.into(),
            kind,
            template: template.into(),
            template_ref: None,
            phase,
            message: String::new(),
            started: self.now,
            finished: phase.done().then_some(self.now),
            inputs: Vec::new(),
            outputs: Vec::new(),
            children: Vec::new(),
            processed: Value::Null,
            ctx: None,
            held: Vec::new(),
            until: None,
            exit: 0,
            object: None,
            deadline: None,
        }
    }

    /// Adds a Skipped or Omitted node.
    #[allow(clippy::too_many_arguments)]
    fn mark(
        &mut self,
        i: usize,
        name: &str,
        display: &str,
        template: &str,
        phase: Phase,
        parent: usize,
        message: &str,
    ) -> usize {
        let mut node = self.blank(name, display, template, NodeType::Skipped, phase);
        node.message = message.into();
        self.add_node(i, node, Some(parent))
    }

    /// `executeTemplate`: continues or creates the node `name`.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &mut self,
        i: usize,
        store: &mut Store,
        world: &mut dyn World,
        name: &str,
        display: &str,
        ctx: Option<&str>,
        template_name: &str,
        template_ref: Option<&Value>,
        args: &[(String, Value)],
        depth: usize,
        attempt: bool,
    ) -> Result<Option<usize>, Abort> {
        if depth > MAX_DEPTH {
            return Err(Abort("Maximum recursion depth exceeded. See https://argo-workflows.readthedocs.io/en/latest/scaling/#maximum-recursion-depth".into()));
        }
        let parent_hint = None::<usize>;
        let index = match self.runs[i].by_name.get(name) {
            Some(index) => *index,
            None => {
                let (ctx, template_name) = match template_ref {
                    Some(r) => {
                        (r["name"].as_str().map(str::to_string), r["template"].as_str().unwrap_or("").to_string())
                    }
                    None => (ctx.map(str::to_string), template_name.to_string()),
                };
                let (template, ctx) = match self.resolve(i, store, ctx.as_deref(), &template_name) {
                    Ok(found) => found,
                    Err(e) => return Err(Abort(e)),
                };
                let mut node = self.blank(name, display, &template_name, NodeType::Pod, Phase::Pending);
                node.template_ref = ctx.clone().filter(|c| Some(c.as_str()) != self.runs[i].top.as_deref());
                node.ctx = ctx;
                match self.inputs(i, store, &template, args) {
                    Ok(inputs) => node.inputs = inputs,
                    Err(e) => {
                        node.phase = Phase::Error;
                        node.message = e;
                        node.finished = Some(self.now);
                        return Ok(Some(self.add_node(i, node, parent_hint)));
                    }
                }
                let mut vars = self.runs[i].globals.clone();
                for (n, v) in &node.inputs {
                    vars.insert(format!("inputs.parameters.{n}"), v.clone());
                }
                let text = go_json(&template);
                node.processed = match substitute(&text, &vars, true).and_then(|t| parse_json(&t)) {
                    Ok(v) => v,
                    Err(e) => {
                        node.phase = Phase::Error;
                        node.message = e;
                        node.finished = Some(self.now);
                        return Ok(Some(self.add_node(i, node, parent_hint)));
                    }
                };
                let retry = !attempt && template.get("retryStrategy").is_some();
                node.kind = if retry {
                    NodeType::Retry
                } else if template.get("dag").is_some() {
                    NodeType::Dag
                } else if template.get("steps").is_some() {
                    NodeType::Steps
                } else if template.get("suspend").is_some() {
                    NodeType::Suspend
                } else if template.get("http").is_some() {
                    NodeType::Http
                } else {
                    NodeType::Pod
                };
                self.add_node(i, node, parent_hint)
            }
        };
        if self.runs[i].nodes[index].phase.done() {
            return Ok(Some(index));
        }
        // Locks, before anything runs. A retried template's locks are taken once, by its Retry
        // node, and held across attempts and their backoff until the Retry node is fulfilled
        // (`operator.go` `executeTemplate`: `TryAcquire` with the node id of `nodeName` before
        // the Retry node is injected and `nodeName` becomes `<name>(<n>)`; `Release` once the
        // retry parent is fulfilled).
        if self.runs[i].nodes[index].phase == Phase::Pending && !attempt {
            let sync = self.runs[i].nodes[index].processed.get("synchronization").cloned().unwrap_or(Value::Null);
            let locks = sync_locks(&sync, &self.runs[i].key.namespace);
            let holder = format!("{}/{}", self.runs[i].uid, name);
            if !self.acquire(&holder, &locks, store) {
                self.runs[i].nodes[index].message = "Waiting for lock".into();
                return Ok(Some(index));
            }
            let node = &mut self.runs[i].nodes[index];
            node.held = locks;
            node.message.clear();
            if node.kind != NodeType::Pod && node.kind != NodeType::Http {
                node.phase = Phase::Running;
                node.started = self.now;
            }
        }
        let kind = self.runs[i].nodes[index].kind;
        let result = match kind {
            NodeType::Retry => self.run_retry(i, store, world, index, depth),
            NodeType::Dag => self.run_dag(i, store, world, index, depth),
            NodeType::Steps => self.run_steps(i, store, world, index, depth),
            NodeType::Suspend => {
                self.run_suspend(i, index);
                Ok(())
            }
            NodeType::Http => {
                self.run_http(i, store, world, index);
                Ok(())
            }
            _ => {
                self.run_pod(i, store, world, index);
                Ok(())
            }
        };
        result?;
        Ok(Some(index))
    }

    fn inputs(
        &self,
        i: usize,
        store: &Store,
        template: &Value,
        args: &[(String, Value)],
    ) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for param in template.pointer("/inputs/parameters").and_then(Value::as_array).into_iter().flatten() {
            let name = param["name"].as_str().unwrap_or("").to_string();
            let value = match args.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => self.argument_value(i, store, v)?,
                None => None,
            };
            let value = value
                .or_else(|| param.get("value").map(text_of))
                .or_else(|| param.get("default").map(text_of))
                .ok_or_else(|| format!("inputs.parameters.{name} was not supplied"))?;
            out.push((name, value));
        }
        Ok(out)
    }

    /// An argument's value: `value`, or `valueFrom.configMapKeyRef` read now.
    fn argument_value(&self, i: usize, store: &Store, arg: &Value) -> Result<Option<String>, String> {
        if let Some(value) = arg.get("value") {
            return Ok(Some(text_of(value)));
        }
        if let Some(reference) = arg.pointer("/valueFrom/configMapKeyRef") {
            let name = reference["name"].as_str().unwrap_or("");
            let key = reference["key"].as_str().unwrap_or("");
            let map =
                Key { kind: "ConfigMap".into(), namespace: self.runs[i].key.namespace.clone(), name: name.into() };
            let found = store.get(&map).and_then(|cm| {
                let labelled =
                    cm.pointer("/metadata/labels/workflows.argoproj.io~1configmap-type").and_then(Value::as_str)
                        == Some("Parameter");
                labelled.then(|| cm["data"][key].as_str().map(str::to_string)).flatten()
            });
            return Ok(found
                .or_else(|| arg.pointer("/valueFrom/default").map(text_of))
                .or_else(|| arg.get("default").map(text_of)));
        }
        Ok(arg.get("default").map(text_of))
    }

    fn complete(&mut self, i: usize, store: &mut Store, index: usize, phase: Phase, message: String) {
        let now = self.now;
        let holder = format!("{}/{}", self.runs[i].uid, self.runs[i].nodes[index].name);
        self.release(&holder);
        let retry_parent = self.runs[i].nodes.iter().any(|n| n.kind == NodeType::Retry && n.children.contains(&index));
        let node = &mut self.runs[i].nodes[index];
        node.phase = phase;
        node.message = message;
        node.finished = Some(now);
        if node.kind == NodeType::Pod || node.kind == NodeType::Http {
            // Outputs of resource templates (`jsonPath`), before metrics.
            if let (Some(object), Some(params)) =
                (node.object.clone(), node.processed.pointer("/outputs/parameters").and_then(Value::as_array).cloned())
            {
                let live = store.get(&object).cloned().unwrap_or(Value::Null);
                for param in params {
                    let name = param["name"].as_str().unwrap_or("").to_string();
                    let path = param.pointer("/valueFrom/jsonPath").and_then(Value::as_str).unwrap_or("");
                    let dotted_path = path.trim_start_matches("{.").trim_end_matches('}');
                    let value = dotted(&live, dotted_path)
                        .map(text_of)
                        .or_else(|| param.pointer("/valueFrom/default").map(text_of));
                    if let Some(value) = value {
                        self.runs[i].nodes[index].outputs.push((name, value));
                    }
                }
            }
        }
        self.emit_metrics(i, index, retry_parent);
    }

    fn emit_metrics(&mut self, i: usize, index: usize, is_attempt: bool) {
        let node = &self.runs[i].nodes[index];
        let Some(metrics) = node.processed.pointer("/metrics/prometheus").and_then(Value::as_array).cloned() else {
            return;
        };
        let mut vars = Vars::new();
        vars.insert("duration".into(), (node.finished.unwrap_or(self.now) - node.started).to_string());
        vars.insert("status".into(), node.phase.name().into());
        if node.kind == NodeType::Retry {
            vars.insert("retries".into(), node.children.len().saturating_sub(1).to_string());
        } else if !is_attempt && node.processed.get("retryStrategy").is_none() {
            vars.insert("retries".into(), "0".into());
        }
        for metric in metrics {
            let text = go_json(&metric);
            match substitute(&text, &vars, true) {
                Ok(done) if !done.contains("{{") => {
                    let value = parse_json(&done).unwrap_or(Value::Null);
                    let labels = value["labels"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|l| (text_of(&l["key"]), text_of(&l["value"])))
                        .collect();
                    let number = value
                        .pointer("/gauge/value")
                        .or_else(|| value.pointer("/counter/value"))
                        .map(text_of)
                        .unwrap_or_default();
                    self.runs[i].metrics.push((text_of(&value["name"]), labels, number));
                }
                Ok(done) => {
                    let tag = done.split("{{").nth(1).and_then(|t| t.split("}}").next()).unwrap_or("").to_string();
                    let condition = format!(
                        "MetricsError: unable to substitute parameters for metric '{}': failed to resolve {{{{{tag}}}}}",
                        text_of(&metric["name"])
                    );
                    if !self.runs[i].conditions.contains(&condition) {
                        self.runs[i].conditions.push(condition);
                    }
                }
                Err(e) => self.runs[i].conditions.push(format!("MetricsError: {e}")),
            }
        }
    }

    fn run_retry(
        &mut self,
        i: usize,
        store: &mut Store,
        world: &mut dyn World,
        index: usize,
        depth: usize,
    ) -> Result<(), Abort> {
        let node = &self.runs[i].nodes[index];
        let strategy = node.processed["retryStrategy"].clone();
        let limit =
            strategy["limit"].as_u64().or_else(|| strategy["limit"].as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
                as usize;
        let policy = strategy["retryPolicy"].as_str().unwrap_or("OnFailure").to_string();
        let (name, template, ctx) = (node.name.clone(), node.template.clone(), node.ctx.clone());
        let inputs: Vec<(String, Value)> = node.inputs.iter().map(|(n, v)| (n.clone(), json!({"value": v}))).collect();
        let attempts = node.children.clone();
        if self.runs[i].nodes[index].phase == Phase::Pending {
            self.runs[i].nodes[index].phase = Phase::Running;
        }
        let last = attempts.last().copied();
        let next = match last {
            None => Some(0),
            Some(last) => {
                let phase = self.runs[i].nodes[last].phase;
                if !phase.done() {
                    None
                } else if !phase.failed() {
                    let message = self.runs[i].nodes[last].message.clone();
                    self.runs[i].nodes[index].outputs = self.runs[i].nodes[last].outputs.clone();
                    self.complete(i, store, index, phase, message);
                    return Ok(());
                } else {
                    let retryable = match policy.as_str() {
                        "Always" => true,
                        "OnError" => phase == Phase::Error,
                        "OnTransientError" => false,
                        _ => phase == Phase::Failed,
                    };
                    if retryable && attempts.len() <= limit {
                        let duration = parse_duration(
                            strategy.pointer("/backoff/duration").map(text_of).as_deref().unwrap_or("0"),
                        );
                        let factor = strategy
                            .pointer("/backoff/factor")
                            .and_then(|f| f.as_f64().or_else(|| f.as_str().and_then(|s| s.parse().ok())))
                            .unwrap_or(1.0);
                        let wait = (duration as f64 * factor.powi(attempts.len() as i32 - 1)) as u64;
                        let at = self.runs[i].nodes[last].finished.unwrap_or(self.now) + wait;
                        if at > self.now {
                            self.timers.insert(at);
                            return Ok(());
                        }
                        Some(attempts.len())
                    } else {
                        let message = self.runs[i].nodes[last].message.clone();
                        self.complete(i, store, index, phase, message);
                        return Ok(());
                    }
                }
            }
        };
        let k = next.unwrap_or_else(|| attempts.len() - 1);
        let child = format!("{name}({k})");
        let display = format!("{}({k})", self.runs[i].nodes[index].display);
        let existed = self.runs[i].by_name.contains_key(&child);
        let created =
            self.execute(i, store, world, &child, &display, ctx.as_deref(), &template, None, &inputs, depth + 1, true)?;
        if let Some(created) = created
            && !existed
        {
            self.runs[i].nodes[index].children.push(created);
            // The attempt runs the template found in the same place as the parent's.
            let template_ref = self.runs[i].nodes[index].template_ref.clone();
            self.runs[i].nodes[created].template_ref = template_ref;
        }
        Ok(())
    }

    fn scope_vars(&self, i: usize, prefix: &str, parent: &str, names: &[String], sep: &str) -> Vars {
        let mut vars = Vars::new();
        for n in names {
            let child = format!("{parent}{sep}{n}");
            if let Some(node) = self.runs[i].node(&child) {
                vars.insert(format!("{prefix}.{n}.status"), node.phase.name().into());
                for (o, v) in &node.outputs {
                    vars.insert(format!("{prefix}.{n}.outputs.parameters.{o}"), v.clone());
                }
            }
        }
        vars
    }

    fn run_dag(
        &mut self,
        i: usize,
        store: &mut Store,
        world: &mut dyn World,
        index: usize,
        depth: usize,
    ) -> Result<(), Abort> {
        let node = &self.runs[i].nodes[index];
        let (dag_name, ctx) = (node.name.clone(), node.ctx.clone());
        let dag = node.processed["dag"].clone();
        let fail_fast = dag["failFast"].as_bool().unwrap_or(true);
        let tasks = dag["tasks"].as_array().cloned().unwrap_or_default();
        let names: Vec<String> = tasks.iter().map(|t| text_of(&t["name"])).collect();
        let phase_of = |this: &Self, task: &str| this.runs[i].node(&format!("{dag_name}.{task}")).map(|n| n.phase);
        let mut all_done = true;
        for task in &tasks {
            let task_name = text_of(&task["name"]);
            let full = format!("{dag_name}.{task_name}");
            let deps: Vec<String> = match task["depends"].as_str() {
                Some(d) => expr::depends_names(d),
                None => task["dependencies"].as_array().into_iter().flatten().map(text_of).collect(),
            };
            if let Some(existing) = self.runs[i].node(&full) {
                if existing.phase.done() {
                    continue;
                }
            } else {
                // failFast: once a task failed no new task starts, and the DAG ends when the
                // running ones have (`dag.go`, `executeDAG`).
                let failed = tasks
                    .iter()
                    .any(|t| phase_of(self, &text_of(&t["name"])).is_some_and(Phase::failed) && !continues(t));
                if fail_fast && failed {
                    continue;
                }
                if deps.iter().any(|d| !phase_of(self, d).is_some_and(Phase::done)) {
                    all_done = false;
                    continue;
                }
                let depends = task["depends"].as_str().map(str::to_string).unwrap_or_else(|| deps.join(" && "));
                let holds = depends.is_empty()
                    || expr::depends(&depends, &|t| phase_of(self, t).map(|p| p.name().to_string())).map_err(Abort)?;
                if !holds {
                    let template = text_of(&task["template"]);
                    self.mark(
                        i,
                        &full,
                        &task_name,
                        &template,
                        Phase::Omitted,
                        index,
                        "omitted: depends condition not met",
                    );
                    continue;
                }
                let vars = self.scope_vars(i, "tasks", &dag_name, &names, ".");
                if let Some(when) = task["when"].as_str() {
                    let text = substitute(when, &vars, false).map_err(Abort)?;
                    match expr::when(&text) {
                        Ok(true) => {}
                        Ok(false) => {
                            let template = text_of(&task["template"]);
                            self.mark(
                                i,
                                &full,
                                &task_name,
                                &template,
                                Phase::Skipped,
                                index,
                                &format!("when '{text}' evaluated false"),
                            );
                            continue;
                        }
                        Err(e) => return Err(Abort(format!("invalid when {text:?}: {e}"))),
                    }
                }
            }
            let vars = self.scope_vars(i, "tasks", &dag_name, &names, ".");
            let child =
                self.call(i, store, world, task, &full, &text_of(&task["name"]), ctx.as_deref(), &vars, index, depth)?;
            if !child.is_some_and(|c| self.runs[i].nodes[c].phase.done()) {
                all_done = false;
            }
        }
        let stopped = fail_fast
            && tasks.iter().any(|t| phase_of(self, &text_of(&t["name"])).is_some_and(Phase::failed) && !continues(t));
        if (!all_done && !stopped)
            || tasks.iter().any(|t| phase_of(self, &text_of(&t["name"])).is_some_and(|p| !p.done()))
        {
            return Ok(());
        }
        let failed =
            tasks.iter().find(|t| phase_of(self, &text_of(&t["name"])).is_some_and(Phase::failed) && !continues(t));
        match failed {
            Some(t) => {
                let child = self.runs[i]
                    .node(&format!("{dag_name}.{}", text_of(&t["name"])))
                    .map(|n| n.message.clone())
                    .unwrap_or_default();
                self.complete(i, store, index, Phase::Failed, child);
            }
            None => self.complete(i, store, index, Phase::Succeeded, String::new()),
        }
        Ok(())
    }

    /// Runs one DAG task or step: arguments substituted in its scope, `withParam` expanded.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        i: usize,
        store: &mut Store,
        world: &mut dyn World,
        call: &Value,
        full: &str,
        display: &str,
        ctx: Option<&str>,
        vars: &Vars,
        parent: usize,
        depth: usize,
    ) -> Result<Option<usize>, Abort> {
        let template = text_of(&call["template"]);
        let template_ref = call.get("templateRef").cloned();
        let args_of = |vars: &Vars| -> Result<Vec<(String, Value)>, Abort> {
            let text = substitute(&go_json(&call["arguments"]), vars, true).map_err(Abort)?;
            Ok(argument_pairs(&parse_json(&text).map_err(Abort)?))
        };
        if let Some(param) = call["withParam"].as_str() {
            let text = substitute(param, vars, false).map_err(Abort)?;
            let items: Vec<Value> = serde_json::from_str(&text)
                .map_err(|e| Abort(format!("withParam value could not be parsed as a JSON list: {text}: {e}")))?;
            let group = match self.runs[i].by_name.get(full) {
                Some(g) => *g,
                None => {
                    let mut node = self.blank(full, display, &template, NodeType::TaskGroup, Phase::Running);
                    node.finished = None;
                    self.add_node(i, node, Some(parent))
                }
            };
            if items.is_empty() {
                self.complete(i, store, group, Phase::Skipped, "withParam is empty".into());
                return Ok(Some(group));
            }
            let mut done = true;
            let mut failed = false;
            for (k, item) in items.iter().enumerate() {
                let mut item_vars = vars.clone();
                match item {
                    Value::Object(map) => {
                        for (key, v) in map {
                            item_vars.insert(format!("item.{key}"), text_of(v));
                        }
                    }
                    other => {
                        item_vars.insert("item".into(), text_of(other));
                    }
                }
                let child_name = format!("{full}({k}:{})", short_item(item));
                let existed = self.runs[i].by_name.contains_key(&child_name);
                let args = args_of(&item_vars)?;
                let child = self.execute(
                    i,
                    store,
                    world,
                    &child_name,
                    &child_name,
                    ctx,
                    &template,
                    template_ref.as_ref(),
                    &args,
                    depth + 1,
                    false,
                )?;
                if let Some(c) = child {
                    if !existed {
                        self.runs[i].nodes[group].children.push(c);
                    }
                    let phase = self.runs[i].nodes[c].phase;
                    done &= phase.done();
                    failed |= phase.failed();
                }
            }
            if done {
                self.complete(i, store, group, if failed { Phase::Failed } else { Phase::Succeeded }, String::new());
            }
            return Ok(Some(group));
        }
        let existed = self.runs[i].by_name.contains_key(full);
        let args = args_of(vars)?;
        let child = self.execute(
            i,
            store,
            world,
            full,
            display,
            ctx,
            &template,
            template_ref.as_ref(),
            &args,
            depth + 1,
            false,
        )?;
        if let Some(c) = child
            && !existed
        {
            self.runs[i].nodes[parent].children.push(c);
        }
        Ok(child)
    }

    fn run_steps(
        &mut self,
        i: usize,
        store: &mut Store,
        world: &mut dyn World,
        index: usize,
        depth: usize,
    ) -> Result<(), Abort> {
        let node = &self.runs[i].nodes[index];
        let (steps_name, ctx) = (node.name.clone(), node.ctx.clone());
        let groups = node.processed["steps"].as_array().cloned().unwrap_or_default();
        let mut earlier: Vec<String> = Vec::new();
        let mut parent = index;
        for (g, group) in groups.iter().enumerate() {
            let group_name = format!("{steps_name}[{g}]");
            let group_index = match self.runs[i].by_name.get(&group_name) {
                Some(gi) => *gi,
                None => {
                    let mut node = self.blank(&group_name, &format!("[{g}]"), "", NodeType::StepGroup, Phase::Running);
                    node.finished = None;
                    self.add_node(i, node, Some(parent))
                }
            };
            let steps = group.as_array().cloned().unwrap_or_default();
            if !self.runs[i].nodes[group_index].phase.done() {
                let vars = self.scope_vars(i, "steps", &format!("{steps_name}[]"), &[], "");
                let mut vars = vars;
                for (e, name) in &earlier.iter().map(|n| (n.clone(), n.clone())).collect::<Vec<_>>() {
                    let _ = e;
                    for (gi, _) in groups.iter().enumerate().take(g) {
                        if let Some(step) = self.runs[i].node(&format!("{steps_name}[{gi}].{name}")) {
                            vars.insert(format!("steps.{name}.status"), step.phase.name().into());
                            for (o, v) in &step.outputs {
                                vars.insert(format!("steps.{name}.outputs.parameters.{o}"), v.clone());
                            }
                        }
                    }
                }
                let mut done = true;
                let mut failed = None;
                for step in &steps {
                    let step_name = text_of(&step["name"]);
                    let full = format!("{group_name}.{step_name}");
                    if self.runs[i].node(&full).is_none()
                        && let Some(when) = step["when"].as_str()
                    {
                        let text = substitute(when, &vars, false).map_err(Abort)?;
                        match expr::when(&text) {
                            Ok(true) => {}
                            Ok(false) => {
                                let template = text_of(&step["template"]);
                                self.mark(
                                    i,
                                    &full,
                                    &step_name,
                                    &template,
                                    Phase::Skipped,
                                    group_index,
                                    &format!("when '{text}' evaluated false"),
                                );
                                continue;
                            }
                            Err(e) => return Err(Abort(format!("invalid when {text:?}: {e}"))),
                        }
                    }
                    let child =
                        self.call(i, store, world, step, &full, &step_name, ctx.as_deref(), &vars, group_index, depth)?;
                    if let Some(c) = child {
                        let phase = self.runs[i].nodes[c].phase;
                        done &= phase.done();
                        if phase.failed() && !continues(step) {
                            failed = Some(self.runs[i].nodes[c].message.clone());
                        }
                    } else {
                        done = false;
                    }
                }
                if !done {
                    return Ok(());
                }
                match failed {
                    Some(message) => {
                        self.complete(i, store, group_index, Phase::Failed, message.clone());
                        self.complete(i, store, index, Phase::Failed, message);
                        return Ok(());
                    }
                    None => self.complete(i, store, group_index, Phase::Succeeded, String::new()),
                }
            }
            if self.runs[i].nodes[group_index].phase.failed() {
                return Ok(());
            }
            earlier.extend(steps.iter().map(|s| text_of(&s["name"])));
            parent = group_index;
        }
        let outputs = self.steps_outputs(i, index);
        self.runs[i].nodes[index].outputs = outputs;
        self.complete(i, store, index, Phase::Succeeded, String::new());
        Ok(())
    }

    fn steps_outputs(&self, _i: usize, _index: usize) -> Vec<(String, String)> {
        Vec::new()
    }

    fn run_suspend(&mut self, i: usize, index: usize) {
        let now = self.now;
        let node = &mut self.runs[i].nodes[index];
        if node.until.is_none()
            && let Some(duration) = node.processed.pointer("/suspend/duration").map(text_of)
        {
            node.until = Some(node.started + parse_duration(&duration));
        }
        if let Some(until) = node.until {
            if now >= until {
                node.phase = Phase::Succeeded;
                node.finished = Some(now);
                let holder = format!("{}/{}", self.runs[i].uid, self.runs[i].nodes[index].name);
                self.release(&holder);
            } else {
                self.timers.insert(until);
            }
        }
    }

    fn start_pod(&mut self, i: usize, index: usize) {
        let now = self.now;
        let node = &mut self.runs[i].nodes[index];
        node.phase = Phase::Running;
        node.started = now;
        if let Some(seconds) = node.processed["activeDeadlineSeconds"]
            .as_u64()
            .or_else(|| node.processed["activeDeadlineSeconds"].as_str().and_then(|s| s.parse().ok()))
        {
            node.deadline = Some(now + seconds);
            self.timers.insert(now + seconds);
        }
    }

    fn run_http(&mut self, i: usize, store: &mut Store, world: &mut dyn World, index: usize) {
        // The agent pod runs as the workflow's service account and mounts its token Secret.
        let sa = self.runs[i].spec["serviceAccountName"].as_str().unwrap_or("default").to_string();
        let secret = Key {
            kind: "Secret".into(),
            namespace: self.runs[i].key.namespace.clone(),
            name: format!("{sa}.service-account-token"),
        };
        if store.get(&secret).is_none() {
            self.runs[i].nodes[index].message = format!("agent pod cannot start: secret \"{}\" not found", secret.name);
            return;
        }
        self.start_pod(i, index);
        let http = self.runs[i].nodes[index].processed["http"].clone();
        let (status, body) =
            world.http(self.now, http["url"].as_str().unwrap_or(""), http["method"].as_str().unwrap_or("GET"));
        let ok = match http["successCondition"].as_str() {
            Some(condition) => expr::http_success(condition, status, &body).unwrap_or(false),
            None => (200..300).contains(&status),
        };
        let phase = if ok { Phase::Succeeded } else { Phase::Failed };
        self.runs[i].nodes[index].outputs.push(("result".into(), body));
        self.complete(i, store, index, phase, if ok { String::new() } else { format!("response status {status}") });
    }

    fn run_pod(&mut self, i: usize, store: &mut Store, world: &mut dyn World, index: usize) {
        let namespace = self.runs[i].key.namespace.clone();
        let run_name = self.runs[i].key.name.clone();
        if self.runs[i].nodes[index].phase == Phase::Pending {
            self.start_pod(i, index);
            let template = self.runs[i].nodes[index].processed.clone();
            if let Some(resource) = template.get("resource") {
                match self.resource_action(i, store, resource, &namespace) {
                    Ok(key) => self.runs[i].nodes[index].object = key,
                    Err(e) => {
                        self.complete(i, store, index, Phase::Failed, e);
                        return;
                    }
                }
                if resource["action"] == "delete"
                    || (resource.get("successCondition").is_none() && resource.get("failureCondition").is_none())
                {
                    self.complete(i, store, index, Phase::Succeeded, String::new());
                    return;
                }
            } else {
                let (duration, exit, message) = world.container(self.now, store, &run_name, &template);
                let node = &mut self.runs[i].nodes[index];
                node.until = Some(self.now + duration);
                node.exit = exit;
                node.message = message;
                self.timers.insert(self.now + duration);
            }
        }
        let node = self.runs[i].nodes[index].clone();
        if world.evicted(self.now, &run_name, &node) {
            self.complete(i, store, index, Phase::Error, "pod deleted (evicted)".into());
            return;
        }
        if node.deadline.is_some_and(|d| self.now >= d) {
            self.complete(
                i,
                store,
                index,
                Phase::Failed,
                "Pod was active on the node longer than the specified deadline".into(),
            );
            return;
        }
        if let Some(resource) = node.processed.get("resource") {
            let Some(key) = &node.object else { return };
            let Some(live) = store.get(key).cloned() else {
                self.complete(i, store, index, Phase::Failed, format!("{key} was deleted while waiting"));
                return;
            };
            if let Some(failure) = resource["failureCondition"].as_str()
                && condition_holds(failure, &live).unwrap_or(false)
            {
                self.complete(i, store, index, Phase::Failed, format!("failure condition '{failure}' evaluated true"));
                return;
            }
            if let Some(success) = resource["successCondition"].as_str()
                && condition_holds(success, &live).unwrap_or(false)
            {
                self.complete(i, store, index, Phase::Succeeded, String::new());
            }
            return;
        }
        if node.until.is_some_and(|u| self.now >= u) {
            let phase = if node.exit == 0 { Phase::Succeeded } else { Phase::Failed };
            let message = if node.exit == 0 { String::new() } else { node.message.clone() };
            if node.exit == 0 {
                self.runs[i].nodes[index].message.clear();
            }
            self.complete(i, store, index, phase, message);
        }
    }

    fn resource_action(
        &mut self,
        i: usize,
        store: &mut Store,
        resource: &Value,
        namespace: &str,
    ) -> Result<Option<Key>, String> {
        let action = resource["action"].as_str().unwrap_or("");
        let flags: Vec<String> = resource["flags"].as_array().into_iter().flatten().map(text_of).collect();
        if action == "delete" && resource.get("manifest").is_none() {
            let kinds: Vec<String> =
                flags.first().map(|f| f.split(',').map(kind_of_resource).collect()).unwrap_or_default();
            let selector = flags
                .iter()
                .position(|f| f == "--selector" || f == "-l")
                .and_then(|p| flags.get(p + 1))
                .cloned()
                .unwrap_or_default();
            let ignore_missing = flags.iter().any(|f| f == "--ignore-not-found");
            for kind in &kinds {
                if !store.knows(kind) {
                    return Err(format!(
                        "error: the server doesn't have a resource type \"{}\"",
                        kind.to_ascii_lowercase()
                    ));
                }
            }
            for kind in kinds {
                for key in store.select(&kind, namespace, &selector) {
                    store.delete(&key).or_else(|e| if ignore_missing { Ok(()) } else { Err(e) })?;
                }
            }
            return Ok(None);
        }
        let manifest = resource["manifest"].as_str().ok_or("the resource template has no manifest")?;
        let mut object: Value =
            serde_saphyr::from_str(manifest).map_err(|e| format!("kubectl could not read the manifest: {e}"))?;
        if resource["setOwnerReference"].as_bool() == Some(true) {
            let uid = self.runs[i].uid.clone();
            let name = self.runs[i].key.name.clone();
            object["metadata"]["ownerReferences"] = json!([{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": name, "uid": uid, "blockOwnerDeletion": true, "controller": true}]);
        }
        let key = match action {
            "create" => store.create(object, namespace)?,
            "apply" => store.apply(object, namespace)?,
            "patch" => store.merge_patch(&object, namespace, false)?,
            "get" => {
                let key = Store::key_of(&object, namespace)?;
                store.get(&key).ok_or_else(|| format!("{} \"{}\" not found", key.kind, key.name))?;
                key
            }
            "delete" => {
                let key = Store::key_of(&object, namespace)?;
                if store.get(&key).is_some() {
                    store.delete(&key)?;
                }
                return Ok(None);
            }
            other => return Err(format!("action {other} is not modelled")),
        };
        Ok(Some(key))
    }
}

/// Whether a node is an active suspend node a node field selector matches
/// (`workflow/util/util.go` `updateSuspendedNode`, `SelectorMatchesNode`).
fn suspend_matches(node: &Node, selector: &str) -> bool {
    if node.kind != NodeType::Suspend || node.phase != Phase::Running {
        return false;
    }
    selector.split(',').filter_map(|p| p.split_once('=')).all(|(field, value)| {
        let actual = match field {
            "templateName" => Some(node.template.clone()),
            "displayName" => Some(node.display.clone()),
            "name" => Some(node.name.clone()),
            "phase" => Some(node.phase.name().to_string()),
            f => f
                .strip_prefix("inputs.parameters.")
                .and_then(|p| p.strip_suffix(".value"))
                .and_then(|p| node.inputs.iter().find(|(n, _)| n == p).map(|(_, v)| v.clone())),
        };
        actual.as_deref() == Some(value)
    })
}

fn continues(call: &Value) -> bool {
    call.pointer("/continueOn/failed").and_then(Value::as_bool) == Some(true)
        || call.pointer("/continueOn/error").and_then(Value::as_bool) == Some(true)
}

fn short_item(item: &Value) -> String {
    let text = match item {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().take(40).collect()
}

fn argument_pairs(arguments: &Value) -> Vec<(String, Value)> {
    arguments["parameters"].as_array().into_iter().flatten().map(|p| (text_of(&p["name"]), p.clone())).collect()
}

/// The spec a Workflow with a `workflowTemplateRef` runs: the WorkflowTemplate's spec with the
/// Workflow's own spec applied over it (`workflow/util/merge.go` `JoinWorkflowSpec` →
/// `MergeTo(patch = template, target = workflow)`: `strategicpatch.StrategicMergePatch` of the
/// Workflow's JSON onto the template's, "if the target workflow defines a field, this take
/// precedence over the patch"). So `entrypoint`, `onExit`, `serviceAccountName`,
/// `activeDeadlineSeconds`, `ttlStrategy`, `podGC`, `synchronization` ... of the Workflow replace
/// the template's; objects merge key by key; the lists Argo tags `patchMergeKey` merge by that key
/// (`templates`, `arguments.parameters`, `volumes`, ... in `workflow_types.go`); other lists are
/// replaced. Fields the Workflow leaves empty are absent from its JSON (`omitempty`) and so keep
/// the template's value. Then (`JoinWorkflowSpec`, "the value of an argument should respect the
/// priority order") each parameter with a value is taken whole from the Workflow when it names
/// it, else from the template, so `value`, `valueFrom` and `default` never mix across the two.
fn join_spec(workflow: &Value, template: &Value) -> Value {
    let mut joined = template.clone();
    strategic_merge(&mut joined, workflow);
    let has_value = |p: &Value| p.get("value").is_some() || p.get("default").is_some() || p.get("valueFrom").is_some();
    let by_name = |spec: &Value, name: &Value| -> Option<Value> {
        spec.pointer("/arguments/parameters")
            .and_then(Value::as_array)
            .and_then(|ps| ps.iter().find(|p| p["name"] == *name && has_value(p)))
            .cloned()
    };
    if let Some(params) = joined.pointer_mut("/arguments/parameters").and_then(Value::as_array_mut) {
        for param in params.iter_mut().filter(|p| has_value(p)) {
            if let Some(own) = by_name(workflow, &param["name"]).or_else(|| by_name(template, &param["name"])) {
                *param = own;
            }
        }
    }
    joined
}

/// The `patchMergeKey` of a list field (`workflow_types.go` and `k8s.io/api/core/v1`), if any.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "templates" | "parameters" | "artifacts" | "volumes" | "imagePullSecrets" | "tasks" | "initContainers"
        | "sidecars" | "env" => Some("name"),
        "tolerations" => Some("key"),
        "hostAliases" => Some("ip"),
        "volumeMounts" => Some("mountPath"),
        _ => None,
    }
}

/// `strategicpatch.StrategicMergePatch(original = target, patch)` for the fields above: the
/// patch's values win, objects merge, keyed lists merge by key (the patch's new items appended),
/// other lists are replaced; null, `""` and `[]` are what Go's `omitempty` leaves out.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let (Some(target), Some(patch)) = (target.as_object_mut(), patch.as_object()) else { return };
    for (field, value) in patch {
        let empty = value.is_null()
            || value.as_str() == Some("")
            || value.as_array().is_some_and(Vec::is_empty)
            || value.as_object().is_some_and(serde_json::Map::is_empty);
        if empty {
            continue;
        }
        let existing = target.entry(field.clone()).or_insert(Value::Null);
        match (existing, value, merge_key(field)) {
            (object @ Value::Object(_), Value::Object(_), _) => strategic_merge(object, value),
            (Value::Array(items), Value::Array(given), Some(key)) => {
                for item in given {
                    match items.iter_mut().find(|i| i.get(key).is_some() && i.get(key) == item.get(key)) {
                        Some(found) if found.is_object() && item.is_object() => strategic_merge(found, item),
                        Some(found) => *found = item.clone(),
                        None => items.push(item.clone()),
                    }
                }
            }
            (slot, _, _) => *slot = value.clone(),
        }
    }
}

/// The locks of a `synchronization` block: `<ns>/semaphore/<configmap>/<key>` and
/// `<ns>/mutex/<name>`.
fn sync_locks(sync: &Value, namespace: &str) -> Vec<String> {
    let mut locks = Vec::new();
    let semaphores = sync.get("semaphores").and_then(Value::as_array).cloned().unwrap_or_default();
    let one = sync.get("semaphore").cloned().into_iter();
    for s in semaphores.into_iter().chain(one) {
        if let Some(r) = s.get("configMapKeyRef") {
            locks.push(format!("{namespace}/semaphore/{}/{}", text_of(&r["name"]), text_of(&r["key"])));
        }
    }
    let mutexes = sync.get("mutexes").and_then(Value::as_array).cloned().unwrap_or_default();
    for m in mutexes.into_iter().chain(sync.get("mutex").cloned()) {
        locks.push(format!("{namespace}/mutex/{}", text_of(&m["name"])));
    }
    locks
}

/// `1h`, `30s`, `2m`, `90` (seconds).
pub fn parse_duration(text: &str) -> u64 {
    let text = text.trim().trim_matches('"');
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
        } else {
            let n: u64 = number.parse().unwrap_or(0);
            number.clear();
            total += n * match c {
                'h' => 3600,
                'm' => 60,
                'd' => 86400,
                _ => 1,
            };
        }
    }
    total + number.parse::<u64>().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Containers run 100 s; the first attempt of task `a` fails.
    struct FirstFails(bool);

    impl World for FirstFails {
        fn container(&mut self, _: u64, _: &mut Store, _: &str, template: &Value) -> (u64, i32, String) {
            let task = template.pointer("/container/args/0").and_then(Value::as_str).unwrap_or("");
            if task == "a" && !self.0 {
                self.0 = true;
                return (100, 1, "failed".into());
            }
            (100, 0, String::new())
        }
        fn http(&mut self, _: u64, _: &str, _: &str) -> (u16, String) {
            (200, String::new())
        }
        fn evicted(&mut self, _: u64, _: &str, _: &Node) -> bool {
            false
        }
    }

    /// Runs a Workflow until nothing is due; returns the controller.
    fn run_to_end(workflow: Value, world: &mut dyn World) -> Controller {
        let mut store = Store::new(Vec::<String>::new());
        let mut controller = Controller::default();
        store.create(workflow, "ns").expect("created");
        let changes = store.drain();
        controller.observe(&store, &changes);
        for _ in 0..1000 {
            for _ in 0..50 {
                let before = controller.fingerprint();
                controller.pass(&mut store, world);
                let changes = store.drain();
                controller.observe(&store, &changes);
                if changes.is_empty() && controller.fingerprint() == before {
                    break;
                }
            }
            let now = controller.now;
            let Some(next) = controller.timers.range(now + 1..).next().copied() else { break };
            controller.now = next;
            controller.timers.retain(|t| *t > next);
        }
        controller
    }

    #[test]
    fn a_retried_template_holds_its_mutex_across_attempts_and_backoff() {
        let workflow = serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": "w", "namespace": "ns"},
            "spec": {
                "entrypoint": "main",
                "templates": [
                    {"name": "main", "dag": {"tasks": [
                        {"name": "a", "template": "work", "arguments": {"parameters": [{"name": "task", "value": "a"}]}},
                        {"name": "b", "template": "work", "arguments": {"parameters": [{"name": "task", "value": "b"}]}},
                    ]}},
                    {"name": "work",
                     "inputs": {"parameters": [{"name": "task"}]},
                     "synchronization": {"mutexes": [{"name": "one"}]},
                     "retryStrategy": {"limit": 1, "backoff": {"duration": "300s"}},
                     "container": {"image": "busybox", "args": ["{{inputs.parameters.task}}"]}},
                ],
            },
        });
        let controller = run_to_end(workflow, &mut FirstFails(false));
        let run = controller.run("ns", "w").expect("the run");
        assert_eq!(run.phase, Phase::Succeeded, "{}", run.message);
        let a = run.node("w.a").expect("a");
        let b = run.node("w.b").expect("b");
        assert_eq!(a.kind, NodeType::Retry);
        // `a` takes the mutex first, fails once, waits out 300 s of backoff and succeeds at 500 s
        // still holding it; only then can `b` start.
        let (first, second) = if a.started <= b.started { (a, b) } else { (b, a) };
        assert_eq!(first.finished.map(|f| f >= 400), Some(true), "{first:?}");
        assert!(
            second.started >= first.finished.unwrap(),
            "{} started while {} held the mutex",
            second.name,
            first.name
        );
    }

    #[test]
    fn a_workflow_s_own_fields_override_its_workflow_template() {
        let template = serde_json::json!({
            "entrypoint": "main", "onExit": "exit", "serviceAccountName": "stages",
            "activeDeadlineSeconds": 600, "ttlStrategy": {"secondsAfterSuccess": 60},
            "podGC": {"strategy": "OnPodSuccess"}, "synchronization": {"mutexes": [{"name": "a"}]},
            "arguments": {"parameters": [{"name": "x", "value": "1"}, {"name": "y", "value": "2"}]},
            "templates": [{"name": "main", "container": {"image": "a"}}, {"name": "exit", "container": {"image": "b"}}],
        });
        let workflow = serde_json::json!({
            "workflowTemplateRef": {"name": "t"}, "entrypoint": "other", "onExit": "",
            "serviceAccountName": "task", "activeDeadlineSeconds": 60,
            "ttlStrategy": {"secondsAfterFailure": 5}, "podGC": {"strategy": "OnWorkflowSuccess"},
            "synchronization": {"mutexes": [{"name": "b"}]},
            "arguments": {"parameters": [{"name": "y", "valueFrom": {"configMapKeyRef": {"name": "m", "key": "k"}}}, {"name": "z", "value": "3"}]},
        });
        let joined = join_spec(&workflow, &template);
        assert_eq!(joined["entrypoint"], "other");
        assert_eq!(joined["onExit"], "exit", "an empty field keeps the template's (omitempty)");
        assert_eq!(joined["serviceAccountName"], "task");
        assert_eq!(joined["activeDeadlineSeconds"], 60);
        assert_eq!(joined["ttlStrategy"], serde_json::json!({"secondsAfterSuccess": 60, "secondsAfterFailure": 5}));
        assert_eq!(joined["podGC"]["strategy"], "OnWorkflowSuccess");
        assert_eq!(joined["synchronization"]["mutexes"], serde_json::json!([{"name": "b"}]));
        assert_eq!(
            joined["arguments"]["parameters"],
            serde_json::json!([
                {"name": "x", "value": "1"},
                {"name": "y", "valueFrom": {"configMapKeyRef": {"name": "m", "key": "k"}}},
                {"name": "z", "value": "3"},
            ]),
            "merged by name; the Workflow's parameter whole, never mixed with the template's value"
        );
        assert_eq!(joined["templates"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), 30);
        assert_eq!(parse_duration("1h30m"), 5400);
        assert_eq!(parse_duration("90"), 90);
    }
}
