//! PURE: turns a checked backlog into everything `render/` needs, with no I/O and no templates.
//!
//! The algorithm, step by step:
//! 1. Sort tasks by id, so nothing below depends on the order of the file.
//! 2. Build the dependency graph; report every cycle whole, in the user's ids.
//! 3. Give each task its level (longest path from a root) and a schedule order: by level, then
//!    priority, then id.
//! 4. Name things: a node name per task (`names::node_names`), a CodeRun task number, one chain
//!    template per distinct (kind, pipeline).
//! 5. Chunk: if the tasks do not fit in one DAG (200 tasks, ~200 KiB), split the schedule order
//!    into part DAGs, and nest again while the level above does not fit either.
//! 6. Measure what the chunking costs (critical path with and without it) for `pressplay plan`.

pub mod brief;
pub mod chunk;
pub mod graph;
pub mod names;

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::{Backlog, Defaults, Kind, Priority, Project, Scheduling, StageName, Task, TaskId, TaskStatus};
use graph::TaskGraph;
pub use names::K8sName;

/// Everything `render/` may see. Built only by [`build`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// Project-wide settings (already validated).
    pub project: Project,
    /// Defaults (already validated).
    pub defaults: Defaults,
    /// Project-level requirements, base64 (the default for tasks without their own).
    pub requirements: Option<String>,
    /// GitHub events, when enabled.
    pub events: Option<crate::spec::Events>,
    /// GitHub credentials and the Argo Server, with events on or off.
    pub access: crate::spec::Access,
    /// Every agent role's profile.
    pub profiles: BTreeMap<crate::spec::AgentRole, crate::spec::profile::Profile>,
    /// Tasks in schedule order.
    pub tasks: Vec<PlannedTask>,
    /// One chain template per distinct (kind, pipeline), sorted by name.
    pub chains: Vec<Chain>,
    /// The DAG templates; `dags[0]` is the orchestrator's, the rest are parts, in order.
    pub dags: Vec<Dag>,
    /// Figures for `pressplay plan`.
    pub stats: Stats,
}

/// One task, ready to render.
#[derive(Debug, Clone)]
pub struct PlannedTask {
    /// The user's id.
    pub id: TaskId,
    /// DAG task name and label value.
    pub node: K8sName,
    /// CodeRun `spec.taskId`.
    pub number: i64,
    /// The title, for pictures and summaries (never for manifests: it is free text).
    pub title: String,
    /// CodeRun or DocsRun.
    pub kind: Kind,
    /// Index into `Plan::chains`.
    pub chain: usize,
    /// Level (0 = no dependencies).
    pub level: usize,
    /// Scheduling priority.
    pub priority: Priority,
    /// Indices (into `Plan::tasks`) of the tasks it depends on, ascending.
    pub dependencies: Vec<usize>,
    /// The task's text for the agents, as standard base64 of a JSON object.
    pub brief: String,
    /// The task's own requirements (base64 YAML), when it has them.
    pub requirements: Option<String>,
    /// The HTTP probes of its acceptance stage, as a JSON list, when it has any.
    pub probes: Option<String>,
}

/// A task that does not run in this render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotScheduled {
    /// The task.
    pub id: TaskId,
    /// Why.
    pub reason: Reason,
}

/// Why a task does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Its status is done, cancelled, deferred or blocked.
    Status(TaskStatus),
    /// It depends, directly or not, on this deferred or blocked task.
    HeldBackBy(TaskId),
}

/// A stage chain: the steps one task runs, defined once and called by every task that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Template name, `<kind>-<stage>-<stage>...`.
    pub name: K8sName,
    /// Which resource its stages create.
    pub kind: Kind,
    /// Stages in order.
    pub stages: Vec<StageName>,
}

/// A DAG template in its own WorkflowTemplate.
#[derive(Debug, Clone)]
pub struct Dag {
    /// WorkflowTemplate name.
    pub name: K8sName,
    /// Nodes in schedule order; every node's dependencies come before it.
    pub nodes: Vec<DagNode>,
}

/// One node of a DAG.
#[derive(Debug, Clone)]
pub struct DagNode {
    /// Task name inside the DAG.
    pub name: K8sName,
    /// What the node runs.
    pub target: NodeTarget,
    /// Names of the nodes of the same DAG it waits for, in schedule order.
    pub depends: Vec<K8sName>,
}

