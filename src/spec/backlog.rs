//! The checked backlog: what `plan/` is allowed to see. Every value here has passed validation,
//! so every text field that reaches a manifest is known to be safe where it lands (see the
//! field docs), and every dependency names a task that exists.

use crate::diagnostic::Span;
use crate::spec::raw::{Kind, Priority};
use crate::spec::stage::StageName;
use crate::spec::status::TaskStatus;
use crate::spec::task_id::TaskId;

/// A validated backlog.
#[derive(Debug, Clone)]
pub struct Backlog {
    /// Project-wide settings.
    pub project: Project,
    /// Defaults for every task.
    pub defaults: Defaults,
    /// Tasks in the order they were written.
    pub tasks: Vec<Task>,
    /// Project-level requirements (`--requirements`), base64 of the file's bytes.
    pub requirements: Option<String>,
    /// GitHub events, when enabled.
    pub events: Option<Events>,
    /// How the cluster reaches GitHub and the Argo Server, with events on or off.
    pub access: Access,
    /// Every agent role's resolved profile.
    pub profiles: std::collections::BTreeMap<crate::spec::AgentRole, crate::spec::profile::Profile>,
}

/// Checked event settings. Every value matches a narrow pattern (see `validate.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// `(secret name, key)`, or `None` when the user chose `none` with `--insecure-webhook`.
    pub webhook_secret: Option<(String, String)>,
    /// Trusted `author_association` values (upper-case words).
    pub trusted_associations: Vec<String>,
    /// Logins ignored besides bots (`[A-Za-z0-9-]` plus an optional `[bot]`).
    pub ignore_authors: Vec<String>,
    /// Backlog path in the repository.
    pub backlog_path: String,
    /// EventBus to use; `None` renders one named after the project.
    pub event_bus: Option<String>,
}

/// What the merge gate's reconcile needs with events on or off (it is the only record of
/// merges without them): the GitHub App credentials and the Argo Server that wakes the gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Argo Server base URL.
    pub argo_server: String,
    /// ClusterSecretStore name.
    pub secret_store: String,
    /// Remote key of the GitHub credentials.
    pub remote_key: String,
}

/// Project-wide settings. Every field matches a narrow pattern checked in `validate.rs`, so
/// it can be written into manifests (and Argo-templated text) without escaping beyond quoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// DNS label, at most 40 characters.
    pub name: String,
    /// Clone URL (`https://...`).
    pub repository_url: String,
    /// `owner/name` when the repository is on a GitHub-like host, used for labels.
    pub repository_slug: String,
    /// Target branch of task pull requests.
    pub base_branch: String,
    /// Service name given to the agents.
    pub service: String,
    /// Directory inside the repository.
    pub working_directory: String,
    /// Namespace of every rendered object.
    pub namespace: String,
    /// Clone URL of the docs repository.
    pub docs_repository_url: String,
    /// Branch of the docs repository.
    pub docs_branch: String,
    /// Project directory inside the docs repository.
    pub docs_project_directory: String,
    /// The Argo CD Application the deploy stage waits for.
    pub deploy: Option<Deploy>,
}

/// The deploy stage's wait: an Argo CD Application that must be Healthy and Synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// Resource name (a DNS label).
    pub application: String,
    /// API version.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Plural, for RBAC.
    pub plural: String,
    /// API group (empty for the core group), for RBAC.
    pub group: String,
    /// Success condition (Argo's resource condition syntax).
    pub success_condition: String,
    /// Failure condition.
    pub failure_condition: String,
    /// Its namespace.
    pub namespace: String,
    /// Longest wait.
    pub timeout_seconds: u64,
}

/// An HTTP probe Argo runs after deploy. Every field matches a narrow pattern, because Argo
/// substitutes them into its `http` template and its success condition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HttpProbe {
    /// `http(s)://` URL of safe characters.
    pub url: String,
    /// GET, POST, PUT, PATCH, DELETE or HEAD.
    pub method: String,
    /// Expected status code.
    pub status: String,
    /// Text the body must contain (letters, digits, spaces and `_.,:/-`), possibly empty.
    pub body: String,
}

/// Defaults for every task, with the built-in values filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// Agent model.
    pub model: String,
    /// Stage list for code tasks without their own.
    pub pipeline: Vec<StageName>,
    /// Stage list for docs tasks without their own.
    pub docs_pipeline: Vec<StageName>,
    /// Agents at once, project-wide.
    pub concurrency: u32,
    /// Longest one stage may run.
    pub stage_timeout_seconds: u64,
    /// Retries of a stage after an infrastructure error.
    pub retries: u32,
    /// Seconds a successful run is kept.
    pub ttl_after_success_seconds: u64,
    /// Seconds a failed run is kept.
    pub ttl_after_failure_seconds: u64,
    /// Times a failed acceptance goes back to remediation before the task fails.
    pub max_remediations: u32,
    /// Task Workflows open at once, at most.
    pub max_open_tasks: u32,
    /// `wait`, `merge` or `auto-merge`.
    pub merge: String,
    /// Seconds between the merge agent's checks of the pull request.
    pub merge_poll_seconds: u64,
    /// Whether every pipeline ends with the merge agent (it merges, or events are off).
    pub merge_stage: bool,
}

/// One validated task.
#[derive(Debug, Clone)]
pub struct Task {
    /// Unique id.
    pub id: TaskId,
    /// Where the id was written, for diagnostics found later (cycles).
    pub span: Span,
    /// Free text: never written into Argo-templated text except as base64.
    pub title: String,
    /// Free text, as `title`.
    pub description: Option<String>,
    /// Free text, as `title`.
    pub details: Option<String>,
    /// Free text, as `title`.
    pub test_strategy: Option<String>,
    /// Ids of existing tasks, without repeats, in the order written.
    pub dependencies: Vec<TaskId>,
    /// CodeRun or DocsRun.
    pub kind: Kind,
    /// The stages this task runs (its own pipeline or the default).
    pub pipeline: Vec<StageName>,
    /// Scheduling priority among ready tasks.
    pub priority: Priority,
    /// Status; decides whether the task is scheduled.
    pub status: TaskStatus,
    /// Steps that travel with the task to its author agent, in an order that respects their
    /// dependencies.
    pub subtasks: Vec<Subtask>,
    /// The task's own requirements, base64 of YAML; `None` uses the project's.
    pub requirements: Option<String>,
    /// HTTP probes Argo runs before the acceptance agent.
    pub probes: Vec<HttpProbe>,
    /// Commands and free text for the acceptance agent (`command: ...` or the text).
    pub criteria: Vec<String>,
}

/// A step of a task.
#[derive(Debug, Clone)]
pub struct Subtask {
    /// Full id (`3.2`).
    pub id: TaskId,
    /// Free text.
    pub title: String,
    /// Free text.
    pub description: Option<String>,
    /// Free text.
    pub details: Option<String>,
    /// Free text.
    pub test_strategy: Option<String>,
    /// Status as recorded.
    pub status: TaskStatus,
    /// Full ids of the sibling steps it waits for.
    pub dependencies: Vec<TaskId>,
}
