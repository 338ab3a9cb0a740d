//! The task brief: the task's own text (title, description, details, test strategy) as the
//! agents receive it. Backlog text is untrusted as far as Argo is concerned: Argo substitutes
//! `{{...}}` in everything it templates, with no escape. So the brief only ever travels as
//! standard base64, which has no `{`, quote, `$`, backslash or newline, and is decoded by the
//! agent, outside Argo.

use base64::Engine as _;
use serde::Serialize;

use crate::spec::Task;

/// What the agent decodes from its brief (the ConfigMap and key its CodeRun names). Field names are part of the agent contract.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Brief<'a> {
    /// The task id as the user wrote it.
    pub id: &'a str,
    /// One line.
    pub title: &'a str,
    /// Present when the backlog has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// Present when the backlog has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<&'a str>,
    /// Present when the backlog has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_strategy: Option<&'a str>,
    /// Ids of the tasks this one builds on.
    pub dependencies: Vec<&'a str>,
    /// The task's steps, in an order that respects their dependencies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subtasks: Vec<SubtaskBrief<'a>>,
    /// Acceptance criteria for the acceptance agent: commands (`command: ...`) and free text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acceptance: Vec<&'a str>,
}

/// One step of a task, as the agent receives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubtaskBrief<'a> {
    /// Full id (`3.2`).
    pub id: &'a str,
    /// One line.
    pub title: &'a str,
    /// Present when the backlog has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// Present when the backlog has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<&'a str>,
    /// Present when the backlog has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_strategy: Option<&'a str>,
    /// As recorded (`pending`, `done`, ...).
    pub status: &'a str,
    /// Ids of the steps or tasks it waits for.
    pub dependencies: Vec<&'a str>,
}

/// The brief of a task as standard base64 of compact JSON.
pub fn encode(task: &Task) -> String {
    let brief = Brief {
        id: task.id.as_str(),
        title: &task.title,
        description: task.description.as_deref(),
        details: task.details.as_deref(),
        test_strategy: task.test_strategy.as_deref(),
        dependencies: {
            let mut deps: Vec<&crate::spec::TaskId> = task.dependencies.iter().collect();
            deps.sort();
            deps.into_iter().map(|d| d.as_str()).collect()
        },
        subtasks: task
            .subtasks
            .iter()
            .map(|sub| SubtaskBrief {
                id: sub.id.as_str(),
                title: &sub.title,
                description: sub.description.as_deref(),
                details: sub.details.as_deref(),
                test_strategy: sub.test_strategy.as_deref(),
                status: sub.status.as_str(),
                dependencies: sub.dependencies.iter().map(|d| d.as_str()).collect(),
            })
            .collect(),
        acceptance: task.criteria.iter().map(String::as_str).collect(),
    };
    let json = serde_json::to_vec(&brief).expect("a brief is plain strings");
    base64::engine::general_purpose::STANDARD.encode(json)
}
