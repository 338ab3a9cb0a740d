//! pressplay turns a task backlog into the Argo Workflows and Argo Events manifests that carry
//! every task through a chain of AI agents until it is merged.
//!
//! The code follows the data: [`spec`] reads and checks the backlog, [`plan`] builds the DAG and
//! everything derived from it, [`render`] lays it out as YAML through templates, [`output`]
//! writes, checks or streams the result, and [`cli`] wires the commands together.

pub mod cli;
pub mod diagnostic;
pub mod model;
pub mod output;
pub mod plan;
pub mod render;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use diagnostic::{Diagnostic, SourceFile};
use plan::{Plan, PlanError};
use render::Document;
use spec::{LoadError, Loaded};

/// Options that change what is generated.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// How the backlog is read.
    pub load: spec::LoadOptions,
    /// A directory whose templates replace the built-in ones.
    pub templates: Option<PathBuf>,
}

/// Why nothing was generated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backlog could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The backlog has problems; the diagnostics say which.
    #[error("the backlog has {} problem(s)", .diagnostics.iter().filter(|d| d.is_error()).count())]
    Invalid {
        /// The backlog file.
        file: SourceFile,
        /// Errors and warnings, in file order.
        diagnostics: Vec<Diagnostic>,
    },
    /// A template override directory could not be read or parsed.
    #[error("{0}")]
    Templates(String),
    /// A template failed.
    #[error(transparent)]
    Render(#[from] render::RenderError),
}

/// A checked and planned backlog.
#[derive(Debug)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// The backlog file.
    pub source: SourceFile,
    /// Warnings found on the way (errors stop before this point).
    pub warnings: Vec<Diagnostic>,
}

/// Everything one render produces.
#[derive(Debug)]
pub struct Generated {
    /// The plan the documents came from.
    pub planned: Planned,
    /// Every document.
    pub documents: Vec<Document>,
    /// The GitOps tree: relative path → text.
    pub files: BTreeMap<String, String>,
}

/// Reads, checks and plans a backlog. Every problem in the file is reported together.
pub fn load_and_plan(input: &Path, display_name: &str, options: &spec::LoadOptions) -> Result<Planned, Error> {
    let Loaded { backlog, source, mut problems } = spec::load(input, display_name, options)?;
    let plan = plan::build(&backlog);
    if let Err(errors) = &plan {
        for error in errors {
            problems.push(plan_diagnostic(error, &backlog));
        }
    }
    if problems.iter().any(Diagnostic::is_error) {
        problems.sort_by_key(|d| d.span.map_or((usize::MAX, 0), |s| (s.line, s.column)));
        return Err(Error::Invalid { file: source, diagnostics: problems });
    }
    let plan = plan.expect("no errors means a plan");
    Ok(Planned { plan, source, warnings: problems })
}

fn plan_diagnostic(error: &PlanError, backlog: &spec::Backlog) -> Diagnostic {
    let span_of = |id: &spec::TaskId| backlog.tasks.iter().find(|t| &t.id == id).map(|t| t.span);
    match error {
        PlanError::Cycle(path) => Diagnostic::error(error.to_string(), span_of(&path[0]))
            .with_hint("these tasks wait for each other, so none can start; remove one of these dependencies"),
        PlanError::NumberCollision(a, _) => {
            Diagnostic::error(error.to_string(), span_of(a)).with_hint("rename one of the two tasks")
        }
        PlanError::TaskTooLarge(id, _) => Diagnostic::error(error.to_string(), span_of(id))
            .with_hint("keep long specifications in the docs repository and summarise them in the backlog"),
        PlanError::TooManyPipelines(_) => Diagnostic::error(error.to_string(), None)
            .with_hint("use fewer distinct `pipeline` lists; tasks with the same kind and pipeline share one"),
        PlanError::ProjectName(_) => Diagnostic::error(error.to_string(), None),
    }
}

