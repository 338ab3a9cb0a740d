//! `RawBacklog` → `Backlog`: unique ids, known dependencies, known stages, and narrow patterns for
//! every project value that is written into manifests. Every problem is collected; a bad task is
//! dropped (a duplicate) or loses the bad edge (an unknown dependency) so that later checks, such
//! as cycle detection, still run on the rest.

use std::collections::{BTreeMap, BTreeSet};

use serde_saphyr::{Location, Spanned};

use crate::diagnostic::{Diagnostic, SourceFile, Span};
use crate::spec::backlog::{Backlog, Defaults, Project, Task};
use crate::spec::raw::{RawBacklog, RawDefaults, RawId, RawProject, RawTask};
use crate::spec::stage::StageName;
use crate::spec::suggest::closest;
use crate::spec::task_id::{ID_HINT, TaskId};

/// Converts a parsed backlog into the checked model, with every problem found.
pub fn validate(raw: RawBacklog, source: &SourceFile) -> (Backlog, Vec<Diagnostic>) {
    let mut checker = Checker {
        source,
        problems: Vec::new(),
    };
    let project = checker.project(&raw.project);
    let defaults = checker.defaults(&raw.defaults);
    let tasks = checker.tasks(raw.tasks, &defaults);
    (
        Backlog {
            project,
            defaults,
            tasks,
        },
        checker.problems,
    )
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
    problems: Vec<Diagnostic>,
}

/// A text rule for a project field: what it may contain, said for the user.
struct Pattern {
    describe: &'static str,
    accepts: fn(&str) -> bool,
}

