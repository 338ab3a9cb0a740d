//! `RawBacklog` → `Backlog`: unique ids, known dependencies, known stages, and narrow patterns for
//! every project value that is written into manifests. Every problem is collected; a bad task is
//! dropped (a duplicate) or loses the bad edge (an unknown dependency) so that later checks, such
//! as cycle detection, still run on the rest.

use std::collections::{BTreeMap, BTreeSet};

use serde_saphyr::{Location, Spanned};

use crate::diagnostic::{Diagnostic, SourceFile, Span};
use crate::spec::backlog::{Access, Backlog, Defaults, Deploy, Events, HttpProbe, Project, Subtask, Task};
use crate::spec::raw::{
    RawBacklog, RawCriterion, RawDefaults, RawEvents, RawId, RawProject, RawSubtask, RawTask, RawWebhookSecret,
};
use crate::spec::requirements;
use crate::spec::stage::StageName;
use crate::spec::status::TaskStatus;
use crate::spec::suggest::closest;
use crate::spec::task_id::{ID_HINT, TaskId};

/// Choices that change how a backlog is read.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Drop dependencies on tasks that do not exist, with a warning, instead of failing.
    pub lenient: bool,
    /// Make every subtask a task of its own (a DAG node).
    pub subtasks_as_tasks: bool,
    /// Project-level requirements, already checked and encoded.
    pub requirements: Option<String>,
    /// Allow `events.webhookSecret: none`.
    pub insecure_webhook: bool,
    /// The backlog's path as given, the default of `events.backlogPath`.
    pub backlog_path: String,
    /// `--project`: replaces `project.name`.
    pub project_name: Option<String>,
    /// `--repository`: replaces `project.repository`.
    pub repository: Option<String>,
}

/// Converts a parsed backlog into the checked model, with every problem found.
pub fn validate(raw: RawBacklog, source: &SourceFile, options: &ValidateOptions) -> (Backlog, Vec<Diagnostic>) {
    let mut checker = Checker { source, options, problems: Vec::new() };
    let project = checker.project(&raw.project);
    let access = checker.access(&raw.events, &project);
    let events = checker.events(&raw.events, &project);
    let defaults = checker.defaults(&raw.defaults);
    let tasks = checker.tasks(raw.tasks, &defaults);
    let backlog = Backlog {
        project,
        defaults,
        tasks,
        requirements: options.requirements.clone(),
        events,
        access,
        profiles: Default::default(),
    };
    (backlog, checker.problems)
}

/// Converts a serde-saphyr location into a span of this file.
pub fn span_of(source: &SourceFile, location: &Location) -> Span {
    let span = location.span();
    match span.byte_offset() {
        Some(offset) => source.span_at(
            usize::try_from(offset).unwrap_or(usize::MAX),
            usize::try_from(span.byte_len().unwrap_or(0)).unwrap_or(0),
        ),
        None => Span {
            offset: 0,
            len: 0,
            line: usize::try_from(location.line()).unwrap_or(1).max(1),
            column: usize::try_from(location.column()).unwrap_or(1).max(1),
        },
    }
}

struct Checker<'a> {
    source: &'a SourceFile,
    options: &'a ValidateOptions,
    problems: Vec<Diagnostic>,
}

/// A text rule for a project field: what it may contain, said for the user.
struct Pattern {
    describe: &'static str,
    accepts: fn(&str) -> bool,
}

