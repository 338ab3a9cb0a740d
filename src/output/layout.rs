//! The GitOps layout: where each document goes, the order documents are listed in, and the
//! kustomization that installs them. Users point Argo CD or Flux at this tree, so it is a
//! documented interface (README, "Output layout"); change it only on purpose.
//!
//! ```text
//! kustomization.yaml                     lists everything below except run/
//! rbac/<kind>-<name>.yaml                ServiceAccount, its token Secret, Role, RoleBinding
//! config/<name>.yaml                     ConfigMap (semaphore limits), ExternalSecret
//! events/<kind>-<name>.yaml              EventBus, EventSource, Sensors
//! workflowtemplates/<name>.yaml          stages, orchestrator, parts, event-driven agents, press
//! cronworkflows/<name>.yaml              the reconcile CronWorkflow (events)
//! run/<name>.yaml                        the Workflow to `argo submit` (never synced)
//! ```

use std::collections::BTreeMap;

use crate::render::{Document, header};

/// Kinds in install order (as `helm template` orders them); unknown kinds go last.
pub const KIND_ORDER: [&str; 13] = [
    "Namespace",
    "ServiceAccount",
    "Secret",
    "ExternalSecret",
    "ConfigMap",
    "Role",
    "RoleBinding",
    "Service",
    "EventBus",
    "EventSource",
    "Sensor",
    "WorkflowTemplate",
    "CronWorkflow",
];

/// Name of the kustomization file at the root of the tree.
pub const KUSTOMIZATION: &str = "kustomization.yaml";

/// Sort key of a document: kind order, then name.
pub fn order_key(doc: &Document) -> (usize, &str) {
    let rank = KIND_ORDER.iter().position(|k| *k == doc.kind).unwrap_or(KIND_ORDER.len());
    (rank, doc.name.as_str())
}

/// The path of a document inside the tree, with `/` separators.
pub fn path_of(doc: &Document) -> String {
    let kind = doc.kind.to_ascii_lowercase();
    match doc.kind {
        _ if !doc.install => format!("run/{}.yaml", doc.name),
        "ServiceAccount" | "Secret" | "Role" | "RoleBinding" => format!("rbac/{kind}-{}.yaml", doc.name),
        "ConfigMap" => format!("config/{}.yaml", doc.name),
        "ExternalSecret" => format!("config/externalsecret-{}.yaml", doc.name),
        "EventBus" | "EventSource" | "Sensor" => format!("events/{kind}-{}.yaml", doc.name),
        "WorkflowTemplate" => format!("workflowtemplates/{}.yaml", doc.name),
        "CronWorkflow" => format!("cronworkflows/{}.yaml", doc.name),
        _ => format!("{kind}s/{}.yaml", doc.name),
    }
}

/// Every file of the tree: path → text, including the kustomization.
pub fn tree(docs: &[Document], source_name: &str) -> BTreeMap<String, String> {
    let mut sorted: Vec<&Document> = docs.iter().collect();
    sorted.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    let mut files = BTreeMap::new();
    let mut kustomization = header(source_name);
    kustomization.push_str("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
    for doc in sorted {
        let path = path_of(doc);
        if doc.install {
            kustomization.push_str("  - ");
            kustomization.push_str(&path);
            kustomization.push('\n');
        }
        files.insert(path, doc.text.clone());
    }
    files.insert(KUSTOMIZATION.to_owned(), kustomization);
    files
}

/// The installable documents as one multi-document stream, for `kubectl apply -f -`.
pub fn stream(docs: &[Document]) -> String {
    let mut sorted: Vec<&Document> = docs.iter().filter(|d| d.install).collect();
    sorted.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    let mut out = String::new();
    for (i, doc) in sorted.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&doc.text);
    }
    out
}
