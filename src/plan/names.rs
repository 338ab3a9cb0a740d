//! Names: every Kubernetes and Argo name the output uses is made here, and only through
//! [`K8sName::new`], which refuses anything that is not a valid DNS-1123 label that starts with
//! a letter. Task ids become node names by one documented rule (`docs/output.md`, "Names").
//! The names of the objects a plan renders into ([`Names`]) and the labels every object carries
//! ([`common_labels`]) are decided here too, so `render/` only lays them out.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::plan::Plan;
use crate::spec::{AgentRole, TaskId};

/// Longest node name: short enough to be a label value and to leave room in generated names.
pub const MAX_NODE_LEN: usize = 42;
/// Longest readable part kept before the hash when an id has to be shortened.
const SLUG_KEEP: usize = 30;
/// First stable integer given to a string id; user integers stay below it.
pub const STRING_ID_BASE: i64 = 1_000_000_000_000;
/// Size of the range string ids are hashed into (keeps every number below 2^53).
const STRING_ID_RANGE: u64 = 8_000_000_000_000_000;

/// Task branches are `task/<task number>` or `task/<task number>-<anything>`: the number is the
/// key that maps an event back to its task.
pub const BRANCH_PREFIX: &str = "task/";
/// Task pull requests carry the label `task-<task number>`.
pub const PR_LABEL_PREFIX: &str = "task-";

/// A DNS-1123 label that starts with a letter: `[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 bytes.
/// Valid as a Kubernetes object name, a label value, an Argo template or task name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct K8sName(String);