const DNS_LABEL_40: Pattern = Pattern {
    describe: "a DNS label: lowercase letters, digits and `-`, starting with a letter, at most 40 characters",
    accepts: |s| is_dns_label(s) && s.len() <= 40 && s.starts_with(|c: char| c.is_ascii_lowercase()),
};
const DNS_LABEL_63: Pattern = Pattern {
    describe: "a DNS label: lowercase letters, digits and `-`, at most 63 characters",
    accepts: |s| is_dns_label(s) && s.len() <= 63,
};
const BRANCH: Pattern = Pattern {
    describe: "a branch name: letters, digits and `._/-`, not starting with `-`",
    accepts: |s| {
        !s.is_empty()
            && s.len() <= 200
            && !s.starts_with('-')
            && !s.contains("..")
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
    },
};
const PATH: Pattern = Pattern {
    describe: "a relative path: letters, digits and `._/-`",
    accepts: |s| {
        !s.is_empty()
            && s.len() <= 200
            && !s.starts_with('/')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
    },
};
const API_VERSION: Pattern = Pattern {
    describe: "an API version such as `apps/v1` or `argoproj.io/v1alpha1`",
    accepts: |s| {
        !s.is_empty() && s.len() <= 100 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-'))
    },
};
const KIND: Pattern = Pattern {
    describe: "a resource kind such as `Application` or `Deployment`",
    accepts: |s| {
        !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_uppercase())
            && s.chars().all(|c| c.is_ascii_alphanumeric())
    },
};
const CONDITION: Pattern = Pattern {
    describe: "an Argo resource condition such as `status.readyReplicas > 0` (letters, digits, spaces and `._,=!<>()-`)",
    accepts: |s| {
        !s.is_empty() && s.len() <= 500 && s.chars().all(|c| c.is_ascii_alphanumeric() || " ._,=!<>()-".contains(c))
    },
};
const MODEL: Pattern = Pattern {
    describe: "a model name: letters, digits and `._:/@-`",
    accepts: |s| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '@' | '-'))
    },
};

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Checker<'_> {
    fn span(&self, location: &Location) -> Span {
        span_of(self.source, location)
    }

    fn error(&mut self, message: String, location: &Location, hint: Option<String>) {
        let mut diagnostic = Diagnostic::error(message, Some(self.span(location)));
        diagnostic.hint = hint;
        self.problems.push(diagnostic);
    }

    fn text(&mut self, field: &str, value: Option<&Spanned<String>>, pattern: &Pattern, default: &str) -> String {
        let Some(value) = value else {
            return default.to_owned();
        };
        if (pattern.accepts)(&value.value) {
            return value.value.clone();
        }
        self.error(
            format!("`{field}` is `{}`, which is not {}", value.value.escape_debug(), pattern.describe),
            &value.referenced,
            Some(format!("this value is written into Kubernetes manifests, so it must be {}", pattern.describe)),
        );
        default.to_owned()
    }

    fn project(&mut self, raw: &RawProject) -> Project {
        let mut name = self.text("project.name", raw.name.as_ref(), &DNS_LABEL_40, "pressplay");
        if let Some(flag) = &self.options.project_name {
            if (DNS_LABEL_40.accepts)(flag) {
                name = flag.clone();
            } else {
                self.problems.push(Diagnostic::error(
                    format!("`--project {}` is not {}", flag.escape_debug(), DNS_LABEL_40.describe),
                    None,
                ));
            }
        }
        let flag_repository = self.options.repository.as_ref().and_then(|flag| {
            let parsed = parse_repository(flag);
            if parsed.is_none() {
                self.problems.push(
                    Diagnostic::error(format!("`--repository {}` is not a repository", flag.escape_debug()), None)
                        .with_hint("write `owner/name` for GitHub, or an `https://host/owner/name` URL"),
                );
            }
            parsed
        });
        let example = (format!("https://github.com/example/{name}"), format!("example/{name}"));
        let (repository_url, repository_slug) = match flag_repository {
            Some(parsed) => parsed,
            None => self.repository("project.repository", raw.repository.as_ref()).unwrap_or(example),
        };
        let docs_repository_url = self
            .repository("project.docsRepository", raw.docs_repository.as_ref())
            .map_or_else(|| repository_url.clone(), |(url, _)| url);
        Project {
            service: self.text("project.service", raw.service.as_ref(), &DNS_LABEL_63, &name),
            base_branch: self.text("project.baseBranch", raw.base_branch.as_ref(), &BRANCH, "main"),
            working_directory: self.text("project.workingDirectory", raw.working_directory.as_ref(), &PATH, "."),
            namespace: self.text("project.namespace", raw.namespace.as_ref(), &DNS_LABEL_63, "agents"),
            docs_branch: self.text("project.docsBranch", raw.docs_branch.as_ref(), &BRANCH, "main"),
            docs_project_directory: self.text(
                "project.docsProjectDirectory",
                raw.docs_project_directory.as_ref(),
                &PATH,
                ".",
            ),
            deploy: raw.deploy.as_ref().map(|deploy| {
                let api_version =
                    self.text("project.deploy.apiVersion", deploy.api_version.as_ref(), &API_VERSION, "argoproj.io/v1alpha1");
                let kind = self.text("project.deploy.kind", deploy.kind.as_ref(), &KIND, "Application");
                let plural = self.text("project.deploy.plural", deploy.plural.as_ref(), &DNS_LABEL_63, &plural_of(&kind));
                if kind != "Application" && deploy.success_condition.is_none() {
                    self.error(
                        format!("`project.deploy` waits for a `{kind}` but has no `successCondition`"),
                        &deploy.application.referenced,
                        Some("the default condition is Argo CD's; say when this resource is ready, such as `status.readyReplicas > 0`".into()),
                    );
                }
                Deploy {
                    application: self.text("project.deploy.application", Some(&deploy.application), &DNS_LABEL_63, "app"),
                    group: api_version.rsplit_once('/').map_or(String::new(), |(group, _)| group.to_owned()),
                    api_version,
                    kind,
                    plural,
                    success_condition: self.text(
                        "project.deploy.successCondition",
                        deploy.success_condition.as_ref(),
                        &CONDITION,
                        // Healthy, Synced, the last sync succeeded, and it was this deployment:
                        // the deploy agent labels what it syncs with `pressplay-deploy:
                        // <PRESSPLAY_DEPLOY_TOKEN>` (task, remediation attempt and run), so an
                        // earlier deployment of the same task never satisfies the wait.
                        "metadata.labels.pressplay-deploy == t{{inputs.parameters.task-number}}-a{{inputs.parameters.attempt}}-{{=sprig.trunc(8, workflow.uid)}},status.health.status == Healthy,status.sync.status == Synced,status.operationState.phase == Succeeded",
                    ),
                    failure_condition: self.text(
                        "project.deploy.failureCondition",
                        deploy.failure_condition.as_ref(),
                        &CONDITION,
                        "status.health.status == Degraded",
                    ),
                    namespace: self.text("project.deploy.namespace", deploy.namespace.as_ref(), &DNS_LABEL_63, "argocd"),
                    timeout_seconds: self.duration("project.deploy.timeout", deploy.timeout.as_ref(), 30 * 60),
                }
            }),
            name,
            repository_url,
            repository_slug,
            docs_repository_url,
        }
    }

    /// A repository field: `None` when absent or invalid (reported).
    fn repository(&mut self, field: &str, value: Option<&Spanned<String>>) -> Option<(String, String)> {
        let value = value?;
        let parsed = parse_repository(&value.value);
        if parsed.is_none() {
            self.error(
                format!("`{field}` is `{}`, which is not a repository", value.value.escape_debug()),
                &value.referenced,
                Some("write `owner/name` for GitHub, or an `https://host/owner/name` URL".into()),
            );
        }
        parsed
    }

    /// One word of a fixed list, or the default (with an error) when it is another.
    fn one_of(
        &mut self,
        value: Option<&Spanned<String>>,
        allowed: &[&str],
        default: &str,
        message: String,
        hint: &str,
    ) -> String {
        match value {
            None => default.to_owned(),
            Some(value) if allowed.contains(&value.value.as_str()) => value.value.clone(),
            Some(value) => {
                self.error(message, &value.referenced, Some(hint.to_owned()));
                default.to_owned()
            }
        }
    }

    fn defaults(&mut self, raw: &RawDefaults) -> Defaults {
        let pipeline = match &raw.pipeline {
            Some(pipeline) => self.pipeline("defaults.pipeline", pipeline),
            None => None,
        };
        let pipeline = pipeline.unwrap_or_else(|| StageName::DEFAULT.to_vec());
        let docs_pipeline = match &raw.docs_pipeline {
            Some(docs) => self.pipeline("defaults.docsPipeline", docs),
            None => None,
        };
        // Documentation has nothing to deploy: by default docs tasks run the pipeline without it.
        let docs_pipeline =
            docs_pipeline.unwrap_or_else(|| pipeline.iter().copied().filter(|s| *s != StageName::Deploy).collect());
        // The merge agent is every pipeline's last stage when it merges. It never waits for
        // people: every task's merge gate does, without a pod (with events off, the reconcile
        // CronWorkflow reads the merge from GitHub).
        let merges = raw.merge.as_ref().is_some_and(|m| m.value == "merge" || m.value == "auto-merge");
        let with_merge = |mut stages: Vec<StageName>| {
            if merges && !stages.contains(&StageName::Merge) {
                stages.push(StageName::Merge);
            }
            stages
        };
        let pipeline = with_merge(pipeline);
        let docs_pipeline = with_merge(docs_pipeline);
        Defaults {
            model: self.text("defaults.model", raw.model.as_ref(), &MODEL, "claude-sonnet-4-5"),
            docs_pipeline,
            pipeline,
            concurrency: self.bounded("defaults.concurrency", raw.concurrency.as_ref(), 1..=10_000, 4),
            stage_timeout_seconds: self.duration("defaults.stageTimeout", raw.stage_timeout.as_ref(), 3 * 3600),
            retries: self.bounded("defaults.retries", raw.retries.as_ref(), 0..=20, 2),
            ttl_after_success_seconds: self.duration(
                "defaults.ttlAfterSuccess",
                raw.ttl_after_success.as_ref(),
                86_400,
            ),
            ttl_after_failure_seconds: self.duration(
                "defaults.ttlAfterFailure",
                raw.ttl_after_failure.as_ref(),
                3 * 86_400,
            ),
            max_remediations: self.bounded("defaults.maxRemediations", raw.max_remediations.as_ref(), 0..=10, 2),
            max_open_tasks: self.bounded("defaults.maxOpenTasks", raw.max_open_tasks.as_ref(), 1..=10_000, 100),
            merge_poll_seconds: self.duration("defaults.mergePollInterval", raw.merge_poll_interval.as_ref(), 300),
            merge_stage: merges,
            merge: self.one_of(
                raw.merge.as_ref(),
                &["wait", "merge", "auto-merge"],
                "wait",
                format!("`defaults.merge` is `{}`", raw.merge.as_ref().map_or("", |m| m.value.as_str()).escape_debug()),
                "write `wait` (a person merges), `merge` or `auto-merge` (the merge agent does)",
            ),
        }
    }

    /// A number within `range`, or the default (with an error) when it is outside.
    fn bounded(
        &mut self,
        field: &str,
        value: Option<&Spanned<u32>>,
        range: std::ops::RangeInclusive<u32>,
        default: u32,
    ) -> u32 {
        match value {
            Some(value) if !range.contains(&value.value) => {
                self.error(
                    format!("`{field}` is {}; it must be between {} and {}", value.value, range.start(), range.end()),
                    &value.referenced,
                    None,
                );
                default
            }
            Some(value) => value.value,
            None => default,
        }
    }

    fn duration(&mut self, field: &str, value: Option<&Spanned<String>>, default: u64) -> u64 {
        let Some(value) = value else { return default };
        match parse_duration(&value.value) {
            Some(seconds) if seconds > 0 => seconds,
            _ => {
                self.error(
                    format!("`{field}` is `{}`, which is not a duration", value.value.escape_debug()),
                    &value.referenced,
                    Some("write a number followed by `s`, `m`, `h` or `d`, such as `90m` or `1h30m`".into()),
                );
                default
            }
        }
    }

    fn pipeline(&mut self, field: &str, raw: &Spanned<Vec<Spanned<String>>>) -> Option<Vec<StageName>> {
        if raw.value.is_empty() {
            self.error(
                format!("`{field}` is empty"),
                &raw.referenced,
                Some("list at least one stage, such as `[author]`".into()),
            );
            return None;
        }
        let mut stages = Vec::new();
        let mut ok = true;
        for item in &raw.value {
            match StageName::parse(&item.value) {
                Some(stage) if stages.contains(&stage) => {
                    self.error(format!("stage `{stage}` appears twice in `{field}`"), &item.referenced, None);
                    ok = false;
                }
                Some(stage) => stages.push(stage),
                None => {
                    let known: Vec<&str> = StageName::ALL.iter().map(|s| s.as_str()).collect();
                    let hint = match closest(&item.value, known.iter().copied()) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("known stages: {}", known.join(", ")),
                    };
                    self.error(
                        format!("unknown stage `{}` in `{field}`", item.value.escape_debug()),
                        &item.referenced,
                        Some(hint),
                    );
                    ok = false;
                }
            }
        }
        if let Some(position) = stages.iter().position(|s| *s == StageName::Merge)
            && position + 1 != stages.len()
        {
            self.error(
                format!("`merge` is not the last stage of `{field}`"),
                &raw.referenced,
                Some("the merge agent merges the pull request; put it last, after acceptance".into()),
            );
            return None;
        }
        ok.then_some(stages)
    }

    fn task_id(&mut self, raw: &Spanned<RawId>) -> Option<TaskId> {
        let parsed = match &raw.value {
            RawId::Integer(value) => TaskId::from_integer(*value),
            RawId::Text(text) => TaskId::parse(text),
            RawId::Float(value) => Err(format!("task id `{value}` is read as a number that is not a whole number")),
            RawId::Bool(value) => Err(format!(
                "task id is read as the boolean `{value}` (YAML reads `y`, `yes`, `on` as true and `n`, `no`, `off` as false)"
            )),
        };
        match parsed {
            Ok(id) => Some(id),
            Err(message) => {
                let hint = match &raw.value {
                    RawId::Float(_) | RawId::Bool(_) => {
                        "quote it to make it a string, such as `\"3.2\"` or `\"yes\"`".to_owned()
                    }
                    _ => ID_HINT.to_owned(),
                };
                self.error(message, &raw.referenced, Some(hint));
                None
            }
        }
    }

    fn events(&mut self, raw: &RawEvents, project: &Project) -> Option<Events> {
        if raw.enabled == Some(false) {
            return None;
        }
        let default_secret = (format!("{}-github", project.name), "webhook-secret".to_owned());
        let webhook_secret = match &raw.webhook_secret {
            None => Some(default_secret),
            Some(Spanned { value: RawWebhookSecret::None, referenced, .. }) => {
                if !self.options.insecure_webhook {
                    self.error(
                        "`events.webhookSecret` is `none`: anyone who can reach the webhook could start agents".into(),
                        referenced,
                        Some("set `{name, key}` of the Secret holding the webhook secret, or pass `--insecure-webhook` for a test cluster".into()),
                    );
                }
                None
            }
            Some(Spanned { value: RawWebhookSecret::Key { name, key }, referenced, .. }) => {
                let name_ok = is_dns_label(name) || (name.len() <= 253 && name.split('.').all(is_dns_label));
                let key_ok = !key.is_empty()
                    && key.len() <= 253
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !name_ok || !key_ok {
                    self.error(
                        "`events.webhookSecret` names an invalid Secret or key".into(),
                        referenced,
                        Some("a Secret name is lowercase letters, digits, `-` and `.`; a key is letters, digits, `-`, `_` and `.`".into()),
                    );
                }
                Some((name.clone(), key.clone()))
            }
        };
        let words = |checker: &mut Self,
                     field: &str,
                     values: &Option<Vec<Spanned<String>>>,
                     ok: fn(&str) -> bool,
                     describe: &str|
         -> Option<Vec<String>> {
            let values = values.as_ref()?;
            let mut out = Vec::new();
            for value in values {
                if ok(&value.value) {
                    out.push(value.value.clone());
                } else {
                    checker.error(
                        format!("`{}` in `{field}` is not {describe}", value.value.escape_debug()),
                        &value.referenced,
                        None,
                    );
                }
            }
            Some(out)
        };
        const ASSOCIATIONS: [&str; 8] = [
            "OWNER",
            "MEMBER",
            "COLLABORATOR",
            "CONTRIBUTOR",
            "FIRST_TIMER",
            "FIRST_TIME_CONTRIBUTOR",
            "MANNEQUIN",
            "NONE",
        ];
        let trusted = words(
            self,
            "events.trustedAssociations",
            &raw.trusted_associations,
            |s| ASSOCIATIONS.contains(&s),
            "one of OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIMER, FIRST_TIME_CONTRIBUTOR, MANNEQUIN, NONE",
        )
        .unwrap_or_else(|| vec!["OWNER".into(), "MEMBER".into(), "COLLABORATOR".into()]);
        let ignore = words(self, "events.ignoreAuthors", &raw.ignore_authors, is_login, "a GitHub login")
            .unwrap_or_else(agent_logins);
        let backlog_path = match &raw.backlog_path {
            Some(value) => self.text("events.backlogPath", Some(value), &PATH, "requirements.yaml"),
            None if (PATH.accepts)(&self.options.backlog_path) && !self.options.backlog_path.contains("..") => {
                self.options.backlog_path.trim_start_matches("./").to_owned()
            }
            None => "requirements.yaml".to_owned(),
        };
        let event_bus = raw.event_bus.as_ref().map(|v| self.text("events.eventBus", Some(v), &DNS_LABEL_63, "default"));
        Some(Events { webhook_secret, trusted_associations: trusted, ignore_authors: ignore, backlog_path, event_bus })
    }

    /// `events.argoServer`, `events.secretStore` and `events.remoteKey`: read with events off
    /// too, since the reconcile that records merges needs them either way.
    fn access(&mut self, raw: &RawEvents, project: &Project) -> Access {
        let argo_server = match &raw.argo_server {
            Some(value) if is_https_base(&value.value) => value.value.trim_end_matches('/').to_owned(),
            Some(value) => {
                self.error(
                    format!("`events.argoServer` is `{}`, which is not an https URL", value.value.escape_debug()),
                    &value.referenced,
                    Some("write a base URL such as `https://argo-server.argo.svc:2746`".into()),
                );
                String::new()
            }
            None => "https://argo-server.argo.svc:2746".to_owned(),
        };
        let secret_store = self.text("events.secretStore", raw.secret_store.as_ref(), &DNS_LABEL_63, "github");
        let remote_key =
            self.text("events.remoteKey", raw.remote_key.as_ref(), &PATH, &format!("{}/github", project.name));
        Access { argo_server, secret_store, remote_key }
    }

    /// Splits acceptance criteria into HTTP probes (checked: they reach Argo's templating) and
    /// text for the acceptance agent (which travels in the brief, as base64).
    fn acceptance(&mut self, task: &TaskId, raw: &[RawCriterion]) -> (Vec<HttpProbe>, Vec<String>) {
        let mut probes = Vec::new();
        let mut criteria = Vec::new();
        for criterion in raw {
            match criterion {
                RawCriterion::Text(text) => criteria.push(text.clone()),
                RawCriterion::Command { command } => criteria.push(format!("command: {command}")),
                RawCriterion::Http { http } => {
                    let url_ok = (http.url.value.starts_with("https://") || http.url.value.starts_with("http://"))
                        && http.url.value.len() <= 500
                        && http
                            .url
                            .value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@!&()*+,;=%".contains(c));
                    if !url_ok {
                        self.error(
                            format!(
                                "acceptance probe of task `{task}`: `{}` is not a URL pressplay can probe",
                                http.url.value.escape_debug()
                            ),
                            &http.url.referenced,
                            Some("write an http(s) URL without quotes, braces, spaces or `$`".into()),
                        );
                    }
                    let method = self.one_of(
                        http.method.as_ref(),
                        &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
                        "GET",
                        format!(
                            "`{}` is not an HTTP method",
                            http.method.as_ref().map_or("", |m| m.value.as_str()).escape_debug()
                        ),
                        "use GET, POST, PUT, PATCH, DELETE or HEAD",
                    );
                    let status = match &http.status {
                        None => 200,
                        Some(s) if (100..=599).contains(&s.value) => s.value,
                        Some(s) => {
                            self.error(format!("`{}` is not an HTTP status", s.value), &s.referenced, None);
                            200
                        }
                    };
                    let body = match &http.body {
                        None => String::new(),
                        Some(b)
                            if b.value.len() <= 200
                                && b.value.chars().all(|c| c.is_ascii_alphanumeric() || " _.,:/-".contains(c)) =>
                        {
                            b.value.clone()
                        }
                        Some(b) => {
                            self.error(
                                format!("acceptance probe of task `{task}`: body match `{}` has characters pressplay cannot check safely", b.value.escape_debug()),
                                &b.referenced,
                                Some("use letters, digits, spaces and `_.,:/-` (the match is substituted into Argo's condition)".into()),
                            );
                            String::new()
                        }
                    };
                    if method == "HEAD" && !body.is_empty() {
                        self.error(
                            format!(
                                "acceptance probe of task `{task}` checks the body of a HEAD request, which has none"
                            ),
                            &http.url.referenced,
                            Some("use GET, or drop `body`".into()),
                        );
                    }
                    if url_ok {
                        probes.push(HttpProbe {
                            url: http.url.value.clone(),
                            method,
                            status: status.to_string(),
                            body,
                        });
                    }
                }
            }
        }
        (probes, criteria)
    }

    fn status(&mut self, raw: Option<&Spanned<String>>, owner: &TaskId) -> TaskStatus {
        let Some(raw) = raw else { return TaskStatus::Pending };
        TaskStatus::parse(&raw.value).unwrap_or_else(|| {
            let span = self.span(&raw.referenced);
            self.problems.push(
                Diagnostic::warning(
                    format!("task `{owner}` has unknown status `{}`; it counts as pending", raw.value.escape_debug()),
                    Some(span),
                )
                .with_hint(
                    "known statuses: pending, in-progress, review, done, completed, cancelled, deferred, blocked",
                ),
            );
            TaskStatus::Pending
        })
    }

    /// An unknown dependency: an error, or with `--lenient` a warning and the edge is dropped.
    fn dangling(&mut self, message: String, location: &Location, hint: String) {
        let span = Some(self.span(location));
        if self.options.lenient {
            self.problems.push(Diagnostic::warning(format!("{message}; dropped (--lenient)"), span));
        } else {
            self.problems
                .push(Diagnostic::error(message, span).with_hint(format!("{hint} (or pass `--lenient` to drop it)")));
        }
    }

    fn tasks(&mut self, raw_tasks: Vec<RawTask>, defaults: &Defaults) -> Vec<Task> {
        // Pass 1: ids. The first task with an id keeps it; later ones are reported and dropped.
        let mut first_seen: BTreeMap<TaskId, Span> = BTreeMap::new();
        let mut kept: Vec<(TaskId, RawTask)> = Vec::new();
        for raw in raw_tasks {
            let Some(id) = self.task_id(&raw.id) else { continue };
            let span = self.span(&raw.id.referenced);
            if let Some(first) = first_seen.get(&id) {
                self.problems.push(Diagnostic::error(format!("duplicate task id `{id}`"), Some(span)).with_hint(
                    format!("the first task with this id is on line {}; give each task its own id", first.line),
                ));
                continue;
            }
            first_seen.insert(id.clone(), span);
            kept.push((id, raw));
        }

        // Pass 1b: every subtask's full id, so that any dependency can name any of them.
        let mut subtasks_of: Vec<Vec<FlatSubtask>> = Vec::with_capacity(kept.len());
        let mut owner_of: BTreeMap<TaskId, TaskId> = BTreeMap::new();
        for (id, raw) in &kept {
            let mut list = Vec::new();
            self.flatten(id, id, &raw.subtasks, 0, &mut list);
            let mut seen = BTreeSet::new();
            list.retain(|sub: &FlatSubtask| {
                if seen.insert(sub.id.clone()) {
                    true
                } else {
                    self.problems.push(Diagnostic::error(
                        format!("task `{id}` has two subtasks with id `{}`", sub.id),
                        Some(sub.span),
                    ));
                    false
                }
            });
            for sub in &list {
                if first_seen.contains_key(&sub.id) {
                    self.problems.push(
                        Diagnostic::error(format!("subtask `{}` has the same id as a task", sub.id), Some(sub.span))
                            .with_hint("give the subtask a local id such as `1`, which becomes `<task>.1`"),
                    );
                }
                owner_of.insert(sub.id.clone(), id.clone());
            }
            subtasks_of.push(list);
        }

        // Pass 2: everything else, now that every id is known.
        let known: Vec<&str> = first_seen.keys().map(TaskId::as_str).collect();
        let mut tasks = Vec::with_capacity(kept.len());
        for ((id, raw), subs) in kept.iter().zip(&subtasks_of) {
            let mut dependencies = Vec::new();
            let mut seen = BTreeSet::new();
            for dep in &raw.dependencies {
                let Some(dep_id) = self.task_id(dep) else { continue };
                let target = if first_seen.contains_key(&dep_id) {
                    Some(dep_id.clone())
                } else if let Some(owner) = owner_of.get(&dep_id) {
                    // A subtask of another task: as tasks, the subtask itself; else its task.
                    Some(if self.options.subtasks_as_tasks { dep_id.clone() } else { owner.clone() })
                } else {
                    None
                };
                match target {
                    Some(target) if &target == id => {
                        self.error(
                            format!("task `{id}` depends on itself"),
                            &dep.referenced,
                            Some(format!("remove `{dep_id}` from its dependencies")),
                        );
                    }
                    Some(target) => {
                        if seen.insert(target.clone()) {
                            dependencies.push(target);
                        }
                    }
                    None => {
                        let others = known.iter().copied().filter(|k| *k != id.as_str());
                        let hint = match closest(dep_id.as_str(), others) {
                            Some(close) => format!("did you mean `{close}`?"),
                            None => "add a task with this id, or remove the dependency".to_owned(),
                        };
                        self.dangling(format!("task `{id}` depends on unknown task `{dep_id}`"), &dep.referenced, hint);
                    }
                }
            }
            let pipeline = match &raw.pipeline {
                Some(pipeline) => self.pipeline(&format!("pipeline` of task `{id}"), pipeline),
                None => None,
            };
            let title = raw.title.value.clone();
            if title.trim().is_empty() {
                self.error(
                    format!("task `{id}` has an empty title"),
                    &raw.title.referenced,
                    Some("say in one line what the task does".into()),
                );
            }
            let status = self.status(raw.status.as_ref(), id);
            let (subtasks, extra) = self.resolve_subtasks(id, subs, &first_seen, &owner_of);
            for dep in extra {
                if &dep != id && seen.insert(dep.clone()) {
                    dependencies.push(dep);
                }
            }
            let (probes, criteria) = self.acceptance(id, &raw.acceptance);
            let requirements = raw.requirements.as_ref().map(|r| {
                requirements::check(r, self.source, &mut self.problems);
                requirements::encode(&requirements::to_yaml(r))
            });
            let pipeline = match pipeline {
                // A task's own pipeline still ends with the merge agent when it merges.
                Some(mut own) => {
                    if defaults.merge_stage && !own.contains(&StageName::Merge) {
                        own.push(StageName::Merge);
                    }
                    own
                }
                None => match raw.kind {
                    crate::spec::Kind::Docs => defaults.docs_pipeline.clone(),
                    crate::spec::Kind::Code => defaults.pipeline.clone(),
                },
            };
            if !probes.is_empty() && !pipeline.contains(&StageName::Acceptance) {
                self.problems.push(
                    Diagnostic::warning(
                        format!("task `{id}` has HTTP probes but no `acceptance` stage; they will not run"),
                        Some(self.span(&raw.id.referenced)),
                    )
                    .with_hint("add `acceptance` to its pipeline"),
                );
            }
            tasks.push(Task {
                span: self.span(&raw.id.referenced),
                id: id.clone(),
                title,
                description: raw.description.clone(),
                details: raw.details.clone(),
                test_strategy: raw.test_strategy.clone(),
                dependencies,
                kind: raw.kind,
                pipeline,
                priority: raw.priority,
                status,
                subtasks,
                requirements,
                probes,
                criteria,
            });
        }
        if self.options.subtasks_as_tasks {
            tasks = expand_subtasks(tasks);
        }
        tasks
    }

    /// Lists a task's subtasks depth first (a step before its own steps) with full ids.
    fn flatten<'r>(
        &mut self,
        task: &TaskId,
        parent: &TaskId,
        raw: &'r [RawSubtask],
        depth: usize,
        out: &mut Vec<FlatSubtask<'r>>,
    ) {
        let group = out.len();
        for sub in raw {
            let local = match &sub.id.value {
                RawId::Integer(n) => n.to_string(),
                RawId::Text(text) => text.trim().to_owned(),
                RawId::Float(f) => f.to_string(),
                RawId::Bool(b) => b.to_string(),
            };
            let prefix = format!("{parent}.");
            let full_text = if local.starts_with(&prefix) { local.clone() } else { format!("{prefix}{local}") };
            let local = full_text[prefix.len()..].to_owned();
            let span = self.span(&sub.id.referenced);
            let id = match TaskId::parse(&full_text) {
                Ok(id) => id,
                Err(message) => {
                    self.problems.push(
                        Diagnostic::error(format!("subtask of task `{task}`: {message}"), Some(span))
                            .with_hint(ID_HINT),
                    );
                    continue;
                }
            };
            out.push(FlatSubtask { id: id.clone(), local, group, depth, span, raw: sub });
            self.flatten(task, &id, &sub.subtasks, depth + 1, out);
        }
    }

    /// Resolves subtask dependencies and orders the subtasks. Returns them and the tasks the
    /// parent must wait for because one of its subtasks does.
    ///
    /// A dependency of a subtask is, in this order: a sibling by local id (`2`) or full id
    /// (`"3.2"`); any other subtask of the same task by full id; a subtask of another task by
    /// full id (the parent then waits for that task); a task by id (a bare number that is not a
    /// sibling is read as a task id, which is what most hand-edited files mean).
    fn resolve_subtasks(
        &mut self,
        task: &TaskId,
        subs: &[FlatSubtask],
        tasks: &BTreeMap<TaskId, Span>,
        owner_of: &BTreeMap<TaskId, TaskId>,
    ) -> (Vec<Subtask>, Vec<TaskId>) {
        let mut extra = Vec::new();
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); subs.len()];
        let mut resolved_deps: Vec<Vec<TaskId>> = vec![Vec::new(); subs.len()];
        for (i, sub) in subs.iter().enumerate() {
            for dep in &sub.raw.dependencies {
                let text = match &dep.value {
                    RawId::Integer(n) => n.to_string(),
                    RawId::Text(t) => t.trim().to_owned(),
                    RawId::Float(f) => f.to_string(),
                    RawId::Bool(b) => b.to_string(),
                };
                let sibling = subs.iter().position(|s| s.group == sub.group && s.depth == sub.depth && s.local == text);
                let by_full = subs.iter().position(|s| s.id.as_str() == text);
                let as_id = TaskId::parse(&text).ok();
                if let Some(j) = sibling.or(by_full) {
                    if j == i {
                        self.error(
                            format!("subtask `{}` depends on itself", sub.id),
                            &dep.referenced,
                            Some(format!("remove `{text}`")),
                        );
                    } else if !edges[i].contains(&j) {
                        edges[i].push(j);
                        resolved_deps[i].push(subs[j].id.clone());
                    }
                    continue;
                }
                match as_id {
                    Some(id) if owner_of.contains_key(&id) => {
                        let owner = &owner_of[&id];
                        let target = if self.options.subtasks_as_tasks { id.clone() } else { owner.clone() };
                        if owner != task {
                            resolved_deps[i].push(id.clone());
                            extra.push(target);
                        }
                    }
                    Some(id) if tasks.contains_key(&id) => {
                        // Depending on its own task is implied; anything else the parent waits for.
                        if &id != task {
                            resolved_deps[i].push(id.clone());
                            extra.push(id);
                        }
                    }
                    _ => {
                        let siblings: Vec<&str> = subs
                            .iter()
                            .filter(|s| s.group == sub.group && s.depth == sub.depth)
                            .map(|s| s.id.as_str())
                            .collect();
                        self.dangling(
                            format!("subtask `{}` depends on `{text}`, which is neither a subtask of task `{task}` nor a task", sub.id),
                            &dep.referenced,
                            format!("write the full id of a subtask ({}) or the id of a task", siblings.join(", ")),
                        );
                    }
                }
            }
        }

        // Order: file order, except that a subtask comes after the siblings it depends on.
        let mut order = Vec::with_capacity(subs.len());
        let mut placed = vec![false; subs.len()];
        let mut remaining: usize = subs.len();
        while remaining > 0 {
            let Some(next) = (0..subs.len()).find(|&i| !placed[i] && edges[i].iter().all(|&j| placed[j])) else {
                let stuck: Vec<String> =
                    (0..subs.len()).filter(|&i| !placed[i]).map(|i| format!("`{}`", subs[i].id)).collect();
                self.problems.push(
                    Diagnostic::error(
                        format!("subtasks of task `{task}` depend on each other in a cycle: {}", stuck.join(", ")),
                        Some(subs[(0..subs.len()).find(|&i| !placed[i]).expect("some left")].span),
                    )
                    .with_hint("remove one of the dependencies between these subtasks"),
                );
                break;
            };
            placed[next] = true;
            remaining -= 1;
            order.push(next);
        }
        let subtasks = order
            .into_iter()
            .map(|i| {
                let raw = subs[i].raw;
                Subtask {
                    id: subs[i].id.clone(),
                    title: raw.title.value.clone(),
                    description: raw.description.clone(),
                    details: raw.details.clone(),
                    test_strategy: raw.test_strategy.clone(),
                    status: self.status(raw.status.as_ref(), &subs[i].id),
                    dependencies: resolved_deps[i].clone(),
                }
            })
            .collect();
        (subtasks, extra)
    }
}

