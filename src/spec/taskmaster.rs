//! Task Master's `tasks.json`, read into the native raw model so that one validator checks both.
//!
//! Real files differ from the documented shape, and this reader takes what has one sensible
//! meaning: the tagged layout (`{"master": {"tasks": [...]}}`), the older flat `{"tasks": [...]}`,
//! a bare list, a tag that points straight at a list, extra top-level keys, string or integer
//! ids, and a dependency written as one comma-joined string (`"29.1,29.2"`). Unknown task fields
//! are ignored (Task Master adds new ones often); wrong types are errors with their position.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::diagnostic::{Diagnostic, SourceFile};
use crate::spec::raw::{Kind, Priority, RawBacklog, RawId, RawSubtask, RawTask};
use crate::spec::validate::span_of;

/// One task or subtask as Task Master writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TmTask {
    id: Spanned<RawId>,
    title: Option<Spanned<String>>,
    description: Option<String>,
    details: Option<String>,
    test_strategy: Option<String>,
    priority: Option<Spanned<String>>,
    status: Option<Spanned<String>>,
    dependencies: Option<Vec<Spanned<RawId>>>,
    subtasks: Option<Vec<TmTask>>,
}

/// The top level of a file.
#[derive(Debug)]
enum TmFile {
    /// `{"tasks": [...], ...}`: the older flat layout.
    Flat(Vec<TmTask>),
    /// `[...]`: a bare list of tasks.
    Bare(Vec<TmTask>),
    /// `{"<tag>": {"tasks": [...]}, ...}` or `{"<tag>": [...]}`, in file order.
    Tagged(Vec<(Spanned<String>, Vec<TmTask>)>),
}

/// A list of tasks, read element by element (so positions survive).
fn task_list<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Vec<TmTask>, A::Error> {
    let mut tasks = Vec::new();
    while let Some(task) = seq.next_element::<TmTask>()? {
        tasks.push(task);
    }
    Ok(tasks)
}

/// The value of a top-level key: a tag's tasks, or `None` for anything else.
struct TagValue(Option<Vec<TmTask>>);

