//! Requirements: the secrets and environment the agents need, in the shape the agent platform
//! reads today (`secrets: [{name, keys?: [{SECRET_KEY: ENV_NAME}]}]`, `environment: {K: V}`).
//! They reach the CodeRun as `spec.taskRequirements`, standard base64 of YAML.

use base64::Engine as _;

use crate::diagnostic::{Diagnostic, SourceFile};
use crate::spec::raw::RawRequirements;
use crate::spec::validate::span_of;

/// Checks the names in a requirements block: Secret names are DNS subdomains, environment
/// variable names are `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check(requirements: &RawRequirements, source: &SourceFile, problems: &mut Vec<Diagnostic>) {
    for secret in &requirements.secrets {
        let name = &secret.name.value;
        let span = Some(span_of(source, &secret.name.referenced));
        if !is_dns_subdomain(name) {
            problems.push(
                Diagnostic::error(format!("secret name `{}` is not a Kubernetes name", name.escape_debug()), span)
                    .with_hint("use lowercase letters, digits, `-` and `.`"),
            );
        }
        for mapping in secret.keys.iter().flatten() {
            if mapping.len() != 1 {
                problems.push(
                    Diagnostic::error(format!("each entry of `keys` of secret `{name}` must map one key"), span)
                        .with_hint("write one `SECRET_KEY: ENV_NAME` per list item"),
                );
            }
            for env_name in mapping.values().filter(|n| !is_env_name(n)) {
                problems.push(
                    Diagnostic::error(
                        format!("`{}` in secret `{name}` is not an environment variable name", env_name.escape_debug()),
                        span,
                    )
                    .with_hint("use letters, digits and `_`, not starting with a digit"),
                );
            }
        }
    }
    for key in requirements.environment.keys().filter(|k| !is_env_name(k)) {
        problems.push(
            Diagnostic::error(
                format!("`{}` in `environment` is not an environment variable name", key.escape_debug()),
                None,
            )
            .with_hint("use letters, digits and `_`, not starting with a digit"),
        );
    }
}

/// Standard base64 of the given YAML text.
pub fn encode(yaml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(yaml.as_bytes())
}

/// The YAML text of an inline requirements block.
pub fn to_yaml(requirements: &RawRequirements) -> String {
    serde_saphyr::to_string(requirements).expect("requirements are plain strings")
}

/// Reads and checks a requirements file; its bytes are passed on as they are.
pub fn load(path: &std::path::Path, display_name: &str) -> Result<String, super::LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| super::LoadError::Io { path: display_name.to_owned(), source })?;
    let source = SourceFile::new(display_name, text);
    let parsed: RawRequirements = match serde_saphyr::from_str_with_options(&source.text, crate::spec::yaml_options()) {
        Ok(parsed) => parsed,
        Err(err) => {
            let diagnostic = super::yaml_error(&source, &err);
            return Err(super::LoadError::Invalid { file: source, diagnostics: vec![diagnostic] });
        }
    };
    let mut problems = Vec::new();
    check(&parsed, &source, &mut problems);
    if problems.is_empty() {
        Ok(encode(&source.text))
    } else {
        Err(super::LoadError::Invalid { file: source, diagnostics: problems })
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn is_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
