//! The native backlog format (`requirements.yaml`) as serde types that mirror the YAML one to one,
//! with source positions on every value a later check may point at. Nothing here is validated
//! beyond its YAML type; `validate.rs` turns these into the checked model.
//!
//! The JSON Schema printed by `pressplay schema` is generated from these types, so their doc
//! comments are what an editor shows the user.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A backlog: the project it belongs to, defaults for every task, and the tasks.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "pressplay backlog (requirements.yaml)")]
pub struct RawBacklog {
    /// The project the tasks belong to: names, repositories, namespace.
    #[serde(default)]
    pub project: RawProject,
    /// Defaults that apply to every task unless the task overrides them.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// The tasks. Ids are unique; dependencies name other tasks' ids.
    pub tasks: Vec<RawTask>,
    /// How GitHub events move tasks forward (Argo Events). On by default.
    #[serde(default)]
    pub events: RawEvents,
    /// Agent profiles by role, overriding the built-in ones field by field.
    #[serde(default)]
    pub profiles: crate::spec::profile::RawProfiles,
}

/// GitHub events: the EventSource, the Sensors and who may trigger what.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEvents {
    /// Render the EventSource, Sensors and merge gates. Default: true.
    pub enabled: Option<bool>,
    /// Secret and key holding the webhook secret GitHub signs deliveries with, or `none`
    /// (refused unless `--insecure-webhook`). Default: key `webhook-secret` of `<project>-github`,
    /// which the rendered ExternalSecret fills.
    #[schemars(with = "Option<serde_json::Value>")]
    pub webhook_secret: Option<Spanned<RawWebhookSecret>>,
    /// `author_association` values allowed to trigger work by comment or issue.
    /// Default: `[OWNER, MEMBER, COLLABORATOR]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub trusted_associations: Option<Vec<Spanned<String>>>,
    /// Logins whose events trigger nothing, besides every bot. Default: the agents' GitHub Apps.
    #[schemars(with = "Option<Vec<String>>")]
    pub ignore_authors: Option<Vec<Spanned<String>>>,
    /// Path of the backlog in the repository; a push to the base branch that changes it presses
    /// play. Default: the path given on the command line.
    #[schemars(with = "Option<String>")]
    pub backlog_path: Option<Spanned<String>>,
    /// Argo Server base URL the merge Sensor wakes waiting runs through.
    /// Default: `https://argo-server.argo.svc:2746`.
    #[schemars(with = "Option<String>")]
    pub argo_server: Option<Spanned<String>>,
    /// An existing EventBus to use. Default: render a JetStream EventBus named after the project.
    #[schemars(with = "Option<String>")]
    pub event_bus: Option<Spanned<String>>,
    /// External Secrets Operator store holding the GitHub App credentials and webhook secret.
    /// Default: ClusterSecretStore `github`.
    #[schemars(with = "Option<String>")]
    pub secret_store: Option<Spanned<String>>,
    /// Key of the credentials in that store. Default: `<project>/github`.
    #[schemars(with = "Option<String>")]
    pub remote_key: Option<Spanned<String>>,
}

/// `{name, key}` of a Secret, or the word `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawWebhookSecret {
    /// A Secret key.
    Key {
        /// Secret name.
        name: String,
        /// Key in it.
        key: String,
    },
    /// No signature check.
    None,
}

