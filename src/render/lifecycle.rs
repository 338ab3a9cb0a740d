//! The run's life cycle around the merge handshake:
//!
//! * the **reconcile** CronWorkflow `<project>-reconcile` (`workflows/reconcile.yaml.j2`), the
//!   safety net of the merge gate: every [`SCHEDULE`] one short pod copies merged and closed
//!   task pull requests from GitHub into the task state ConfigMaps and wakes every waiting gate
//!   whose state is final;
//! * with events, the **press** WorkflowTemplate `<project>-press` (`workflows/press.yaml.j2`), which the play
//!   Sensors start once per delivery: it replaces a finished run `<project>-play` with a new one,
//!   or fails with the reason when the run still goes;
//! * one ServiceAccount, Role and RoleBinding for each, granting only what its script does.
//!
//! Both scripts are Python (standard library only) in `lifecycle/`, embedded here and printed
//! into the template's `script.source`. They take every name from environment variables this
//! module writes from validated backlog values, contain no `{{` (so Argo substitutes nothing in
//! them), and read GitHub's and the cluster's answers as JSON, keeping only canonical digits and
//! commit ids. See `docs/lifecycle.md`.
//!
//! Without events the reconcile is rendered alone: it is then the only record of merges (no
//! merge Sensor hears them), and nothing presses play but `argo submit`.

use std::collections::BTreeMap;

use minijinja::Value;
use serde_json::json;

use crate::plan::Plan;
use crate::render::context::{GATE_WAIT_TEMPLATE, Names, common_labels, reconciles};
use crate::render::events::DELIVERY_HASH;
use crate::render::{Document, RenderError};

/// Template of the reconcile CronWorkflow.
pub const RECONCILE: &str = "workflows/reconcile.yaml.j2";
/// Template of the press WorkflowTemplate.
pub const PRESS: &str = "workflows/press.yaml.j2";

/// The image both scripts run in. Official Python image, pinned by tag: the scripts need only
/// the standard library (HTTPS with a given CA, JSON, SHA-256, big integers for the GitHub App's
/// RS256 signature), so no curl, jq, openssl or kubectl has to be found in one image, and no
/// shell ever sees a value.
pub const IMAGE: &str = "python:3.13.5-alpine3.22";
/// How often the reconcile runs (cron, UTC).
pub const SCHEDULE: &str = "*/15 * * * *";
/// How late a missed reconcile may still start; later ones are skipped (the next comes soon).
pub const STARTING_DEADLINE_SECONDS: u64 = 300;
/// The reconcile's deadline: well inside one period.
pub const RECONCILE_DEADLINE_SECONDS: u64 = 600;
/// The press's deadline (a finished run is deleted within two minutes or the press fails).
pub const PRESS_DEADLINE_SECONDS: u64 = 300;
/// Pages of 100 pull requests (most recently updated first) the reconcile reads per run.
pub const GITHUB_PAGES: u32 = 10;
/// Up to this many tasks, the reconcile's `patch` on ConfigMaps names each state ConfigMap.
/// Above it the list would make the Role too large (10,000 names are over 256 KiB), and the
/// rule covers every ConfigMap of the namespace, as the Sensor's does.
pub const MAX_NAMED_STATES: usize = 1000;

const COMMON_PY: &str = include_str!("lifecycle/common.py");
const RECONCILE_PY: &str = include_str!("lifecycle/reconcile.py");
const PRESS_PY: &str = include_str!("lifecycle/press.py");
const DISPATCH_PY: &str = include_str!("lifecycle/dispatch.py");

/// The reconcile script as it is rendered (without the template's indentation).
pub fn reconcile_script() -> String {
    format!("{COMMON_PY}{RECONCILE_PY}")
}

/// The dispatch script as it is rendered (without the template's indentation).
pub fn dispatch_script() -> String {
    format!("{COMMON_PY}{DISPATCH_PY}")
}

/// The press script as it is rendered (without the template's indentation).
pub fn press_script() -> String {
    format!("{COMMON_PY}{PRESS_PY}")
}

/// One RBAC rule: API group, resources, verbs, and the only object names it applies to (empty:
/// every object of the namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// API group (`""` is the core group).
    pub group: &'static str,
    /// Resources.
    pub resources: Vec<&'static str>,
    /// Verbs.
    pub verbs: Vec<&'static str>,
    /// `resourceNames`.
    pub names: Vec<String>,
}

