//! Agent profiles: what each agent role runs as. Built-in profiles live in `profiles/` and are
//! embedded in the binary; a backlog's `profiles:` and a `--profiles DIR` override them field by
//! field, in that order (built-in < backlog < directory).
//!
//! Profile values reach manifests, so each is checked against a narrow pattern; free text
//! (`promptModification`) may not contain `{{` or `}}`, which Argo would substitute.

use std::collections::BTreeMap;

use base64::Engine as _;
use include_dir::{Dir, include_dir};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::diagnostic::{Diagnostic, SourceFile};
use crate::spec::stage::AgentRole;
use crate::spec::validate::{parse_duration, span_of};

static BUILT_IN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/profiles");

/// A profile as written, every field optional so that overrides can name only what changes.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProfile {
    /// One line shown by `pressplay profiles`.
    pub description: Option<String>,
    /// `CodeRun` or `DocsRun`: the resource this role creates for code tasks (docs tasks always
    /// create DocsRuns). Default: `CodeRun`.
    #[schemars(with = "Option<String>")]
    pub kind: Option<Spanned<String>>,
    /// GitHub App (persona) the agent acts as.
    #[schemars(with = "Option<String>")]
    pub github_app: Option<Spanned<String>>,
    /// Model; default `defaults.model`.
    #[schemars(with = "Option<String>")]
    pub model: Option<Spanned<String>>,
    /// Extra instructions for the agent (CodeRun `promptModification`).
    #[schemars(with = "Option<String>")]
    pub prompt_modification: Option<Spanned<String>>,
    /// Local tools (MCP servers) to enable.
    #[schemars(with = "Option<Vec<String>>")]
    pub local_tools: Option<Vec<Spanned<String>>>,
    /// Remote tools to enable.
    #[schemars(with = "Option<Vec<String>>")]
    pub remote_tools: Option<Vec<Spanned<String>>>,
    /// CPU and memory the agent asks for, as Kubernetes quantities.
    pub resources: Option<RawResourceRequest>,
    /// Longest a run of this agent may take, such as `90m`; default `defaults.stageTimeout`.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Retries after an infrastructure error; default `defaults.retries`.
    #[schemars(with = "Option<u32>")]
    pub retries: Option<Spanned<u32>>,
    /// Quality-gate commands the agent owns and must leave passing.
    pub gates: Option<Vec<String>>,
}

/// CPU and memory as written, with positions.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResourceRequest {
    /// CPU, such as `"2"` or `500m`.
    #[schemars(with = "Option<String>")]
    pub cpu: Option<Spanned<String>>,
    /// Memory, such as `4Gi`.
    #[schemars(with = "Option<String>")]
    pub memory: Option<Spanned<String>>,
}

/// CPU and memory, checked.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RawResources {
    /// CPU, such as `"2"` or `500m`.
    pub cpu: Option<String>,
    /// Memory, such as `4Gi`.
    pub memory: Option<String>,
}

/// Overrides by role, as the backlog's `profiles:` holds them.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProfiles {
    /// The author.
    pub author: Option<RawProfile>,
    /// The lint fixer.
    pub lint: Option<RawProfile>,
    /// The test remediator.
    pub tests: Option<RawProfile>,
    /// The deployer.
    pub deploy: Option<RawProfile>,
    /// The acceptance agent.
    pub acceptance: Option<RawProfile>,
    /// The merge gate.
    pub merge: Option<RawProfile>,
    /// The PR-comment remediator.
    #[serde(rename = "pr-comment")]
    pub pr_comment: Option<RawProfile>,
    /// The CI-failure remediator.
    #[serde(rename = "ci-failure")]
    pub ci_failure: Option<RawProfile>,
    /// The issue triage agent.
    pub triage: Option<RawProfile>,
}

impl RawProfiles {
    /// The overrides by role.
    pub fn by_role(self) -> Vec<(AgentRole, RawProfile)> {
        use crate::spec::stage::StageName as S;
        [
            (AgentRole::Stage(S::Author), self.author),
            (AgentRole::Stage(S::Lint), self.lint),
            (AgentRole::Stage(S::Tests), self.tests),
            (AgentRole::Stage(S::Deploy), self.deploy),
            (AgentRole::Stage(S::Acceptance), self.acceptance),
            (AgentRole::Stage(S::Merge), self.merge),
            (AgentRole::PrComment, self.pr_comment),
            (AgentRole::CiFailure, self.ci_failure),
            (AgentRole::Triage, self.triage),
        ]
        .into_iter()
        .filter_map(|(role, profile)| profile.map(|p| (role, p)))
        .collect()
    }
}