impl<'de> Deserialize<'de> for TagValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagVisitor;
        impl<'de> Visitor<'de> for TagVisitor {
            type Value = TagValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a tag (an object with `tasks`, or a list of tasks)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TagValue, A::Error> {
                Ok(TagValue(Some(task_list(seq)?)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TagValue, A::Error> {
                let mut tasks = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "tasks" {
                        tasks = Some(map.next_value::<Vec<TmTask>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(TagValue(tasks))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<TagValue, E> {
                Ok(TagValue(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TagValue, E> {
                Ok(TagValue(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TagValue, E> {
                Ok(TagValue(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TagValue, E> {
                Ok(TagValue(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TagValue, E> {
                Ok(TagValue(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<TagValue, E> {
                Ok(TagValue(None))
            }
        }
        deserializer.deserialize_any(TagVisitor)
    }
}

impl<'de> Deserialize<'de> for TmFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileVisitor;
        impl<'de> Visitor<'de> for FileVisitor {
            type Value = TmFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Task Master file (an object of tags, an object with `tasks`, or a list of tasks)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TmFile, A::Error> {
                Ok(TmFile::Bare(task_list(seq)?))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TmFile, A::Error> {
                let mut flat = None;
                let mut tags = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    if key.value == "tasks" {
                        flat = Some(map.next_value::<Vec<TmTask>>()?);
                    } else if let TagValue(Some(tasks)) = map.next_value::<TagValue>()? {
                        tags.push((key, tasks));
                    }
                }
                Ok(match flat {
                    Some(tasks) => TmFile::Flat(tasks),
                    None => TmFile::Tagged(tags),
                })
            }
        }
        deserializer.deserialize_any(FileVisitor)
    }
}

/// Reads a Task Master file into the native raw model, choosing `tag` (default `master`).
/// Returns the backlog and the warnings, or the diagnostics that stop it.
pub fn read(source: &SourceFile, tag: Option<&str>) -> Result<(RawBacklog, Vec<Diagnostic>), Vec<Diagnostic>> {
    let file: TmFile = serde_saphyr::from_str_with_options(&source.text, crate::spec::yaml_options())
        .map_err(|err| vec![super::yaml_error(source, &err)])?;
    let mut warnings = Vec::new();
    let tasks = match file {
        TmFile::Flat(tasks) | TmFile::Bare(tasks) => {
            if let Some(tag) = tag.filter(|t| *t != "master") {
                warnings.push(Diagnostic::warning(
                    format!("`--tag {tag}` is ignored: this file has the flat layout, without tags"),
                    None,
                ));
            }
            tasks
        }
        TmFile::Tagged(mut tags) => {
            let wanted = tag.unwrap_or("master");
            let listing = || {
                let with_tasks: Vec<String> = tags
                    .iter()
                    .filter(|(_, t)| !t.is_empty())
                    .map(|(k, t)| format!("`{}` ({} task{})", k.value, t.len(), if t.len() == 1 { "" } else { "s" }))
                    .collect();
                if with_tasks.is_empty() {
                    "no tag has tasks".to_owned()
                } else {
                    format!("tags with tasks: {}", with_tasks.join(", "))
                }
            };
            match tags.iter().position(|(key, _)| key.value == wanted) {
                None => {
                    let diagnostic = Diagnostic::error(format!("the file has no tag `{wanted}`"), None);
                    let hint = if tags.is_empty() {
                        "a Task Master file holds `{\"master\": {\"tasks\": [...]}}` or `{\"tasks\": [...]}`".to_owned()
                    } else {
                        format!("{}; pick one with `--tag`", listing())
                    };
                    return Err(vec![diagnostic.with_hint(hint)]);
                }
                Some(index) if tags[index].1.is_empty() => {
                    let span = span_of(source, &tags[index].0.referenced);
                    return Err(vec![
                        Diagnostic::error(format!("tag `{wanted}` has no tasks"), Some(span))
                            .with_hint(format!("{}; pick one with `--tag`", listing())),
                    ]);
                }
                Some(index) => tags.swap_remove(index).1,
            }
        }
    };
    let tasks = tasks.into_iter().map(|task| convert_task(task, source, &mut warnings)).collect();
    Ok((
        RawBacklog {
            project: Default::default(),
            defaults: Default::default(),
            tasks,
            events: Default::default(),
            profiles: Default::default(),
        },
        warnings,
    ))
}

fn convert_task(task: TmTask, source: &SourceFile, warnings: &mut Vec<Diagnostic>) -> RawTask {
    let priority = match &task.priority {
        None => Priority::Medium,
        Some(p) => match p.value.trim().to_ascii_lowercase().as_str() {
            "critical" | "urgent" | "highest" | "high" => Priority::High,
            "medium" | "normal" | "" => Priority::Medium,
            "low" | "lowest" => Priority::Low,
            other => {
                warnings.push(
                    Diagnostic::warning(
                        format!("unknown priority `{}` counts as `medium`", other.escape_debug()),
                        Some(span_of(source, &p.referenced)),
                    )
                    .with_hint("use `high`, `medium` or `low`"),
                );
                Priority::Medium
            }
        },
    };
    RawTask {
        title: title_of(task.title, &task.id),
        description: task.description,
        details: task.details,
        test_strategy: task.test_strategy,
        dependencies: split_dependencies(task.dependencies.unwrap_or_default()),
        kind: Kind::Code,
        pipeline: None,
        priority,
        status: task.status,
        subtasks: task.subtasks.unwrap_or_default().into_iter().map(convert_subtask).collect(),
        requirements: None,
        acceptance: Vec::new(),
        id: task.id,
    }
}

fn convert_subtask(task: TmTask) -> RawSubtask {
    RawSubtask {
        title: title_of(task.title, &task.id),
        description: task.description,
        details: task.details,
        test_strategy: task.test_strategy,
        status: task.status,
        dependencies: split_dependencies(task.dependencies.unwrap_or_default()),
        subtasks: task.subtasks.unwrap_or_default().into_iter().map(convert_subtask).collect(),
        id: task.id,
    }
}

/// A missing title becomes an empty one at the id's position, which validation reports.
fn title_of(title: Option<Spanned<String>>, id: &Spanned<RawId>) -> Spanned<String> {
    title.unwrap_or_else(|| Spanned::new(String::new(), id.referenced, id.defined))
}

/// `"29.1,29.2,29.3"` means three dependencies; each keeps the position of the string.
fn split_dependencies(deps: Vec<Spanned<RawId>>) -> Vec<Spanned<RawId>> {
    let mut out = Vec::with_capacity(deps.len());
    for dep in deps {
        match &dep.value {
            RawId::Text(text) if text.contains(',') => {
                let (referenced, defined): (Location, Location) = (dep.referenced, dep.defined);
                for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    out.push(Spanned::new(RawId::Text(part.to_owned()), referenced, defined));
                }
            }
            _ => out.push(dep),
        }
    }
    out
}

/// True when the text is a Task Master file rather than a native backlog: valid JSON whose top
/// level is a list, or an object without the native format's own keys (`project`, `defaults`,
/// `events`). A native backlog in YAML flow style (`{tasks: [...]}`) is not JSON.
pub fn looks_like_taskmaster(text: &str) -> bool {
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if !matches!(text.as_bytes().first(), Some(b'{' | b'[')) {
        return false;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(_)) => true,
        Ok(serde_json::Value::Object(map)) => !["project", "defaults", "events"].iter().any(|k| map.contains_key(*k)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_taskmaster;

    #[test]
    fn detects_the_format_by_content() {
        assert!(looks_like_taskmaster(r#"{"master": {"tasks": []}}"#));
        assert!(looks_like_taskmaster("[]"));
        assert!(!looks_like_taskmaster("tasks: []"));
        assert!(!looks_like_taskmaster("{project: {name: x}, tasks: []}"), "YAML flow style is native");
        assert!(!looks_like_taskmaster(r#"{"project": {"name": "x"}, "tasks": []}"#), "native keys mean native");
    }
}