fn rule(group: &'static str, resources: &[&'static str], verbs: &[&'static str], names: Vec<String>) -> Rule {
    Rule { group, resources: resources.to_vec(), verbs: verbs.to_vec(), names }
}

/// Every pod of Argo v4 reports its outputs through a WorkflowTaskResult.
fn task_results() -> Rule {
    rule("argoproj.io", &["workflowtaskresults"], &["create", "patch"], Vec::new())
}

/// The rules of the reconcile's ServiceAccount: list ConfigMaps (RBAC cannot narrow a list by
/// name), create them (nor a create), patch only the state ConfigMaps of this backlog's tasks
/// (up to [`MAX_NAMED_STATES`] tasks), and list the task Workflows; wake-ups go through Argo
/// Server with the waker's token.
pub fn reconcile_rules(plan: &Plan, names: &Names) -> Vec<Rule> {
    let mut states: Vec<String> = if plan.tasks.len() <= MAX_NAMED_STATES {
        plan.tasks.iter().map(|t| format!("{}{}", names.state_prefix(), t.number)).collect()
    } else {
        Vec::new()
    };
    states.sort();
    states.dedup();
    vec![
        rule("", &["configmaps"], &["list"], Vec::new()),
        rule("", &["configmaps"], &["create"], Vec::new()),
        rule("", &["configmaps"], &["patch"], states),
        // The task Workflows it wakes (through Argo Server, as the waker).
        rule("argoproj.io", &["workflows"], &["list"], Vec::new()),
        task_results(),
    ]
}

/// Context of the `dispatch` template in `workflows/stages.yaml.j2` (under `dispatch`).
pub fn dispatch(plan: &Plan, names: &Names) -> Value {
    let project = &plan.project;
    let pairs = [
        ("PROJECT", project.name.clone()),
        ("NAMESPACE", project.namespace.clone()),
        ("RUN", names.run.to_string()),
        ("STAGES", names.stages.to_string()),
        ("STATE_PREFIX", names.state_prefix()),
        ("TASK_PREFIX", names.task_workflow_prefix()),
        ("MAX_OPEN", plan.defaults.max_open_tasks.to_string()),
        ("GRAPH_DIR", "/graph".to_owned()),
        ("GRAPH_MAPS", plan.graph_maps.len().to_string()),
        ("END_TEMPLATE", crate::render::context::END_WAIT_TEMPLATE.to_owned()),
        ("ARGO_SERVER", plan.access.argo_server.clone()),
        ("KUBE_API", "https://kubernetes.default.svc".to_owned()),
        ("SECRETS_DIR", "/secrets".to_owned()),
    ];
    let graph_maps: Vec<String> = (0..plan.graph_maps.len()).map(|k| names.graph_map(k).to_string()).collect();
    map([
        ("template", Value::from(crate::render::context::DISPATCH_TEMPLATE)),
        ("service_account", Value::from(names.of("dispatch").as_str())),
        ("mutex", Value::from(names.of("dispatch").as_str())),
        ("max_open", Value::from(plan.defaults.max_open_tasks)),
        ("graph_maps", ser(graph_maps)),
        ("waker_secret", Value::from(names.of("waker").as_str())),
        ("ca_secret", Value::from(names.of("argo-server-ca").as_str())),
        ("image", Value::from(IMAGE)),
        ("env", env(&pairs)),
        ("source", block(&dispatch_script(), 10)),
    ])
}

/// The rules of the press's ServiceAccount: read and delete the run (by its name), create
/// Workflows (RBAC cannot narrow a create by name).
pub fn press_rules(names: &Names) -> Vec<Rule> {
    vec![
        rule("argoproj.io", &["workflows"], &["get", "delete"], vec![names.run.to_string()]),
        rule("argoproj.io", &["workflows"], &["create"], Vec::new()),
        task_results(),
    ]
}

/// The Workflow the play Sensors create for one delivery, before its name is completed: the
/// trigger parameter [`press_parameters`] writes `<project>-press-<delivery hash>` over it.
pub fn press_workflow(plan: &Plan, names: &Names) -> serde_json::Value {
    let press = names.of("press");
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": format!("{press}-0"),
            "namespace": plan.project.namespace,
            "labels": common_labels(plan, "press"),
        },
        "spec": {"workflowTemplateRef": {"name": press.to_string()}},
    })
}

