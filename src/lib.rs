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