/// A resolved profile: every field set, every value checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// One line.
    pub description: String,
    /// `CodeRun` or `DocsRun` for code tasks.
    pub kind: String,
    /// GitHub App.
    pub github_app: String,
    /// Model.
    pub model: String,
    /// Extra instructions (no `{{` or `}}`).
    pub prompt_modification: String,
    /// Local tools.
    pub local_tools: Vec<String>,
    /// Remote tools.
    pub remote_tools: Vec<String>,
    /// Resources.
    pub resources: RawResources,
    /// Seconds a run may take.
    pub timeout_seconds: u64,
    /// Retries after infrastructure errors.
    pub retries: u32,
    /// Quality-gate commands.
    pub gates: Vec<String>,
}

impl Profile {
    /// The gates as standard base64 of a JSON list (commands hold `$`, quotes and braces).
    pub fn gates_b64(&self) -> String {
        let json = serde_json::to_vec(&self.gates).expect("strings serialise");
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    /// `cpu=2,memory=4Gi`, for the resource annotation.
    pub fn resources_text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(cpu) = &self.resources.cpu {
            parts.push(format!("cpu={cpu}"));
        }
        if let Some(memory) = &self.resources.memory {
            parts.push(format!("memory={memory}"));
        }
        parts.join(",")
    }
}

/// One layer of overrides and the file it came from, for diagnostics.
pub struct Layer<'a> {
    /// The file.
    pub source: &'a SourceFile,
    /// Overrides by role.
    pub profiles: Vec<(AgentRole, RawProfile)>,
}

/// The built-in profiles, parsed. Their text is part of the binary and tested.
pub fn built_in() -> Vec<(AgentRole, SourceFile, RawProfile)> {
    AgentRole::ALL
        .iter()
        .map(|role| {
            let name = format!("{}.yaml", role.as_str());
            let file = BUILT_IN.get_file(&name).unwrap_or_else(|| panic!("built-in profile {name} is missing"));
            let text = file.contents_utf8().expect("profiles are UTF-8");
            let source = SourceFile::new(format!("profiles/{name}"), text);
            let raw: RawProfile =
                serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("built-in profile {name}: {e}"));
            (*role, source, raw)
        })
        .collect()
}

/// Resolves every role's profile from the built-ins and the override layers, in order, with
/// every problem found.
pub fn resolve(
    layers: &[Layer<'_>],
    default_model: &str,
    default_timeout: u64,
    default_retries: u32,
    problems: &mut Vec<(String, Diagnostic)>,
) -> BTreeMap<AgentRole, Profile> {
    let mut out = BTreeMap::new();
    for (role, source, built_in) in built_in() {
        let mut resolver = Resolver { problems: &mut *problems };
        let mut profile = Profile {
            description: String::new(),
            kind: "CodeRun".into(),
            github_app: role.github_app(),
            model: default_model.to_owned(),
            prompt_modification: String::new(),
            local_tools: Vec::new(),
            remote_tools: Vec::new(),
            resources: RawResources::default(),
            timeout_seconds: default_timeout,
            retries: default_retries,
            gates: Vec::new(),
        };
        resolver.apply(&mut profile, &built_in, &source);
        for layer in layers {
            for (_, raw) in layer.profiles.iter().filter(|(r, _)| *r == role) {
                resolver.apply(&mut profile, raw, layer.source);
            }
        }
        out.insert(role, profile);
    }
    out
}

struct Resolver<'p> {
    /// Problems with the name of the file they are in.
    problems: &'p mut Vec<(String, Diagnostic)>,
}