/// Reads, checks, plans and renders a backlog: the one function `render`, `--check` and
/// `--stdout` share.
pub fn generate(input: &Path, display_name: &str, options: &Options) -> Result<Generated, Error> {
    let (env, origin) = render::env::environment(options.templates.as_deref()).map_err(Error::Templates)?;
    let planned = load_and_plan(input, display_name, &options.load)?;
    let documents = render::render(&planned.plan, &env, origin, display_name)?;
    let files = output::tree(&documents, display_name);
    Ok(Generated { planned, documents, files })
}

/// What the largest objects of a run weigh, measured by running a sample of the rendered tree
/// under [`model`]: one task of each chain (the one with the most parameters), each going
/// through one remediation when its chain has acceptance, and the run waiting `days` days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFigures {
    /// The largest task Workflow's status at its end (bytes, as the controller writes it).
    pub largest_task: usize,
    /// Its name (`<project>-task-<number>`).
    pub largest_task_name: String,
    /// The largest task Workflow's node count.
    pub largest_task_nodes: usize,
    /// The run's status at its end, after `days` days of waiting.
    pub run: usize,
    /// Days the sampled run waited.
    pub days: u64,
}

/// Measures [`RunFigures`] for a plan. A backlog without tasks has nothing to measure.
pub fn measure_run(plan: &Plan) -> Result<Option<RunFigures>, String> {
    if plan.tasks.is_empty() {
        return Ok(None);
    }
    // One task per chain: the one whose record carries the most (requirements, probes).
    let weight = |t: &plan::PlannedTask| {
        t.requirements.as_ref().map_or(0, String::len) + t.probes.as_ref().map_or(0, String::len)
    };
    let mut chosen: BTreeMap<usize, usize> = BTreeMap::new();
    for (index, task) in plan.tasks.iter().enumerate() {
        let best = chosen.entry(task.chain).or_insert(index);
        if weight(task) > weight(&plan.tasks[*best]) {
            *best = index;
        }
    }
    let mut sample = plan.clone();
    sample.tasks = chosen
        .values()
        .map(|&i| plan::PlannedTask { dependencies: Vec::new(), brief_map: 0, ..plan.tasks[i].clone() })
        .collect();
    sample.graph_maps = vec![(0..sample.tasks.len()).collect()];
    sample.brief_maps = vec![(0..sample.tasks.len()).collect()];
    let (env, origin) = render::env::environment(None)?;
    let documents = render::render(&sample, &env, origin, "sample").map_err(|e| e.to_string())?;
    let files = output::tree(&documents, "sample");
    // Each task waits a month for its merge, so the run waits as long.
    let days = 30;
    let failures = sample
        .tasks
        .iter()
        .filter(|t| sample.chains[t.chain].stages.contains(&spec::StageName::Acceptance))
        .map(|t| (u64::try_from(t.number).unwrap_or(0), "acceptance".to_owned(), Some(0)))
        .collect();
    let scenario = model::sim::Scenario {
        merge: model::sim::Merge::AfterWait(days * 86_400 - 7_200),
        failures,
        horizon: (days + 10) * 86_400,
        ..model::sim::Scenario::default()
    };
    let outcome = model::sim::run(&files, &scenario, &model::dispatch)?;
    let prefix = format!("{}-task-", plan.project.name);
    let largest = outcome
        .workflows
        .iter()
        .filter(|w| w.name.starts_with(&prefix))
        .max_by_key(|w| (w.status_bytes, std::cmp::Reverse(w.name.clone())))
        .ok_or("no task Workflow ran")?;
    let run = outcome.workflow(&format!("{}-play", plan.project.name)).ok_or("the run did not start")?;
    Ok(Some(RunFigures {
        largest_task: largest.status_bytes,
        largest_task_name: largest.name.clone(),
        largest_task_nodes: largest.nodes,
        run: run.status_bytes,
        days,
    }))
}