/// The trigger parameters of the play Sensors' `k8s` trigger (the shape `events.rs` renders):
/// the launcher's name from the delivery id, so a replayed delivery creates nothing new.
pub fn press_parameters(names: &Names, dependency: &str) -> Vec<serde_json::Value> {
    vec![json!({
        "dependency": dependency,
        "source": "dataTemplate",
        "value": format!("{}-{DELIVERY_HASH}", names.of("press")),
        "dest": "metadata.name",
        "operation": "overwrite",
    })]
}

/// The GitHub REST API of the project's host.
pub fn github_api(plan: &Plan) -> String {
    let host = plan
        .project
        .repository_url
        .strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("github.com");
    if host == "github.com" { "https://api.github.com".to_owned() } else { format!("https://{host}/api/v3") }
}

/// The script indented for the template's block scalar. Our own text (tested to hold no `{{`
/// and no line a block scalar would end at), so it is printed as is.
fn block(script: &str, indent: usize) -> Value {
    let pad = " ".repeat(indent);
    let lines: Vec<String> =
        script.lines().map(|line| if line.is_empty() { String::new() } else { format!("{pad}{line}") }).collect();
    Value::from_safe_string(lines.join("\n"))
}

fn env(pairs: &[(&str, String)]) -> Value {
    let list: Vec<BTreeMap<&str, &str>> =
        pairs.iter().map(|(name, value)| BTreeMap::from([("name", *name), ("value", value.as_str())])).collect();
    ser(list)
}

fn map<const N: usize>(entries: [(&'static str, Value); N]) -> Value {
    Value::from(BTreeMap::from(entries))
}

fn ser<T: serde::Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// Context of `workflows/reconcile.yaml.j2`.
pub fn reconcile(plan: &Plan, names: &Names) -> Value {
    let name = names.of("reconcile");
    let project = &plan.project;
    let pairs = [
        ("PROJECT", project.name.clone()),
        ("NAMESPACE", project.namespace.clone()),
        ("REPOSITORY", project.repository_slug.clone()),
        ("BASE_BRANCH", project.base_branch.clone()),
        ("STATE_PREFIX", names.state_prefix()),
        ("TASK_PREFIX", names.task_workflow_prefix()),
        ("GATE_TEMPLATE", GATE_WAIT_TEMPLATE.to_owned()),
        ("GITHUB_API", github_api(plan)),
        ("GITHUB_PAGES", GITHUB_PAGES.to_string()),
        ("ARGO_SERVER", plan.access.argo_server.clone()),
        ("KUBE_API", "https://kubernetes.default.svc".to_owned()),
        ("SECRETS_DIR", "/secrets".to_owned()),
    ];
    map([
        ("name", Value::from(name.as_str())),
        ("namespace", Value::from(project.namespace.as_str())),
        ("labels", ser(common_labels(plan, "reconcile"))),
        ("schedule", Value::from(SCHEDULE)),
        ("starting_deadline_seconds", Value::from(STARTING_DEADLINE_SECONDS)),
        ("deadline_seconds", Value::from(RECONCILE_DEADLINE_SECONDS)),
        ("service_account", Value::from(name.as_str())),
        ("github_secret", Value::from(names.of("github").as_str())),
        ("waker_secret", Value::from(names.of("waker").as_str())),
        ("ca_secret", Value::from(names.of("argo-server-ca").as_str())),
        ("image", Value::from(IMAGE)),
        ("env", env(&pairs)),
        ("source", block(&reconcile_script(), 12)),
        (
            "dispatch",
            if plan.tasks.is_empty() {
                Value::from(false)
            } else {
                map([
                    ("stages", Value::from(names.stages.as_str())),
                    ("template", Value::from(crate::render::context::DISPATCH_TEMPLATE)),
                ])
            },
        ),
    ])
}

/// Context of `workflows/press.yaml.j2`.
pub fn press(plan: &Plan, names: &Names) -> Value {
    let name = names.of("press");
    let project = &plan.project;
    // The new run: the same object as `run/<project>.yaml`.
    let run = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": names.run.to_string(), "namespace": project.namespace, "labels": common_labels(plan, "run")},
        "spec": {"workflowTemplateRef": {"name": names.orchestrator.to_string()}},
    });
    let pairs = [
        ("NAMESPACE", project.namespace.clone()),
        ("RUN", names.run.to_string()),
        ("RUN_MANIFEST", run.to_string()),
        // The launcher's own name (`<project>-press-<hex>`, from the delivery), for the run's
        // `pressplay.dev/pressed-by` annotation.
        ("PRESS_NAME", "{{workflow.name}}".to_owned()),
        ("DELETE_WAIT_SECONDS", "120".to_owned()),
        ("KUBE_API", "https://kubernetes.default.svc".to_owned()),
    ];
    map([
        ("name", Value::from(name.as_str())),
        ("namespace", Value::from(project.namespace.as_str())),
        ("labels", ser(common_labels(plan, "press"))),
        ("service_account", Value::from(name.as_str())),
        ("deadline_seconds", Value::from(PRESS_DEADLINE_SECONDS)),
        ("ttl_after_success_seconds", Value::from(plan.defaults.ttl_after_success_seconds)),
        ("ttl_after_failure_seconds", Value::from(plan.defaults.ttl_after_failure_seconds)),
        ("image", Value::from(IMAGE)),
        ("env", env(&pairs)),
        ("source", block(&press_script(), 10)),
    ])
}

