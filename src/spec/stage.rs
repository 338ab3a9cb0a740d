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
}

impl StageName {
    /// Every stage, in default pipeline order.
    pub const ALL: [StageName; 5] =
        [StageName::Author, StageName::Lint, StageName::Tests, StageName::Deploy, StageName::Acceptance];

    /// The name used in the backlog, in Argo step names and in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Author => "author",
            StageName::Lint => "lint",
            StageName::Tests => "tests",
            StageName::Deploy => "deploy",
            StageName::Acceptance => "acceptance",
        }
    }

    /// The GitHub App (persona) the stage's agent acts as, until profiles say otherwise.
    pub fn github_app(self) -> String {
        format!("pressplay-{}", self.as_str())
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