/// A subtask with its full id and where it sits.
struct FlatSubtask<'r> {
    id: TaskId,
    local: String,
    /// Index of the first subtask of its sibling group.
    group: usize,
    depth: usize,
    span: Span,
    raw: &'r RawSubtask,
}

/// `--subtasks-as-tasks`: every subtask becomes a task that waits for its parent's
/// dependencies and the steps it names; the parent then waits for all of its subtasks.
fn expand_subtasks(tasks: Vec<Task>) -> Vec<Task> {
    let mut out = Vec::with_capacity(tasks.len());
    for mut task in tasks {
        let subtasks = std::mem::take(&mut task.subtasks);
        for sub in &subtasks {
            // A step of a task that is done, dropped, deferred or blocked shares its fate.
            let status =
                if task.status.scheduling() == crate::spec::Scheduling::Run { sub.status } else { task.status };
            let mut dependencies = task.dependencies.clone();
            for dep in &sub.dependencies {
                if !dependencies.contains(dep) {
                    dependencies.push(dep.clone());
                }
            }
            out.push(Task {
                id: sub.id.clone(),
                span: task.span,
                title: sub.title.clone(),
                description: sub.description.clone(),
                details: sub.details.clone(),
                test_strategy: sub.test_strategy.clone(),
                dependencies,
                kind: task.kind,
                pipeline: task.pipeline.clone(),
                priority: task.priority,
                status,
                subtasks: Vec::new(),
                requirements: task.requirements.clone(),
                probes: Vec::new(),
                criteria: Vec::new(),
            });
        }
        task.dependencies.extend(subtasks.iter().map(|s| s.id.clone()));
        out.push(task);
    }
    out
}

