//! The one place the template environment is configured: our delimiters (`[[ ]]`, `[% %]`,
//! `[# #]`, so Argo's `{{...}}` is plain text in templates), strict undefined values, JSON
//! auto-escaping of every value (a JSON string is a valid YAML double-quoted scalar, so no value
//! can change the YAML structure), and the embedded templates with an optional override directory.

use std::path::Path;

use include_dir::{Dir, include_dir};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

/// The templates built into the binary.
static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Template ids. A unit test loads every one.
pub const STAGES: &str = "workflows/stages.yaml.j2";
/// The orchestrator: the run, which dispatches the task Workflows.
pub const ORCHESTRATOR: &str = "workflows/orchestrator.yaml.j2";
/// The Workflow that presses play.
pub const RUN: &str = "workflows/run.yaml.j2";
/// The limits ConfigMap.
pub const CONFIG_MAP: &str = "common/configmap.yaml.j2";
/// A ServiceAccount.
pub const SERVICE_ACCOUNT: &str = "common/serviceaccount.yaml.j2";
/// A Role.
pub const ROLE: &str = "common/role.yaml.j2";
/// A RoleBinding.
pub const ROLE_BINDING: &str = "common/rolebinding.yaml.j2";
/// The GitHub EventSource.
pub const EVENT_SOURCE: &str = "events/eventsource.yaml.j2";
/// A Sensor.
pub const SENSOR: &str = "events/sensor.yaml.j2";
/// The project's EventBus.
pub const EVENT_BUS: &str = "events/eventbus.yaml.j2";
/// The ExternalSecret of the GitHub credentials.
pub const EXTERNAL_SECRET: &str = "common/externalsecret.yaml.j2";
/// A WorkflowTemplate that a Sensor starts for one event-driven agent.
pub const REMEDIATE: &str = "workflows/remediate.yaml.j2";
/// The token Secret of a ServiceAccount (Kubernetes fills it in).
pub const TOKEN_SECRET: &str = "common/token-secret.yaml.j2";
/// Every template id the renderer uses.
pub const ALL: [&str; 13] = [
    TOKEN_SECRET,
    STAGES,
    ORCHESTRATOR,
    RUN,
    CONFIG_MAP,
    SERVICE_ACCOUNT,
    ROLE,
    ROLE_BINDING,
    EVENT_SOURCE,
    SENSOR,
    EVENT_BUS,
    EXTERNAL_SECRET,
    REMEDIATE,
];

/// Where the templates came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Only the built-in templates.
    Embedded,
    /// Built-in templates, some replaced from a user directory.
    Overridden,
}

/// Builds the environment. Files in `overrides` (same relative paths as `templates/`) replace
/// the built-in ones.
pub fn environment(overrides: Option<&Path>) -> Result<(Environment<'static>, Origin), String> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .block_delimiters("[%", "%]")
        .variable_delimiters("[[", "]]")
        .comment_delimiters("[#", "#]")
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the delimiters are distinct");
    env.set_syntax(syntax);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::Json);
    env.add_filter("block_map", block_map);
    env.add_filter("yaml_block", yaml_block);
    let mut dirs = vec![&EMBEDDED];
    while let Some(dir) = dirs.pop() {
        dirs.extend(dir.dirs());
        for file in dir.files() {
            let name = file.path().to_string_lossy().replace('\\', "/");
            let text = file.contents_utf8().expect("templates are UTF-8");
            env.add_template_owned(name, text.to_owned()).expect("embedded templates parse (tested)");
        }
    }
    let Some(dir) = overrides else {
        return Ok((env, Origin::Embedded));
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let entries =
            std::fs::read_dir(&at).map_err(|e| format!("cannot read template directory `{}`: {e}", at.display()))?;
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "j2") {
                let name = path.strip_prefix(dir).expect("walked from dir").to_string_lossy().replace('\\', "/");
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read template `{}`: {e}", path.display()))?;
                env.add_template_owned(name.clone(), text)
                    .map_err(|e| format!("template override `{}` does not parse: {e}", path.display()))?;
            }
        }
    }
    Ok((env, Origin::Overridden))
}

/// `[[ labels|block_map(4) ]]`: a mapping of strings as YAML block lines at the given indent,
/// keys as they are (our own constants), values as JSON strings, without a final newline.
fn block_map(entries: Value, indent: usize) -> Result<Value, minijinja::Error> {
    let mut lines = Vec::new();
    for key in entries.try_iter()? {
        let value = entries.get_item(&key)?;
        let key = key.as_str().unwrap_or_default();
        let value = value.as_str().unwrap_or_default();
        // A key YAML would read as anything but a string (`1`, `on`, `null`) is quoted.
        let plain = key.starts_with(|c: char| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
            && !matches!(
                key.to_ascii_lowercase().as_str(),
                "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
            );
        let key = if plain { key.to_owned() } else { serde_json::to_string(key).expect("strings serialise") };
        lines.push(format!(
            "{}{key}: {}",
            " ".repeat(indent),
            serde_json::to_string(value).expect("strings serialise")
        ));
    }
    Ok(Value::from_safe_string(lines.join("\n")))
}

/// `[[ object|yaml_block(14) ]]`: a nested value as block YAML at the given indent, every string
/// double-quoted, without a final newline. Used for whole objects embedded in another (a Sensor's
/// trigger resource), which are built in Rust.
fn yaml_block(value: Value, indent: usize) -> Result<Value, minijinja::Error> {
    let options =
        serde_saphyr::ser_options! { quote_all: true, compact_list_indent: false, folded_wrap_chars: usize::MAX };
    let text = serde_saphyr::to_string_with_options(&value, options)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))?;
    let pad = " ".repeat(indent);
    let lines: Vec<String> = text.lines().map(|line| format!("{pad}{line}")).collect();
    Ok(Value::from_safe_string(lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_id_is_embedded_and_parses() {
        let (env, _) = environment(None).unwrap();
        for id in ALL {
            env.get_template(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    }

    #[test]
    fn block_map_quotes_values() {
        let (mut env, _) = environment(None).unwrap();
        env.add_template("t.yaml.j2", "m:\n[[ m|block_map(2) ]]\nx: 1\n").unwrap();
        let m = std::collections::BTreeMap::from([("a", "on"), ("b/c", "x\"y"), ("12", "b"), ("on", "c")]);
        let out = env.get_template("t.yaml.j2").unwrap().render(minijinja::context! { m => m }).unwrap();
        assert_eq!(out, "m:\n  \"12\": \"b\"\n  a: \"on\"\n  b/c: \"x\\\"y\"\n  \"on\": \"c\"\nx: 1\n");
    }

    #[test]
    fn argo_tags_are_plain_text_and_values_are_json() {
        let (mut env, _) = environment(None).unwrap();
        env.add_template("t.yaml.j2", "a: \"{{inputs.parameters.x}}\"\nb: [[ v ]]\n").unwrap();
        let out = env.get_template("t.yaml.j2").unwrap().render(minijinja::context! { v => "yes: no\n{{x}}" }).unwrap();
        assert_eq!(out, "a: \"{{inputs.parameters.x}}\"\nb: \"yes: no\\n{{x}}\"\n");
    }
}
