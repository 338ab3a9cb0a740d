//! PURE: turns a checked backlog into everything `render/` needs, with no I/O and no templates.
//!
//! The algorithm, step by step:
//! 1. Sort tasks by id, so nothing below depends on the order of the file.
//! 2. Build the dependency graph; report every cycle whole, in the user's ids.
//! 3. Give each task its level (longest path from a root) and a schedule order: by level, then
//!    priority, then id.
//! 4. Name things: a node name per task (`names::node_names`), a CodeRun task number, one chain
//!    template per distinct (kind, pipeline).
//! 5. Pack the task records (what the dispatcher needs to start a task's Workflow) and the
//!    briefs (what the agents read) into ConfigMaps of at most [`chunk::MAX_MAP_BYTES`] each, in
//!    schedule order. Each task runs as its own Workflow, so no object grows with the backlog.
//! 6. Measure the critical path for `pressplay plan`.

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
    /// Tasks (indices into `tasks`) of each graph ConfigMap, in schedule order.
    pub graph_maps: Vec<Vec<usize>>,
    /// Tasks (indices into `tasks`) of each brief ConfigMap, in schedule order.
    pub brief_maps: Vec<Vec<usize>>,
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
    /// Index into `Plan::brief_maps` of the ConfigMap holding the brief.
    pub brief_map: usize,
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
    /// One task's text alone is too large for a Kubernetes object.
    #[error("task `{0}` carries {1} KiB of text and requirements into the manifests; one object may hold about {max} KiB", max = chunk::MAX_MAP_BYTES / 1024)]
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
    let _project = K8sName::new(backlog.project.name.clone())
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
                brief_map: 0,
                requirements: task.requirements.clone(),
                probes: (!task.probes.is_empty())
                    .then(|| serde_json::to_string(&task.probes).expect("probes serialise")),
            }
        })
        .collect();

    // 6. Packing, after checking that every task and the set of chains fit at all.
    if chains.len() > MAX_CHAINS {
        return Err(vec![PlanError::TooManyPipelines(chains.len())]);
    }
    let mut tasks = tasks;
    let record_sizes: Vec<usize> = tasks.iter().map(|t| record_bytes(t, &tasks, &chains[t.chain])).collect();
    let brief_sizes: Vec<usize> = tasks.iter().map(brief_bytes).collect();
    let too_large: Vec<PlanError> = tasks
        .iter()
        .zip(record_sizes.iter().zip(&brief_sizes))
        .filter_map(|(task, (&record, &brief))| {
            let bytes = record.max(brief);
            (bytes > chunk::MAX_MAP_BYTES).then(|| PlanError::TaskTooLarge(task.id.clone(), bytes / 1024))
        })
        .collect();
    if !too_large.is_empty() {
        return Err(too_large);
    }
    let graph_maps = chunk::pack(&record_sizes, chunk::MAX_MAP_BYTES);
    let brief_maps = chunk::pack(&brief_sizes, chunk::MAX_MAP_BYTES);
    for (map, members) in brief_maps.iter().enumerate() {
        for &t in members {
            tasks[t].brief_map = map;
        }
    }

    // 7. Figures.
    let mut stats = stats(&tasks, &chains);
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
        graph_maps,
        brief_maps,
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

/// Estimated bytes of one task's record in a graph ConfigMap (its dispatch parameters and
/// dependencies), with generous margins (see `tests/limits.rs`).
fn record_bytes(task: &PlannedTask, tasks: &[PlannedTask], chain: &Chain) -> usize {
    let deps: usize = task.dependencies.iter().map(|&d| tasks[d].number.to_string().len() + 4).sum();
    // 400: the record's frame and the fixed parameters (names, quotes, the merged flag).
    400 + task.node.as_str().len()
        + 2 * task.id.as_str().len()
        + 2 * chain.name.as_str().len()
        + task.requirements.as_ref().map_or(0, |r| r.len() + 40)
        + task.probes.as_ref().map_or(0, |p| p.len() * 2 + 40)
        + deps
}

/// Bytes of one brief in a brief ConfigMap: the key, the base64 text and YAML's quoting.
fn brief_bytes(task: &PlannedTask) -> usize {
    task.brief.len() + 40
}

fn stats(tasks: &[PlannedTask], chains: &[Chain]) -> Stats {
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

    Stats {
        levels,
        level_sizes,
        critical_path_stages: end.map_or(0, |t| finish[t]),
        critical_path,
        not_scheduled: Vec::new(),
    }
}