/// What a DAG node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeTarget {
    /// A task's chain; index into `Plan::tasks`.
    Task(usize),
    /// Another DAG; index into `Plan::dags`.
    Dag(usize),
    /// Nothing: the backlog has no task to run (all done, say).
    Noop,
}

/// Figures about the schedule, for `pressplay plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Number of levels (the critical path in tasks).
    pub levels: usize,
    /// Tasks per level.
    pub level_sizes: Vec<usize>,
    /// Agent stages on the longest dependency path, when every ready task starts at once.
    pub critical_path_stages: usize,
    /// The tasks on that path, in order.
    pub critical_path: Vec<usize>,
    /// The same figure when DAG parts wait for whole parts (equal to the above without chunking).
    pub chunked_critical_path_stages: usize,
    /// Number of part DAGs (0 when everything fits in the orchestrator).
    pub parts: usize,
    /// Tasks that do not run, by id.
    pub not_scheduled: Vec<NotScheduled>,
}

/// A problem `plan` finds in a backlog that passed `spec`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A dependency cycle, as a closed path of ids (`1 → 4 → 9 → 1`).
    #[error("dependency cycle: {}", format_cycle(.0))]
    Cycle(Vec<TaskId>),
    /// Two string ids hash to the same CodeRun task number.
    #[error("tasks `{0}` and `{1}` map to the same task number")]
    NumberCollision(TaskId, TaskId),
    /// A project name too long for the names built from it.
    #[error("project name `{0}` leaves no room for generated names")]
    ProjectName(String),
    /// More tasks than three levels of nesting can hold.
    #[error("{0} tasks is more than one orchestrator can hold (8,000,000)")]
    TooManyTasks(usize),
    /// One task's text alone is too large for a Kubernetes object.
    #[error("task `{0}` carries {1} KiB of text and requirements into the manifests; one object may hold about {max} KiB", max = chunk::MAX_DAG_BYTES / 1024)]
    TaskTooLarge(TaskId, usize),
    /// More distinct (kind, pipeline) pairs than one WorkflowTemplate has room for.
    #[error("the backlog uses {0} different pipelines; at most {MAX_CHAINS} fit in one stages template")]
    TooManyPipelines(usize),
}

/// Chains the stages WorkflowTemplate holds room for (two templates each, beside the agent and
/// gate templates, within Argo's 200 templates per spec).
pub const MAX_CHAINS: usize = 90;

/// Formats a cycle path with arrows and backticks, as diagnostics show it.
pub fn format_cycle(path: &[TaskId]) -> String {
    path.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(" → ")
}