/// The documents of this module, through the renderer's `doc` (template, kind, name, install,
/// context); nothing without events.
pub fn render(
    plan: &Plan,
    names: &Names,
    doc: &dyn Fn(&'static str, &'static str, String, bool, Value) -> Result<Document, RenderError>,
) -> Result<Vec<Document>, RenderError> {
    let mut docs = Vec::new();
    if !reconciles(plan) {
        return Ok(docs);
    }
    let namespace = plan.project.namespace.as_str();
    let mut components = vec![("reconcile", reconcile_rules(plan, names))];
    if plan.events.is_some() {
        components.push(("press", press_rules(names)));
    }
    for (component, rules) in components {
        let account = names.of(component).to_string();
        let labels = common_labels(plan, component);
        let simple = map([
            ("name", Value::from(account.as_str())),
            ("namespace", Value::from(namespace)),
            ("labels", ser(&labels)),
        ]);
        docs.push(doc(super::env::SERVICE_ACCOUNT, "ServiceAccount", account.clone(), true, simple)?);
        let binding = map([
            ("name", Value::from(account.as_str())),
            ("namespace", Value::from(namespace)),
            ("labels", ser(&labels)),
            ("subject", Value::from(account.as_str())),
            ("subject_namespace", Value::from(namespace)),
        ]);
        docs.push(doc(super::env::ROLE_BINDING, "RoleBinding", account.clone(), true, binding)?);
        let rules: Vec<serde_json::Value> = rules
            .into_iter()
            .map(|r| {
                let mut out = json!({"api_groups": [r.group], "resources": r.resources, "verbs": r.verbs});
                if !r.names.is_empty() {
                    out["resource_names"] = json!(r.names);
                }
                out
            })
            .collect();
        let role = map([
            ("name", Value::from(account.as_str())),
            ("namespace", Value::from(namespace)),
            ("labels", ser(&labels)),
            ("rules", ser(rules)),
        ]);
        docs.push(doc(super::env::ROLE, "Role", account, true, role)?);
    }
    docs.push(doc(RECONCILE, "CronWorkflow", names.of("reconcile").to_string(), true, reconcile(plan, names))?);
    if plan.events.is_some() {
        docs.push(doc(PRESS, "WorkflowTemplate", names.of("press").to_string(), true, press(plan, names))?);
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_hold_no_argo_tag_and_no_template_delimiters() {
        for script in [reconcile_script(), press_script(), dispatch_script()] {
            assert!(!script.contains("{{"), "Argo would substitute in the script");
            for delimiter in ["[[", "[%", "[#"] {
                assert!(!script.contains(delimiter), "{delimiter}");
            }
            assert!(!script.contains('\t'));
        }
    }

    #[test]
    fn block_indents_every_non_empty_line() {
        let out = block("a\n\n  b\n", 4);
        assert_eq!(out.as_str().unwrap(), "    a\n\n      b");
    }
}