impl K8sName {
    /// Checks `text`; `None` when it is not a valid name.
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        is_valid_name(&text).then_some(Self(text))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self` followed by `-suffix`, if the result is still a valid name.
    pub fn join(&self, suffix: &str) -> Option<Self> {
        Self::new(format!("{}-{suffix}", self.0))
    }
}

impl fmt::Display for K8sName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True for `[a-z]([-a-z0-9]*[a-z0-9])?` of at most 63 bytes.
pub fn is_valid_name(text: &str) -> bool {
    text.len() <= 63
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && !text.ends_with('-')
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Node names for task ids, index for index.
///
/// The rule: lowercase the id and turn every run of other characters than `a-z0-9` into one
/// `-` (the slug). When the slug is at most 40 characters and no other id in the backlog has the
/// same slug, the name is `t-<slug>`. Otherwise it is `t-<first 30 of slug>--<8 hex of sha256(id)>`.
/// A readable name never contains `--`, so it cannot equal a hashed one.
pub fn node_names(ids: &[TaskId]) -> Vec<K8sName> {
    let slugs: Vec<String> = ids.iter().map(|id| slug(id.as_str())).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &slugs {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    let hashed = |id: &TaskId, s: &str, keep: usize, hex: usize| {
        let kept = s[..s.len().min(keep)].trim_end_matches('-');
        let hash = &hex_sha256(id.as_str())[..hex];
        if kept.is_empty() { format!("t--{hash}") } else { format!("t-{kept}--{hash}") }
    };
    let mut names: Vec<String> = ids
        .iter()
        .zip(&slugs)
        .map(|(id, s)| {
            if !s.is_empty() && s.len() + 2 <= MAX_NODE_LEN && counts[s.as_str()] == 1 {
                format!("t-{s}")
            } else {
                hashed(id, s, SLUG_KEEP, 8)
            }
        })
        .collect();
    // Eight hex digits collide once in about 4 billion pairs; those few get a longer hash.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for name in &names {
        *seen.entry(name.clone()).or_default() += 1;
    }
    for (index, name) in names.iter_mut().enumerate() {
        if seen[name.as_str()] > 1 {
            *name = hashed(&ids[index], &slugs[index], 10, 32);
        }
    }
    names.into_iter().map(|text| K8sName::new(text).expect("node names are built from [a-z0-9-] only")).collect()
}

/// The integer a task is known by in CodeRun `spec.taskId`: the id itself when it is an integer,
/// otherwise a stable number from the id's SHA-256, at least [`STRING_ID_BASE`].
pub fn task_number(id: &TaskId) -> i64 {
    if let Some(value) = id.as_integer() {
        return value;
    }
    let digest = Sha256::digest(id.as_str().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let offset = u64::from_be_bytes(first) % STRING_ID_RANGE;
    STRING_ID_BASE + i64::try_from(offset).expect("range is below i64::MAX")
}

/// Lowercase, with runs of characters outside `a-z0-9` folded into one `-`, no `-` at the ends.
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// A label value for arbitrary text: the text itself when it is a valid label value, else a
/// shortened slug with a hash of the text.
pub fn label_value(text: &str) -> String {
    if is_valid_label_value(text) {
        return text.to_owned();
    }
    let s = slug(text);
    let kept = s[..s.len().min(50)].trim_end_matches('-');
    let hash = &hex_sha256(text)[..8];
    if kept.is_empty() { hash.to_owned() } else { format!("{kept}-{hash}") }
}

/// True for a non-empty Kubernetes label value: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at
/// both ends.
pub fn is_valid_label_value(text: &str) -> bool {
    text.len() <= 63
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Lowercase hex SHA-256 of `text`.
pub fn hex_sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        use fmt::Write as _;
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ids: &[&str]) -> Vec<String> {
        let ids: Vec<TaskId> = ids.iter().map(|s| TaskId::parse(s).unwrap()).collect();
        node_names(&ids).into_iter().map(|n| n.0).collect()
    }

    #[test]
    fn readable_when_unambiguous() {
        assert_eq!(names(&["7", "build-api", "T1", "3.2"]), ["t-7", "t-build-api", "t-t1", "t-3-2"]);
    }

    #[test]
    fn hashed_when_slugs_collide_or_are_long() {
        let got = names(&["T1", "t1", &"x".repeat(60)]);
        assert!(got[0].starts_with("t-t1--") && got[1].starts_with("t-t1--"));
        assert_ne!(got[0], got[1]);
        assert!(got[2].len() <= MAX_NODE_LEN, "{}", got[2]);
        assert!(got.iter().all(|n| is_valid_name(n)));
    }

    #[test]
    fn string_ids_get_stable_large_numbers() {
        let id = TaskId::parse("build-api").unwrap();
        assert_eq!(task_number(&id), task_number(&id.clone()));
        assert!(task_number(&id) >= STRING_ID_BASE && task_number(&id) < (1 << 53));
        assert_eq!(task_number(&TaskId::parse("42").unwrap()), 42);
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("acme"), "acme");
        assert_eq!(label_value("Acme.api_v2"), "Acme.api_v2");
        let long = label_value(&"Ab_".repeat(40));
        assert!(long.len() <= 63 && !long.starts_with('-') && !long.ends_with('-'));
        assert_ne!(label_value("a/b"), label_value("a.b"));
    }
}

/// Label keys, in one place.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Project label key.
pub const LABEL_PROJECT: &str = "pressplay.dev/project";
/// Repository label key (`owner.name`).
pub const LABEL_REPOSITORY: &str = "pressplay.dev/repository";
/// Task label key (the node name).
pub const LABEL_TASK: &str = "pressplay.dev/task";
/// Task number label key (the CodeRun `taskId`; the correlation key of events).
pub const LABEL_TASK_NUMBER: &str = "pressplay.dev/task-number";
/// Pull request label key (on workflows that events start).
pub const LABEL_PR: &str = "pressplay.dev/pr";
/// Stage label key.
pub const LABEL_STAGE: &str = "pressplay.dev/stage";
/// Component label key (orchestrator, stages, part, limits, run).
pub const LABEL_COMPONENT: &str = "pressplay.dev/component";

/// Names of the objects a plan renders into, derived from the project name.
#[derive(Debug, Clone)]
pub struct Names {
    /// The orchestrator WorkflowTemplate (`<project>`).
    pub orchestrator: K8sName,
    /// The stage chains WorkflowTemplate (`<project>-stages`).
    pub stages: K8sName,
    /// The limits ConfigMap (`<project>-limits`).
    pub limits: K8sName,
    /// The orchestrator's ServiceAccount, Role and RoleBinding (`<project>-orchestrator`).
    pub orchestrator_account: K8sName,
    /// The mutex that keeps one run per project (`<project>-run`).
    pub run_mutex: K8sName,
    /// The one run of the project (`<project>-play`), which the launcher replaces.
    pub run: K8sName,
}

impl Names {
    /// The ServiceAccount (and Role, RoleBinding) of an agent role: `<project>-<role>`.
    pub fn agent_account(&self, role: AgentRole) -> K8sName {
        self.orchestrator.join(role.as_str()).expect("roles are short words")
    }

    /// Per-task state ConfigMaps are `<project>-task-<number>`.
    pub fn state_prefix(&self) -> String {
        format!("{}-task-", self.orchestrator)
    }

    /// Task Workflows are `<project>-task-<number>` (a Workflow beside the task's state ConfigMap).
    pub fn task_workflow_prefix(&self) -> String {
        format!("{}-task-", self.orchestrator)
    }

    /// The graph ConfigMap `<project>-graph-<index>`.
    pub fn graph_map(&self, index: usize) -> K8sName {
        self.of(&format!("graph-{index}"))
    }

    /// The brief ConfigMap `<project>-briefs-<index>`.
    pub fn brief_map(&self, index: usize) -> K8sName {
        self.of(&format!("briefs-{index}"))
    }

    /// A component's name: `<project>-<suffix>`.
    pub fn of(&self, suffix: &str) -> K8sName {
        self.orchestrator.join(suffix).expect("project names are at most 40 bytes and suffixes short")
    }
}

impl Names {
    /// Names for a plan.
    pub fn new(plan: &Plan) -> Self {
        let project = &K8sName::new(plan.project.name.clone()).expect("the plan checked the project name");
        let join = |suffix: &str| project.join(suffix).expect("project names are at most 40 bytes");
        Self {
            orchestrator: project.clone(),
            stages: join("stages"),
            limits: join("limits"),
            orchestrator_account: join("orchestrator"),
            run_mutex: join("run"),
            run: join("play"),
        }
    }
}

/// Labels every object carries.
pub fn common_labels(plan: &Plan, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), "pressplay".to_owned()),
        (LABEL_PROJECT.to_owned(), plan.project.name.clone()),
        (LABEL_REPOSITORY.to_owned(), label_value(&plan.project.repository_slug.replacen('/', ".", 1))),
        (LABEL_COMPONENT.to_owned(), component.to_owned()),
    ])
}