/// Plans a backlog. Returns every cycle at once when there are any.
pub fn build(backlog: &Backlog) -> Result<Plan, Vec<PlanError>> {
    // 1. Order-independent indexing.
    let mut all: Vec<&Task> = backlog.tasks.iter().collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let all_dependencies = index_dependencies(&all);

    // 2. Cycles, over every task (a cycle is wrong even among finished tasks).
    let all_graph = TaskGraph::new(&all_dependencies);
    let cycles = all_graph.cycles();
    if !cycles.is_empty() {
        return Err(cycles
            .into_iter()
            .map(|path| PlanError::Cycle(path.into_iter().map(|i| all[i].id.clone()).collect()))
            .collect());
    }

    // 3. What runs: statuses, and tasks held back by a deferred or blocked dependency.
    let not_scheduled = unscheduled(&all, &all_dependencies, &all_graph.levels(&all_dependencies));
    let skipped: BTreeSet<&TaskId> = not_scheduled.iter().map(|n| &n.id).collect();
    let node_names_all = names::node_names(&all.iter().map(|t| t.id.clone()).collect::<Vec<_>>());
    let (sorted, node_names): (Vec<&Task>, Vec<K8sName>) =
        all.iter().zip(node_names_all).filter(|(t, _)| !skipped.contains(&t.id)).map(|(t, n)| (*t, n)).unzip();
    let dependencies = index_dependencies(&sorted);
    let graph = TaskGraph::new(&dependencies);

    // 4. Levels and schedule order.
    let levels = graph.levels(&dependencies);
    let mut order: Vec<usize> = (0..sorted.len()).collect();
    order.sort_by(|&a, &b| (levels[a], sorted[a].priority).cmp(&(levels[b], sorted[b].priority)).then(a.cmp(&b)));
    let mut position = vec![0usize; order.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = pos;
    }

    // 5. Names, numbers, chains.
    let project = K8sName::new(backlog.project.name.clone())
        .filter(|name| name.as_str().len() <= 40)
        .ok_or_else(|| vec![PlanError::ProjectName(backlog.project.name.clone())])?;
    let ids: Vec<TaskId> = sorted.iter().map(|t| t.id.clone()).collect();
    let mut numbers: BTreeMap<i64, &TaskId> = BTreeMap::new();
    for id in &ids {
        if let Some(other) = numbers.insert(names::task_number(id), id) {
            return Err(vec![PlanError::NumberCollision(other.clone(), id.clone())]);
        }
    }
    let chain_keys: BTreeSet<(Kind, Vec<StageName>)> = sorted.iter().map(|t| (t.kind, t.pipeline.clone())).collect();
    let mut chains: Vec<Chain> =
        chain_keys.into_iter().map(|(kind, stages)| Chain { name: chain_name(kind, &stages), kind, stages }).collect();
    chains.sort_by(|a, b| a.name.cmp(&b.name));
    let chain_index: BTreeMap<(Kind, &[StageName]), usize> =
        chains.iter().enumerate().map(|(i, c)| ((c.kind, c.stages.as_slice()), i)).collect();

    let tasks: Vec<PlannedTask> = order
        .iter()
        .map(|&i| {
            let task = sorted[i];
            let mut deps: Vec<usize> = dependencies[i].iter().map(|&d| position[d]).collect();
            deps.sort_unstable();
            PlannedTask {
                id: task.id.clone(),
                node: node_names[i].clone(),
                number: names::task_number(&task.id),
                title: task.title.clone(),
                kind: task.kind,
                chain: chain_index[&(task.kind, task.pipeline.as_slice())],
                level: levels[i],
                priority: task.priority,
                dependencies: deps,
                brief: brief::encode(task),
                requirements: task.requirements.clone(),
                probes: (!task.probes.is_empty())
                    .then(|| serde_json::to_string(&task.probes).expect("probes serialise")),
            }
        })
        .collect();

    // 6. Chunking, after checking that every task and the set of chains fit at all.
    if chains.len() > MAX_CHAINS {
        return Err(vec![PlanError::TooManyPipelines(chains.len())]);
    }
    let too_large: Vec<PlanError> = tasks
        .iter()
        .filter_map(|task| {
            let bytes = node_bytes(task, &tasks, &chains[task.chain], &project);
            (bytes > chunk::MAX_DAG_BYTES).then(|| PlanError::TaskTooLarge(task.id.clone(), bytes / 1024))
        })
        .collect();
    if !too_large.is_empty() {
        return Err(too_large);
    }
    let dags = chunk_dags(&project, &tasks, &chains).map_err(|e| vec![e])?;

    // 7. Figures.
    let mut stats = stats(&tasks, &chains, &dags);
    stats.not_scheduled = not_scheduled;
    Ok(Plan {
        project: backlog.project.clone(),
        defaults: backlog.defaults.clone(),
        requirements: backlog.requirements.clone(),
        events: backlog.events.clone(),
        access: backlog.access.clone(),
        profiles: backlog.profiles.clone(),
        tasks,
        chains,
        dags,
        stats,
    })
}

/// For each task, the indices (into `tasks`) of the tasks it depends on, ascending; dependencies
/// outside `tasks` are left out.
fn index_dependencies(tasks: &[&Task]) -> Vec<Vec<usize>> {
    let index_of: BTreeMap<&TaskId, usize> = tasks.iter().enumerate().map(|(i, t)| (&t.id, i)).collect();
    tasks
        .iter()
        .map(|task| {
            let mut deps: Vec<usize> = task.dependencies.iter().filter_map(|d| index_of.get(d).copied()).collect();
            deps.sort_unstable();
            deps.dedup();
            deps
        })
        .collect()
}