impl Resolver<'_> {
    fn bad(&mut self, source: &SourceFile, value: &Spanned<String>, what: &str, hint: &str) {
        self.problems.push((
            source.name.clone(),
            Diagnostic::error(
                format!("`{}` is not {what}", value.value.escape_debug()),
                Some(span_of(source, &value.referenced)),
            )
            .with_hint(hint),
        ));
    }

    fn word(&mut self, source: &SourceFile, value: &Spanned<String>, what: &str) -> Option<String> {
        let ok = !value.value.is_empty()
            && value.value.len() <= 128
            && value.value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '@' | '-'));
        if ok {
            Some(value.value.clone())
        } else {
            self.bad(source, value, what, "use letters, digits and `._:/@-`");
            None
        }
    }

    fn apply(&mut self, profile: &mut Profile, raw: &RawProfile, source: &SourceFile) {
        if let Some(description) = &raw.description {
            profile.description = description.lines().next().unwrap_or_default().to_owned();
        }
        if let Some(kind) = &raw.kind {
            match kind.value.as_str() {
                "CodeRun" | "DocsRun" => profile.kind = kind.value.clone(),
                _ => self.bad(source, kind, "a resource kind", "write `CodeRun` or `DocsRun`"),
            }
        }
        if let Some(app) = raw.github_app.as_ref().and_then(|v| self.word(source, v, "a GitHub App name")) {
            profile.github_app = app;
        }
        if let Some(model) = raw.model.as_ref().and_then(|v| self.word(source, v, "a model name")) {
            profile.model = model;
        }
        if let Some(text) = &raw.prompt_modification {
            if text.value.contains("{{")
                || text.value.contains("}}")
                || text.value.chars().any(|c| c.is_control() && c != '\n')
            {
                self.bad(
                    source,
                    text,
                    "usable as a prompt modification",
                    "it is written into a manifest that Argo templates: leave out `{{`, `}}` and control characters",
                );
            } else {
                profile.prompt_modification = text.value.clone();
            }
        }
        for (field, list, target) in [
            ("a local tool name", &raw.local_tools, &mut profile.local_tools),
            ("a remote tool name", &raw.remote_tools, &mut profile.remote_tools),
        ] {
            if let Some(list) = list {
                let mut tools = Vec::new();
                for tool in list {
                    if tool.value.contains(',') {
                        self.bad(source, tool, field, "list one tool per item; the list is joined with commas");
                    } else if let Some(tool) = self.word(source, tool, field) {
                        tools.push(tool);
                    }
                }
                *target = tools;
            }
        }
        if let Some(resources) = &raw.resources {
            let is_quantity = |q: &str| {
                let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                !digits.is_empty()
                    && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"].contains(&&q[digits.len()..])
            };
            for (value, target) in
                [(&resources.cpu, &mut profile.resources.cpu), (&resources.memory, &mut profile.resources.memory)]
            {
                let Some(value) = value else { continue };
                if is_quantity(&value.value) {
                    *target = Some(value.value.clone());
                } else {
                    self.bad(source, value, "a Kubernetes quantity", "write quantities such as `\"2\"`, `500m`, `4Gi`");
                }
            }
        }
        if let Some(timeout) = &raw.timeout {
            match parse_duration(&timeout.value) {
                Some(seconds) if seconds > 0 => profile.timeout_seconds = seconds,
                _ => self.bad(
                    source,
                    timeout,
                    "a duration",
                    "write a number followed by `s`, `m`, `h` or `d`, such as `90m`",
                ),
            }
        }
        if let Some(retries) = &raw.retries {
            if retries.value <= 20 {
                profile.retries = retries.value;
            } else {
                self.problems.push((
                    source.name.clone(),
                    Diagnostic::error(
                        format!("`retries` is {}; the limit is 20", retries.value),
                        Some(span_of(source, &retries.referenced)),
                    ),
                ));
            }
        }
        if let Some(gates) = &raw.gates {
            profile.gates = gates.clone();
        }
    }
}

/// Reads a `--profiles DIR`: one `<role>.yaml` per role it overrides.
pub fn read_dir(dir: &std::path::Path) -> Result<Vec<(SourceFile, AgentRole, RawProfile)>, super::LoadError> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| super::LoadError::Io { path: dir.display().to_string(), source })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let display = path.to_string_lossy().replace('\\', "/");
        let text =
            std::fs::read_to_string(&path).map_err(|source| super::LoadError::Io { path: display.clone(), source })?;
        let source = SourceFile::new(display, text);
        let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let Some(role) = AgentRole::ALL.iter().copied().find(|r| r.as_str() == stem) else {
            let known: Vec<&str> = AgentRole::ALL.iter().map(|r| r.as_str()).collect();
            let hint = match super::suggest::closest(&stem, known.iter().copied()) {
                Some(close) => format!("did you mean `{close}.yaml`?"),
                None => format!("profiles are named after roles: {}", known.join(", ")),
            };
            let diagnostic = Diagnostic::error(format!("unknown profile `{stem}`"), None).with_hint(hint);
            return Err(super::LoadError::Invalid { file: source, diagnostics: vec![diagnostic] });
        };
        match serde_saphyr::from_str_with_options::<RawProfile>(&source.text, super::yaml_options()) {
            Ok(raw) => out.push((source, role, raw)),
            Err(err) => {
                let diagnostic = super::yaml_error(&source, &err);
                return Err(super::LoadError::Invalid { file: source, diagnostics: vec![diagnostic] });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_built_in_profile_that_resolves_cleanly() {
        let mut problems: Vec<(String, Diagnostic)> = Vec::new();
        let profiles = resolve(&[], "m", 60, 1, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(profiles.len(), AgentRole::ALL.len());
        let lint = &profiles[&AgentRole::Stage(crate::spec::StageName::Lint)];
        assert!(lint.gates.iter().any(|g| g.contains("clippy") && g.contains("-D warnings") && g.contains("pedantic")));
        assert!(lint.gates.iter().any(|g| g.contains("cargo fmt")));
    }
}
