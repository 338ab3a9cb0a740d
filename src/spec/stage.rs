//! `StageName`: the stages a task's chain is made of, in the order a default pipeline runs them.

use std::fmt;

/// One stage of a task's chain. Each stage is one agent run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageName {
    /// Writes the change and opens the pull request.
    Author,
    /// Runs the linters and fixes what they find.
    Lint,
    /// Runs the tests and fixes what fails.
    Tests,
    /// Deploys the change to a preview environment.
    Deploy,
    /// Checks the deployed change against the task's acceptance criteria.
    Acceptance,
    /// Merges the pull request once reviews and checks allow it.
    Merge,
}

impl StageName {
    /// Every stage, in pipeline order.
    pub const ALL: [StageName; 6] = [
        StageName::Author,
        StageName::Lint,
        StageName::Tests,
        StageName::Deploy,
        StageName::Acceptance,
        StageName::Merge,
    ];

    /// The default pipeline of code tasks.
    pub const DEFAULT: [StageName; 5] =
        [StageName::Author, StageName::Lint, StageName::Tests, StageName::Deploy, StageName::Acceptance];

    /// The name used in the backlog, in Argo step names and in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Author => "author",
            StageName::Lint => "lint",
            StageName::Tests => "tests",
            StageName::Deploy => "deploy",
            StageName::Acceptance => "acceptance",
            StageName::Merge => "merge",
        }
    }

    /// Parses a stage name as written in the backlog.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|stage| stage.as_str() == text)
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every agent persona: the pipeline stages and the agents that events start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgentRole {
    /// A pipeline stage.
    Stage(StageName),
    /// Answers review and PR comments on a task's pull request.
    PrComment,
    /// Fixes a failing check on a task's pull request.
    CiFailure,
    /// Triages a newly opened issue.
    Triage,
}

impl AgentRole {
    /// Every role, pipeline stages first.
    pub const ALL: [AgentRole; 9] = [
        AgentRole::Stage(StageName::Author),
        AgentRole::Stage(StageName::Lint),
        AgentRole::Stage(StageName::Tests),
        AgentRole::Stage(StageName::Deploy),
        AgentRole::Stage(StageName::Acceptance),
        AgentRole::Stage(StageName::Merge),
        AgentRole::PrComment,
        AgentRole::CiFailure,
        AgentRole::Triage,
    ];

    /// The agents that events start.
    pub const REMEDIATORS: [AgentRole; 3] = [AgentRole::PrComment, AgentRole::CiFailure, AgentRole::Triage];

    /// Name used in template, ServiceAccount and label names.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRole::Stage(stage) => stage.as_str(),
            AgentRole::PrComment => "pr-comment",
            AgentRole::CiFailure => "ci-failure",
            AgentRole::Triage => "triage",
        }
    }

    /// The GitHub App (persona) the agent acts as.
    pub fn github_app(self) -> String {
        format!("pressplay-{}", self.as_str())
    }
}