/// The tasks that do not run, and why: their own status, or a dependency that is deferred or
/// blocked (directly or through other tasks).
fn unscheduled(tasks: &[&Task], dependencies: &[Vec<usize>], levels: &[usize]) -> Vec<NotScheduled> {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| (levels[i], i));
    let mut held_by: Vec<Option<usize>> = vec![None; tasks.len()];
    let mut out = Vec::new();
    for i in order {
        match tasks[i].status.scheduling() {
            Scheduling::Satisfied => {
                out.push(NotScheduled { id: tasks[i].id.clone(), reason: Reason::Status(tasks[i].status) })
            }
            Scheduling::Held => {
                held_by[i] = Some(i);
                out.push(NotScheduled { id: tasks[i].id.clone(), reason: Reason::Status(tasks[i].status) });
            }
            Scheduling::Run => {
                if let Some(root) = dependencies[i].iter().find_map(|&d| held_by[d]) {
                    held_by[i] = Some(root);
                    out.push(NotScheduled {
                        id: tasks[i].id.clone(),
                        reason: Reason::HeldBackBy(tasks[root].id.clone()),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// The node (and template) that stands in when no task runs.
pub const NOOP_NODE: &str = "nothing-to-run";

/// `code-author-lint-tests-deploy-acceptance`.
fn chain_name(kind: Kind, stages: &[StageName]) -> K8sName {
    let kind = match kind {
        Kind::Code => "code",
        Kind::Docs => "docs",
    };
    let stages: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
    K8sName::new(format!("{kind}-{}", stages.join("-"))).expect("stage names are lowercase words")
}

/// Estimated JSON bytes of one task's DAG node, with generous margins (see `tests/limits.rs`).
fn node_bytes(task: &PlannedTask, tasks: &[PlannedTask], chain: &Chain, project: &K8sName) -> usize {
    let deps: usize = task.dependencies.iter().map(|&d| tasks[d].node.as_str().len() + 16).sum();
    // 650: the fixed part of a node with its arguments, including the merge-gate state read.
    650 + 2 * task.node.as_str().len()
        + task.id.as_str().len()
        + project.as_str().len()
        + chain.name.as_str().len()
        + task.brief.len()
        + task.requirements.as_ref().map_or(0, |r| r.len() + 40)
        + task.probes.as_ref().map_or(0, |p| p.len() * 2 + 40)
        + deps
}

fn chunk_dags(project: &K8sName, tasks: &[PlannedTask], chains: &[Chain]) -> Result<Vec<Dag>, PlanError> {
    let sizes: Vec<usize> = tasks.iter().map(|t| node_bytes(t, tasks, &chains[t.chain], project)).collect();
    let deps: Vec<Vec<usize>> = tasks.iter().map(|t| t.dependencies.clone()).collect();
    let task_nodes = |items: &[usize]| -> Vec<DagNode> {
        items
            .iter()
            .map(|&t| DagNode {
                name: tasks[t].node.clone(),
                target: NodeTarget::Task(t),
                // Only dependencies inside the same DAG; the rest are carried by the parts' edges.
                depends: tasks[t]
                    .dependencies
                    .iter()
                    .filter(|d| items.contains(d))
                    .map(|&d| tasks[d].node.clone())
                    .collect(),
            })
            .collect()
    };
    let fits =
        |sizes: &[usize]| sizes.len() <= chunk::MAX_DAG_TASKS && sizes.iter().sum::<usize>() <= chunk::MAX_DAG_BYTES;
    if tasks.is_empty() {
        let name = K8sName::new(NOOP_NODE).expect("valid name");
        return Ok(vec![Dag {
            name: project.clone(),
            nodes: vec![DagNode { name, target: NodeTarget::Noop, depends: Vec::new() }],
        }]);
    }
    if fits(&sizes) {
        let all: Vec<usize> = (0..tasks.len()).collect();
        return Ok(vec![Dag { name: project.clone(), nodes: task_nodes(&all) }]);
    }

    // Level 1: parts of tasks. Later levels: groups of the level below.
    let mut dags: Vec<Dag> = Vec::new();
    let mut chunks = chunk::split(&sizes, &deps, chunk::MAX_DAG_TASKS, chunk::MAX_DAG_BYTES);
    let mut below: Vec<usize> = Vec::new(); // dag index of each chunk of the level below
    for (i, part) in chunks.iter().enumerate() {
        let name = project.join(&format!("part-{:03}", i + 1)).expect("project name is at most 40 bytes");
        // A task's dependencies inside its part; `task_nodes` filters on membership.
        dags.push(Dag { name, nodes: task_nodes(&part.items) });
        below.push(dags.len() - 1);
    }
    let mut level = 1;
    loop {
        let node_name = |dag: &Dag| {
            K8sName::new(dag.name.as_str()[project.as_str().len() + 1..].to_owned()).expect("suffix of a valid name")
        };
        let nodes: Vec<DagNode> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| DagNode {
                name: node_name(&dags[below[i]]),
                target: NodeTarget::Dag(below[i]),
                depends: c.depends_on.iter().map(|&d| node_name(&dags[below[d]])).collect(),
            })
            .collect();
        if nodes.len() <= chunk::MAX_DAG_TASKS {
            dags.insert(0, Dag { name: project.clone(), nodes });
            // Every stored index moved by one.
            for dag in dags.iter_mut() {
                for node in &mut dag.nodes {
                    if let NodeTarget::Dag(d) = &mut node.target {
                        *d += 1;
                    }
                }
            }
            return Ok(dags);
        }
        level += 1;
        if level > 3 {
            return Err(PlanError::TooManyTasks(tasks.len()));
        }
        let group_sizes = vec![1usize; nodes.len()];
        let group_deps: Vec<Vec<usize>> = chunks.iter().map(|c| c.depends_on.clone()).collect();
        let groups = chunk::split(&group_sizes, &group_deps, chunk::MAX_DAG_TASKS, usize::MAX);
        let mut next_below = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let member = |i: usize| group.items.contains(&i);
            let group_nodes: Vec<DagNode> = group
                .items
                .iter()
                .map(|&i| DagNode {
                    depends: chunks[i]
                        .depends_on
                        .iter()
                        .filter(|&&d| member(d))
                        .map(|&d| node_name(&dags[below[d]]))
                        .collect(),
                    ..nodes[i].clone()
                })
                .collect();
            let prefix = if level == 2 { "group".to_owned() } else { format!("group{level}") };
            let name = project.join(&format!("{prefix}-{:03}", g + 1)).expect("project name is at most 40 bytes");
            dags.push(Dag { name, nodes: group_nodes });
            next_below.push(dags.len() - 1);
        }
        chunks = groups;
        below = next_below;
    }
}

fn stats(tasks: &[PlannedTask], chains: &[Chain], dags: &[Dag]) -> Stats {
    let weight = |t: usize| chains[tasks[t].chain].stages.len();
    let levels = tasks.iter().map(|t| t.level + 1).max().unwrap_or(0);
    let mut level_sizes = vec![0usize; levels];
    for task in tasks {
        level_sizes[task.level] += 1;
    }

    // Unconstrained: earliest finish of each task, in schedule order (dependencies come first).
    let mut finish = vec![0usize; tasks.len()];
    let mut via: Vec<Option<usize>> = vec![None; tasks.len()];
    for (t, task) in tasks.iter().enumerate() {
        let best = task.dependencies.iter().copied().max_by_key(|&d| (finish[d], std::cmp::Reverse(d)));
        via[t] = best;
        finish[t] = best.map_or(0, |d| finish[d]) + weight(t);
    }
    let end = (0..tasks.len()).max_by_key(|&t| (finish[t], std::cmp::Reverse(t)));
    let mut critical_path = Vec::new();
    let mut at = end;
    while let Some(t) = at {
        critical_path.push(t);
        at = via[t];
    }
    critical_path.reverse();

    // Chunked: a node starts when its DAG starts and its siblings it depends on finish.
    let mut chunked_finish = vec![0usize; tasks.len()];
    let chunked = if dags.is_empty() { 0 } else { dag_finish(0, 0, dags, &mut chunked_finish, &weight) };
    Stats {
        levels,
        level_sizes,
        critical_path_stages: end.map_or(0, |t| finish[t]),
        critical_path,
        chunked_critical_path_stages: chunked,
        parts: dags.len().saturating_sub(1),
        not_scheduled: Vec::new(),
    }
}

fn dag_finish(
    dag: usize,
    start: usize,
    dags: &[Dag],
    task_finish: &mut [usize],
    weight: &dyn Fn(usize) -> usize,
) -> usize {
    let mut node_finish: BTreeMap<&str, usize> = BTreeMap::new();
    let mut latest = start;
    for node in &dags[dag].nodes {
        let begin = node.depends.iter().map(|d| node_finish[d.as_str()]).max().unwrap_or(0).max(start);
        let end = match node.target {
            NodeTarget::Task(t) => {
                task_finish[t] = begin + weight(t);
                task_finish[t]
            }
            NodeTarget::Dag(d) => dag_finish(d, begin, dags, task_finish, weight),
            NodeTarget::Noop => begin,
        };
        node_finish.insert(node.name.as_str(), end);
        latest = latest.max(end);
    }
    latest
}
