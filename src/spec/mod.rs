//! INPUT: what the user wrote. The only module that reads the backlog file. It parses the YAML
//! with positions, checks it, and hands `plan/` a [`Backlog`] plus every problem found, each
//! pointing at a line and column of the file.

pub mod backlog;
pub mod profile;
pub mod raw;
pub mod requirements;
pub mod stage;
pub mod status;
pub mod suggest;
pub mod task_id;
pub mod taskmaster;
pub mod validate;

use std::path::Path;

pub use backlog::{Access, Backlog, Defaults, Events, Project, Subtask, Task};
pub use raw::{Kind, Priority};
pub use stage::AgentRole;
pub use stage::StageName;
pub use status::{Scheduling, TaskStatus};
pub use task_id::TaskId;
pub use validate::ValidateOptions;

use crate::diagnostic::{Diagnostic, SourceFile};

/// A backlog read from a file, with the problems found in it (errors and warnings).
#[derive(Debug)]
pub struct Loaded {
    /// The checked backlog; when `problems` holds errors it is partial and must not be rendered.
    pub backlog: Backlog,
    /// The file, for rendering diagnostics.
    pub source: SourceFile,
    /// Everything found, in file order.
    pub problems: Vec<Diagnostic>,
}

/// Why a backlog could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a backlog; the diagnostics say where and why.
    #[error("`{}` is not a valid backlog", .file.name)]
    Invalid {
        /// The file.
        file: SourceFile,
        /// What is wrong.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Which reader a backlog needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Decide from the content: JSON (an object or a list) is Task Master, anything else native.
    #[default]
    Auto,
    /// `requirements.yaml`, the native format.
    Native,
    /// Task Master's `tasks.json`.
    Taskmaster,
}

/// Choices that change how a backlog is read.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The reader.
    pub format: Format,
    /// Task Master tag (default `master`).
    pub tag: Option<String>,
    /// Drop dangling dependencies with a warning.
    pub lenient: bool,
    /// Make subtasks tasks of their own.
    pub subtasks_as_tasks: bool,
    /// A project-level requirements file.
    pub requirements: Option<std::path::PathBuf>,
    /// Allow `events.webhookSecret: none`.
    pub insecure_webhook: bool,
    /// Replaces `project.name` (Task Master files have no project settings).
    pub project_name: Option<String>,
    /// Replaces `project.repository`.
    pub repository: Option<String>,
    /// A directory of profile overrides (`<role>.yaml`), applied after the backlog's.
    pub profiles: Option<std::path::PathBuf>,
}

/// Reads and checks a backlog. `display_name` is the path as the user wrote it.
pub fn load(path: &Path, display_name: &str, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: display_name.to_owned(), source })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let file = SourceFile::new(display_name, "");
            let diagnostic = Diagnostic::error(
                format!("the file is not UTF-8 (invalid byte at offset {})", err.utf8_error().valid_up_to()),
                None,
            )
            .with_hint("save the file as UTF-8");
            return Err(LoadError::Invalid { file, diagnostics: vec![diagnostic] });
        }
    };
    let requirements = match &options.requirements {
        Some(file) => Some(requirements::load(file, &file.to_string_lossy().replace('\\', "/"))?),
        None => None,
    };
    let profiles = match &options.profiles {
        Some(dir) => profile::read_dir(dir)?,
        None => Vec::new(),
    };
    parse_with(SourceFile::new(display_name, text), options, requirements, profiles)
}

/// Parses and checks native backlog text that is already in memory.
pub fn parse(source: SourceFile) -> Result<Loaded, LoadError> {
    parse_with(source, &LoadOptions::default(), None, Vec::new())
}