impl<'de> Deserialize<'de> for RawWebhookSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl<'de> serde::de::Visitor<'de> for SecretVisitor {
            type Value = RawWebhookSecret;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`{name, key}` of a Secret, or `none`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawWebhookSecret, E> {
                if v == "none" {
                    Ok(RawWebhookSecret::None)
                } else {
                    Err(E::custom("expected `{name, key}` or `none`"))
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawWebhookSecret, A::Error> {
                let (mut name, mut key) = (None, None);
                while let Some(field) = map.next_key::<String>()? {
                    match field.as_str() {
                        "name" => name = Some(map.next_value::<String>()?),
                        "key" => key = Some(map.next_value::<String>()?),
                        other => return Err(serde::de::Error::unknown_field(other, &["name", "key"])),
                    }
                }
                Ok(RawWebhookSecret::Key {
                    name: name.ok_or_else(|| serde::de::Error::missing_field("name"))?,
                    key: key.ok_or_else(|| serde::de::Error::missing_field("key"))?,
                })
            }
        }
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Where the work happens. Every field has a default, shown in its description.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProject {
    /// Project name: a DNS label of at most 40 characters. It prefixes every object's name.
    /// Default: `pressplay`.
    #[schemars(with = "Option<String>", regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"), length(max = 40))]
    pub name: Option<Spanned<String>>,
    /// Repository the agents work in: `owner/name` or an `https://` URL.
    /// Default: `https://github.com/example/<name>`.
    #[schemars(with = "Option<String>")]
    pub repository: Option<Spanned<String>>,
    /// Branch that task pull requests target. Default: `main`.
    #[schemars(with = "Option<String>")]
    pub base_branch: Option<Spanned<String>>,
    /// Service name given to the agents (CodeRun `service`). Default: the project name.
    #[schemars(with = "Option<String>")]
    pub service: Option<Spanned<String>>,
    /// Directory inside the repository the agents work in. Default: `.`.
    #[schemars(with = "Option<String>")]
    pub working_directory: Option<Spanned<String>>,
    /// Namespace every object is rendered into. Default: `agents`.
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    /// Repository holding the task documentation the agents read. Default: the repository.
    #[schemars(with = "Option<String>")]
    pub docs_repository: Option<Spanned<String>>,
    /// Branch of the docs repository. Default: `main`.
    #[schemars(with = "Option<String>")]
    pub docs_branch: Option<Spanned<String>>,
    /// Directory of this project inside the docs repository. Default: `.`.
    #[schemars(with = "Option<String>")]
    pub docs_project_directory: Option<Spanned<String>>,
    /// The Argo CD Application the deploy stage waits for (Healthy and Synced). Default: none,
    /// the deploy stage ends with its agent.
    pub deploy: Option<RawDeploy>,
}

/// What the deploy stage waits for after its agent: an Argo CD Application by default, or any
/// resource with its own conditions.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDeploy {
    /// Name of the Application (or of the resource).
    #[schemars(with = "String")]
    pub application: Spanned<String>,
    /// API version of the resource. Default: `argoproj.io/v1alpha1`.
    #[schemars(with = "Option<String>")]
    pub api_version: Option<Spanned<String>>,
    /// Kind of the resource. Default: `Application`.
    #[schemars(with = "Option<String>")]
    pub kind: Option<Spanned<String>>,
    /// Its plural, for RBAC. Default: the kind in lowercase followed by `s`.
    #[schemars(with = "Option<String>")]
    pub plural: Option<Spanned<String>>,
    /// Argo resource success condition. Default: Healthy, Synced and last sync Succeeded.
    #[schemars(with = "Option<String>")]
    pub success_condition: Option<Spanned<String>>,
    /// Argo resource failure condition. Default: health Degraded.
    #[schemars(with = "Option<String>")]
    pub failure_condition: Option<Spanned<String>>,
    /// Namespace of the Application. Default: `argocd`.
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    /// Longest wait for Healthy and Synced, such as `30m`. Default: `30m`.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
}

/// Defaults for every task.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDefaults {
    /// Model the agents use. Default: `claude-sonnet-4-5`.
    #[schemars(with = "Option<String>")]
    pub model: Option<Spanned<String>>,
    /// Stages each code task goes through, in order. Known stages: `author`, `lint`, `tests`,
    /// `deploy`, `acceptance`, `merge`. Default: the first five in that order.
    #[schemars(with = "Option<Vec<String>>")]
    pub pipeline: Option<Spanned<Vec<Spanned<String>>>>,
    /// Stages each docs task goes through. Default: `pipeline` without `deploy`.
    #[schemars(with = "Option<Vec<String>>")]
    pub docs_pipeline: Option<Spanned<Vec<Spanned<String>>>>,
    /// How many agents may run at once across the whole project (a semaphore). Default: 4.
    #[schemars(with = "Option<u32>", range(min = 1, max = 10000))]
    pub concurrency: Option<Spanned<u32>>,
    /// Longest one stage may run, as a duration such as `90m` or `3h`. Default: `3h`.
    #[schemars(with = "Option<String>")]
    pub stage_timeout: Option<Spanned<String>>,
    /// How many times a stage is retried after an infrastructure error. Default: 2.
    #[schemars(with = "Option<u32>", range(max = 20))]
    pub retries: Option<Spanned<u32>>,
    /// How long a finished successful run is kept, as a duration. Default: `1d`.
    #[schemars(with = "Option<String>")]
    pub ttl_after_success: Option<Spanned<String>>,
    /// How long a failed run is kept, as a duration. Default: `3d`.
    #[schemars(with = "Option<String>")]
    pub ttl_after_failure: Option<Spanned<String>>,
    /// How many times a failed acceptance goes back to a remediation agent and through the
    /// gates again before the task fails. Default: 2.
    #[schemars(with = "Option<u32>", range(max = 10))]
    pub max_remediations: Option<Spanned<u32>>,
    /// How many task Workflows may be open at once (working, or waiting for their merge): the
    /// dispatcher starts no more. Default: 100.
    #[schemars(with = "Option<u32>", range(min = 1, max = 10000))]
    pub max_open_tasks: Option<Spanned<u32>>,
    /// Who merges a task's pull request: `wait` (a person), `merge` (the merge agent merges once reviews and checks allow) or
    /// `auto-merge` (the merge agent enables GitHub's auto-merge). Default: `wait`.
    #[schemars(with = "Option<String>")]
    pub merge: Option<Spanned<String>>,
    /// How often the merge agent checks the pull request's reviews, checks and merge state,
    /// as a duration. Default: `5m`.
    #[schemars(with = "Option<String>")]
    pub merge_poll_interval: Option<Spanned<String>>,
}

