//! `TaskStatus`: Task Master's statuses and what each means for scheduling.

use std::fmt;

/// A task's status as the backlog records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TaskStatus {
    /// Not started (also: no status at all).
    #[default]
    Pending,
    /// Someone is on it.
    InProgress,
    /// Waiting for review.
    Review,
    /// Finished (`done`, or the common alias `completed`).
    Done,
    /// Dropped.
    Cancelled,
    /// Put off.
    Deferred,
    /// Cannot go on.
    Blocked,
}

/// What a status means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduling {
    /// The task runs.
    Run,
    /// The task does not run, and its dependents may start (done, cancelled).
    Satisfied,
    /// The task does not run, and neither does anything that depends on it (deferred, blocked).
    Held,
}

impl TaskStatus {
    /// Parses a status; `None` for words Task Master does not use.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "pending" | "todo" => Self::Pending,
            "in-progress" | "in_progress" => Self::InProgress,
            "review" => Self::Review,
            "done" | "completed" => Self::Done,
            "cancelled" | "canceled" => Self::Cancelled,
            "deferred" => Self::Deferred,
            "blocked" => Self::Blocked,
            _ => return None,
        })
    }

    /// What the status means for the run.
    pub fn scheduling(self) -> Scheduling {
        match self {
            Self::Pending | Self::InProgress | Self::Review => Scheduling::Run,
            Self::Done | Self::Cancelled => Scheduling::Satisfied,
            Self::Deferred | Self::Blocked => Scheduling::Held,
        }
    }

    /// The canonical word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in-progress",
            Self::Review => "review",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Deferred => "deferred",
            Self::Blocked => "blocked",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