/// The bot logins of the agents' GitHub Apps, ignored by default.
pub fn agent_logins() -> Vec<String> {
    crate::spec::stage::AgentRole::ALL.iter().map(|role| format!("{}[bot]", role.github_app())).collect()
}

/// A GitHub login, or an App's `name[bot]`.
fn is_login(text: &str) -> bool {
    let base = text.strip_suffix("[bot]").unwrap_or(text);
    !base.is_empty() && base.len() <= 60 && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `https://host[:port][/path]` of safe characters.
fn is_https_base(text: &str) -> bool {
    text.strip_prefix("https://").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 200
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '/' | '_'))
    })
}

/// The plural Kubernetes gives a kind: `Deployment` → `deployments`, `Ingress` → `ingresses`,
/// `Policy` → `policies`.
fn plural_of(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.ends_with(['s', 'x', 'z']) || lower.ends_with("ch") || lower.ends_with("sh") {
        format!("{lower}es")
    } else if lower.ends_with('y') && !lower[..lower.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']) {
        format!("{}ies", &lower[..lower.len() - 1])
    } else {
        format!("{lower}s")
    }
}

/// Parses `owner/name`, `https://host/owner/name` or `https://host/owner/name.git` into a clone URL
/// and an `owner/name` slug.
pub fn parse_repository(text: &str) -> Option<(String, String)> {
    let is_part = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if let Some(rest) = text.strip_prefix("https://") {
        let (host, path) = rest.split_once('/')?;
        let host_ok =
            !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        let path = path.trim_end_matches('/');
        let parts: Vec<&str> = path.split('/').collect();
        if !host_ok || parts.len() < 2 || !parts.iter().all(|p| is_part(p)) {
            return None;
        }
        let owner = parts[parts.len() - 2];
        let repo = parts[parts.len() - 1].trim_end_matches(".git");
        return Some((format!("https://{host}/{path}"), format!("{owner}/{repo}")));
    }
    let (owner, repo) = text.split_once('/')?;
    if !is_part(owner) || !is_part(repo) || owner.contains('.') {
        return None;
    }
    let repo = repo.trim_end_matches(".git");
    Some((format!("https://github.com/{owner}/{repo}"), format!("{owner}/{repo}")))
}

/// Parses `90m`, `3h`, `1h30m`, `45s`, `2d` into seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut number = String::new();
    if text.is_empty() {
        return None;
    }
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let value: u64 = number.parse().ok()?;
        total = total.checked_add(value.checked_mul(unit)?)?;
        number.clear();
    }
    number.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural_of("Deployment"), "deployments");
        assert_eq!(plural_of("Ingress"), "ingresses");
        assert_eq!(plural_of("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural_of("Gateway"), "gateways");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m"), Some(5400));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("2d"), Some(172_800));
        for bad in ["", "90", "h", "1x", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn repositories() {
        assert_eq!(parse_repository("acme/api"), Some(("https://github.com/acme/api".into(), "acme/api".into())));
        assert_eq!(
            parse_repository("https://git.example.com/team/acme/api.git"),
            Some(("https://git.example.com/team/acme/api.git".into(), "acme/api".into()))
        );
        for bad in ["acme", "acme/", "http://github.com/a/b", "a/b c", "a/{{x}}", "https://h/a"] {
            assert_eq!(parse_repository(bad), None, "{bad}");
        }
    }
}