/// One task of the backlog.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTask {
    /// Unique id: an integer, or letters, digits and `._-:/+#@`.
    #[schemars(with = "RawId")]
    pub id: Spanned<RawId>,
    /// One line saying what the task does.
    #[schemars(with = "String")]
    pub title: Spanned<String>,
    /// What the task is about, in a few sentences. Passed to the agents as data.
    pub description: Option<String>,
    /// Implementation notes. Passed to the agents as data.
    pub details: Option<String>,
    /// How to check the work. Passed to the agents as data.
    pub test_strategy: Option<String>,
    /// Ids of the tasks that must be merged before this one starts.
    #[serde(default)]
    #[schemars(with = "Vec<RawId>")]
    pub dependencies: Vec<Spanned<RawId>>,
    /// `code` (agents create CodeRuns) or `docs` (DocsRuns). Default: `code`.
    #[serde(default)]
    pub kind: Kind,
    /// Stages for this task only, replacing `defaults.pipeline`.
    #[schemars(with = "Option<Vec<String>>")]
    pub pipeline: Option<Spanned<Vec<Spanned<String>>>>,
    /// `high`, `medium` or `low`: among tasks that are ready together, higher goes first.
    #[serde(default)]
    pub priority: Priority,
    /// Task Master status. `done`, `completed` and `cancelled` tasks are not scheduled but satisfy
    /// their dependents; `deferred` and `blocked` tasks are not scheduled and hold their dependents
    /// back; `pending`, `in-progress`, `review` (or none) are scheduled.
    #[schemars(with = "Option<String>")]
    pub status: Option<Spanned<String>>,
    /// Steps of the task, in order. They travel with the task to its author agent (or become
    /// tasks of their own with `--subtasks-as-tasks`).
    #[serde(default)]
    pub subtasks: Vec<RawSubtask>,
    /// Secrets and environment the task's agents need, in the agent platform's shape.
    /// Replaces the project-level `--requirements` file for this task.
    pub requirements: Option<RawRequirements>,
    /// Acceptance criteria: HTTP probes (`{http: {url, method, status, body}}`) run by Argo
    /// after deploy, commands (`{command: ...}`) and free text for the acceptance agent.
    #[serde(default)]
    pub acceptance: Vec<RawCriterion>,
}

/// One acceptance criterion.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum RawCriterion {
    /// Free text for the acceptance agent.
    Text(String),
    /// An HTTP probe Argo runs itself.
    Http {
        /// The probe.
        http: Box<RawHttpProbe>,
    },
    /// A command for the acceptance agent to run.
    Command {
        /// The command line.
        command: String,
    },
}