fn parse_with(
    source: SourceFile,
    options: &LoadOptions,
    requirements: Option<String>,
    profile_files: Vec<(SourceFile, AgentRole, profile::RawProfile)>,
) -> Result<Loaded, LoadError> {
    let taskmaster = match options.format {
        Format::Auto => taskmaster::looks_like_taskmaster(&source.text),
        Format::Native => false,
        Format::Taskmaster => true,
    };
    let (mut raw, mut problems) = if taskmaster {
        match taskmaster::read(&source, options.tag.as_deref()) {
            Ok(read) => read,
            Err(diagnostics) => return Err(LoadError::Invalid { file: source, diagnostics }),
        }
    } else {
        match serde_saphyr::from_str_with_options::<raw::RawBacklog>(&source.text, crate::spec::yaml_options()) {
            Ok(raw) => (raw, Vec::new()),
            Err(err) => {
                let diagnostic = yaml_error(&source, &err);
                return Err(LoadError::Invalid { file: source, diagnostics: vec![diagnostic] });
            }
        }
    };
    let validate_options = ValidateOptions {
        lenient: options.lenient,
        subtasks_as_tasks: options.subtasks_as_tasks,
        requirements,
        insecure_webhook: options.insecure_webhook,
        backlog_path: source.name.clone(),
        project_name: options.project_name.clone(),
        repository: options.repository.clone(),
    };
    let backlog_profiles = std::mem::take(&mut raw.profiles).by_role();
    let (mut backlog, more) = validate::validate(raw, &source, &validate_options);
    problems.extend(more);
    // Profiles: built-in < backlog < --profiles DIR. Problems in the directory's files are
    // reported with those files, so they stop the load here.
    let mut layers = vec![profile::Layer { source: &source, profiles: backlog_profiles }];
    for (file, role, raw) in &profile_files {
        layers.push(profile::Layer { source: file, profiles: vec![(*role, raw.clone())] });
    }
    let mut profile_problems = Vec::new();
    backlog.profiles = profile::resolve(
        &layers,
        &backlog.defaults.model,
        backlog.defaults.stage_timeout_seconds,
        backlog.defaults.retries,
        &mut profile_problems,
    );
    // Problems in a --profiles file point into that file, not the backlog: they are reported
    // with it, all of them, and stop the load.
    let mut in_dir: Vec<(String, Diagnostic)> = Vec::new();
    for (file_name, problem) in profile_problems {
        if profile_files.iter().any(|(file, _, _)| file.name == file_name) {
            in_dir.push((file_name, problem));
        } else {
            problems.push(problem);
        }
    }
    if let Some((first, _)) = in_dir.first() {
        let file = profile_files.iter().find(|(file, _, _)| &file.name == first).expect("found above").0.clone();
        let diagnostics = in_dir.into_iter().filter(|(name, _)| *name == file.name).map(|(_, d)| d).collect();
        return Err(LoadError::Invalid { file, diagnostics });
    }
    Ok(Loaded { backlog, source, problems })
}

/// Parser options: serde-saphyr's defaults cap a document at 250,000 nodes, which a backlog of
/// 10,000 tasks with subtasks passes; these limits still stop a runaway file.
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 100_000_000,
            max_nodes: 50_000_000,
        },
    }
}

/// Turns a YAML or shape error into a diagnostic at its position, in our message style.
fn yaml_error(source: &SourceFile, err: &serde_saphyr::Error) -> Diagnostic {
    let full = err.without_snippet().to_string();
    let message = match full.rfind(" at line ") {
        Some(index) => full[..index].to_owned(),
        None => full,
    };
    let (message, hint) = reword(&message);
    let span = err.location().map(|location| validate::span_of(source, &location));
    let mut diagnostic = Diagnostic::error(message, span);
    diagnostic.hint = hint;
    diagnostic
}

fn reword(message: &str) -> (String, Option<String>) {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest);
        return (format!("duplicate key `{key}`"), Some("each key may appear once in a mapping; remove one".into()));
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> =
            rest.split_once("expected one of ").map_or(Vec::new(), |(_, list)| list.split(", ").collect());
        let hint = match suggest::closest(field, expected.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => "see `pressplay schema` for every field the backlog accepts".to_owned(),
        };
        return (format!("unknown field `{field}`"), Some(hint));
    }
    if message.starts_with("missing field `tasks`") {
        return (message.to_owned(), Some("a backlog is a mapping with a `tasks:` list".into()));
    }
    if message.contains("unexpected end") || message.to_lowercase().contains("eof") {
        return ("the file is empty or ends early".into(), Some("a backlog is a mapping with a `tasks:` list".into()));
    }
    (message.to_owned(), None)
}