const DNS_LABEL_40: Pattern = Pattern {
    describe: "a DNS label: lowercase letters, digits and `-`, starting with a letter, at most 40 characters",
    accepts: |s| {
        is_dns_label(s) && s.len() <= 40 && s.starts_with(|c: char| c.is_ascii_lowercase())
    },
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
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
    },
};
const PATH: Pattern = Pattern {
    describe: "a relative path: letters, digits and `._/-`",
    accepts: |s| {
        !s.is_empty()
            && s.len() <= 200
            && !s.starts_with('/')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
    },
};
const MODEL: Pattern = Pattern {
    describe: "a model name: letters, digits and `._:/@-`",
    accepts: |s| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '@' | '-')
            })
    },
};

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
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

    fn text(
        &mut self,
        field: &str,
        value: Option<&Spanned<String>>,
        pattern: &Pattern,
        default: &str,
    ) -> String {
        let Some(value) = value else {
            return default.to_owned();
        };
        if (pattern.accepts)(&value.value) {
            return value.value.clone();
        }
        self.error(
            format!(
                "`{field}` is `{}`, which is not {}",
                value.value.escape_debug(),
                pattern.describe
            ),
            &value.referenced,
            Some(format!(
                "this value is written into Kubernetes manifests, so it must be {}",
                pattern.describe
            )),
        );
        default.to_owned()
    }

    fn project(&mut self, raw: &RawProject) -> Project {
        let name = self.text(
            "project.name",
            raw.name.as_ref(),
            &DNS_LABEL_40,
            "pressplay",
        );
        let (repository_url, repository_slug) = match &raw.repository {
            None => (
                format!("https://github.com/example/{name}"),
                format!("example/{name}"),
            ),
            Some(value) => {
                match parse_repository(&value.value) {
                    Some(parsed) => parsed,
                    None => {
                        self.error(
                        format!("`project.repository` is `{}`, which is not a repository", value.value.escape_debug()),
                        &value.referenced,
                        Some("write `owner/name` for GitHub, or an `https://host/owner/name` URL".into()),
                    );
                        (
                            format!("https://github.com/example/{name}"),
                            format!("example/{name}"),
                        )
                    }
                }
            }
        };
        let docs_repository_url = match &raw.docs_repository {
            None => repository_url.clone(),
            Some(value) => {
                match parse_repository(&value.value) {
                    Some((url, _)) => url,
                    None => {
                        self.error(
                        format!("`project.docsRepository` is `{}`, which is not a repository", value.value.escape_debug()),
                        &value.referenced,
                        Some("write `owner/name` for GitHub, or an `https://host/owner/name` URL".into()),
                    );
                        repository_url.clone()
                    }
                }
            }
        };
        Project {
            service: self.text(
                "project.service",
                raw.service.as_ref(),
                &DNS_LABEL_63,
                &name,
            ),
            base_branch: self.text(
                "project.baseBranch",
                raw.base_branch.as_ref(),
                &BRANCH,
                "main",
            ),
            working_directory: self.text(
                "project.workingDirectory",
                raw.working_directory.as_ref(),
                &PATH,
                ".",
            ),
            namespace: self.text(
                "project.namespace",
                raw.namespace.as_ref(),
                &DNS_LABEL_63,
                "agents",
            ),
            docs_branch: self.text(
                "project.docsBranch",
                raw.docs_branch.as_ref(),
                &BRANCH,
                "main",
            ),
            docs_project_directory: self.text(
                "project.docsProjectDirectory",
                raw.docs_project_directory.as_ref(),
                &PATH,
                ".",
            ),
            name,
            repository_url,
            repository_slug,
            docs_repository_url,
        }
    }

    fn defaults(&mut self, raw: &RawDefaults) -> Defaults {
        let pipeline = match &raw.pipeline {
            Some(pipeline) => self.pipeline("defaults.pipeline", pipeline),
            None => None,
        };
        Defaults {
            model: self.text(
                "defaults.model",
                raw.model.as_ref(),
                &MODEL,
                "claude-sonnet-4-5",
            ),
            pipeline: pipeline.unwrap_or_else(|| StageName::ALL.to_vec()),
            concurrency: match &raw.concurrency {
                Some(value) if value.value == 0 || value.value > 10_000 => {
                    self.error(
                        format!(
                            "`defaults.concurrency` is {}; it must be between 1 and 10000",
                            value.value
                        ),
                        &value.referenced,
                        None,
                    );
                    4
                }
                Some(value) => value.value,
                None => 4,
            },
            stage_timeout_seconds: self.duration(
                "defaults.stageTimeout",
                raw.stage_timeout.as_ref(),
                3 * 3600,
            ),
            retries: match &raw.retries {
                Some(value) if value.value > 20 => {
                    self.error(
                        format!("`defaults.retries` is {}; the limit is 20", value.value),
                        &value.referenced,
                        None,
                    );
                    2
                }
                Some(value) => value.value,
                None => 2,
            },
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
        }
    }

    fn duration(&mut self, field: &str, value: Option<&Spanned<String>>, default: u64) -> u64 {
        let Some(value) = value else { return default };
        match parse_duration(&value.value) {
            Some(seconds) if seconds > 0 => seconds,
            _ => {
                self.error(
                    format!(
                        "`{field}` is `{}`, which is not a duration",
                        value.value.escape_debug()
                    ),
                    &value.referenced,
                    Some(
                        "write a number followed by `s`, `m`, `h` or `d`, such as `90m` or `1h30m`"
                            .into(),
                    ),
                );
                default
            }
        }
    }

    fn pipeline(
        &mut self,
        field: &str,
        raw: &Spanned<Vec<Spanned<String>>>,
    ) -> Option<Vec<StageName>> {
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
                    self.error(
                        format!("stage `{stage}` appears twice in `{field}`"),
                        &item.referenced,
                        None,
                    );
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
        ok.then_some(stages)
    }

    fn task_id(&mut self, raw: &Spanned<RawId>) -> Option<TaskId> {
        let parsed = match &raw.value {
            RawId::Integer(value) => TaskId::from_integer(*value),
            RawId::Text(text) => TaskId::parse(text),
            RawId::Float(value) => Err(format!("task id `{value}` is a number with a fraction")),
        };
        match parsed {
            Ok(id) => Some(id),
            Err(message) => {
                let hint = match &raw.value {
                    RawId::Float(_) => "quote it to make it a string, such as `\"3.2\"`".to_owned(),
                    _ => ID_HINT.to_owned(),
                };
                self.error(message, &raw.referenced, Some(hint));
                None
            }
        }
    }

    fn tasks(&mut self, raw_tasks: Vec<RawTask>, defaults: &Defaults) -> Vec<Task> {
        // Pass 1: ids. The first task with an id keeps it; later ones are reported and dropped.
        let mut first_seen: BTreeMap<TaskId, Span> = BTreeMap::new();
        let mut kept: Vec<(TaskId, RawTask)> = Vec::new();
        for raw in raw_tasks {
            let Some(id) = self.task_id(&raw.id) else {
                continue;
            };
            let span = self.span(&raw.id.referenced);
            if let Some(first) = first_seen.get(&id) {
                self.problems.push(
                    Diagnostic::error(format!("duplicate task id `{id}`"), Some(span)).with_hint(
                        format!(
                            "the first task with this id is on line {}; give each task its own id",
                            first.line
                        ),
                    ),
                );
                continue;
            }
            first_seen.insert(id.clone(), span);
            kept.push((id, raw));
        }

        // Pass 2: everything else, now that every id is known.
        let known: Vec<&str> = first_seen.keys().map(TaskId::as_str).collect();
        let mut tasks = Vec::with_capacity(kept.len());
        for (id, raw) in kept {
            let mut dependencies = Vec::new();
            let mut seen = BTreeSet::new();
            for dep in &raw.dependencies {
                let Some(dep_id) = self.task_id(dep) else {
                    continue;
                };
                if dep_id == id {
                    self.error(
                        format!("task `{id}` depends on itself"),
                        &dep.referenced,
                        Some(format!("remove `{dep_id}` from its dependencies")),
                    );
                } else if !first_seen.contains_key(&dep_id) {
                    let hint = match closest(dep_id.as_str(), known.iter().copied()) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => "add a task with this id, or remove the dependency".to_owned(),
                    };
                    self.error(
                        format!("task `{id}` depends on unknown task `{dep_id}`"),
                        &dep.referenced,
                        Some(hint),
                    );
                } else if seen.insert(dep_id.clone()) {
                    dependencies.push(dep_id);
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
            tasks.push(Task {
                span: self.span(&raw.id.referenced),
                id,
                title,
                description: raw.description,
                details: raw.details,
                test_strategy: raw.test_strategy,
                dependencies,
                kind: raw.kind,
                pipeline: pipeline.unwrap_or_else(|| defaults.pipeline.clone()),
                priority: raw.priority,
            });
        }
        tasks
    }
}

/// Parses `owner/name`, `https://host/owner/name` or `https://host/owner/name.git` into a clone URL
/// and an `owner/name` slug.
pub fn parse_repository(text: &str) -> Option<(String, String)> {
    let is_part = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if let Some(rest) = text.strip_prefix("https://") {
        let (host, path) = rest.split_once('/')?;
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
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
    Some((
        format!("https://github.com/{owner}/{repo}"),
        format!("{owner}/{repo}"),
    ))
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
        assert_eq!(
            parse_repository("acme/api"),
            Some(("https://github.com/acme/api".into(), "acme/api".into()))
        );
        assert_eq!(
            parse_repository("https://git.example.com/team/acme/api.git"),
            Some((
                "https://git.example.com/team/acme/api.git".into(),
                "acme/api".into()
            ))
        );
        for bad in [
            "acme",
            "acme/",
            "http://github.com/a/b",
            "a/b c",
            "a/{{x}}",
            "https://h/a",
        ] {
            assert_eq!(parse_repository(bad), None, "{bad}");
        }
    }
}