/// An HTTP probe.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpProbe {
    /// `http://` or `https://` URL.
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// Method. Default: `GET`.
    #[schemars(with = "Option<String>")]
    pub method: Option<Spanned<String>>,
    /// Expected status. Default: 200.
    #[schemars(with = "Option<u16>")]
    pub status: Option<Spanned<u16>>,
    /// Text the response body must contain.
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawCriterion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CriterionVisitor;
        impl<'de> serde::de::Visitor<'de> for CriterionVisitor {
            type Value = RawCriterion;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a criterion: text, `{http: {...}}` or `{command: ...}`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawCriterion, E> {
                Ok(RawCriterion::Text(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawCriterion, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(serde::de::Error::custom(
                        "an empty criterion; write `{http: {...}}` or `{command: ...}`",
                    ));
                };
                let criterion = match key.as_str() {
                    "http" => RawCriterion::Http { http: map.next_value()? },
                    "command" => RawCriterion::Command { command: map.next_value()? },
                    other => return Err(serde::de::Error::unknown_field(other, &["http", "command"])),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(serde::de::Error::custom(format!(
                        "a criterion has one key; `{extra}` is one too many"
                    )));
                }
                Ok(criterion)
            }
        }
        deserializer.deserialize_any(CriterionVisitor)
    }
}

/// A step of a task.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSubtask {
    /// Id: local (`2`) or with its parent (`"3.2"`).
    #[schemars(with = "RawId")]
    pub id: Spanned<RawId>,
    /// One line.
    #[schemars(with = "String")]
    pub title: Spanned<String>,
    /// Free text for the agents.
    pub description: Option<String>,
    /// Free text for the agents.
    pub details: Option<String>,
    /// Free text for the agents.
    pub test_strategy: Option<String>,
    /// As the task's `status`.
    #[schemars(with = "Option<String>")]
    pub status: Option<Spanned<String>>,
    /// Sibling subtasks (`2` or `"3.2"`), or tasks, this step waits for.
    #[serde(default)]
    #[schemars(with = "Vec<RawId>")]
    pub dependencies: Vec<Spanned<RawId>>,
    /// Steps of this step; they follow it, in order.
    #[serde(default)]
    pub subtasks: Vec<RawSubtask>,
}

/// Secrets and environment for the agents, as the agent platform reads them
/// (`spec.taskRequirements` of the CodeRun, base64-encoded YAML).
#[derive(Debug, Clone, Deserialize, serde::Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRequirements {
    /// Kubernetes Secrets: every key as an environment variable, or only the `keys` listed,
    /// each as `{SECRET_KEY: ENV_NAME}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<RawSecret>,
    /// Plain environment variables.
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub environment: indexmap::IndexMap<String, String>,
}

/// One Secret of a requirements file.
#[derive(Debug, Clone, Deserialize, serde::Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// Secret name.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Keys to map, each `{SECRET_KEY: ENV_NAME}`; all keys when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<indexmap::IndexMap<String, String>>>,
}

/// A task id as written: an integer or a string.
#[derive(Debug, Clone, PartialEq)]
pub enum RawId {
    /// `id: 7`
    Integer(i64),
    /// `id: build-api`, or `id: "7"`
    Text(String),
    /// `id: 3.2`: a YAML float, which has no faithful text form.
    Float(f64),
    /// `id: yes`: YAML reads `y`, `yes`, `on`, `true` (and their opposites) as booleans.
    Bool(bool),
}

impl JsonSchema for RawId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TaskId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A task id: an integer, or letters, digits and `._-:/+#@` starting with a letter or digit",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:/+#@-]*$", "maxLength": 128 }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for RawId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl serde::de::Visitor<'_> for IdVisitor {
            type Value = RawId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a task id (an integer or a string)")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawId, E> {
                Ok(RawId::Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawId, E> {
                Ok(i64::try_from(v).map_or(RawId::Text(v.to_string()), RawId::Integer))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawId, E> {
                Ok(RawId::Float(v))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawId, E> {
                Ok(RawId::Bool(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawId, E> {
                Ok(RawId::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// Which custom resource the task's agents create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A code change: each stage creates a CodeRun.
    #[default]
    Code,
    /// A documentation change: each stage creates a DocsRun.
    Docs,
}

/// Scheduling priority among tasks that are ready at the same time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Goes first.
    High,
    /// The default.
    #[default]
    Medium,
    /// Goes last.
    Low,
}
