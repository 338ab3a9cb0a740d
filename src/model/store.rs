//! The API server of the model: an in-memory object store with the few behaviours our manifests
//! rely on.
//!
//! Rules, each from Kubernetes (apimachinery / kubectl) as Argo's executor and Argo Events call it:
//! * `create` of an existing name fails with AlreadyExists; `generateName` appends five characters
//!   (`apiserver/pkg/storage/names`; here a counter, so runs are reproducible);
//! * a merge patch (`application/merge-patch+json`, RFC 7386) sets the keys it carries and removes
//!   keys set to null; Argo Events' `patch` creates the object when it is missing
//!   (`argo-events pkg/sensors/triggers/standard-k8s/standard-k8s.go`, `Execute`);
//! * `apply` creates or merges (the model merges the whole manifest; kubectl's three-way merge only
//!   differs when fields are removed, which our manifests never do);
//! * deleting an object deletes the objects whose `ownerReferences` name it (the garbage
//!   collector, foreground and background alike; the model does it at once);
//! * a kind whose CRD is not installed is an error ("the server doesn't have a resource type").
//!
//! Simplified: no resourceVersion conflicts, no admission, one namespace per object as written.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

/// Identifies an object: kind, namespace, name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// `kind` as in the manifest (`CodeRun`).
    pub kind: String,
    /// Namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// What happened to an object, for the controllers that watch the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Created(Key),
    /// Changed.
    Updated(Key),
    /// Deleted.
    Deleted(Key),
}

/// The object store.
#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    uids: u64,
    /// Kinds that exist beyond the built-in ones (CRDs).
    installed: BTreeSet<String>,
    /// Changes since the last [`Store::drain`].
    changes: Vec<Change>,
    /// The largest object seen, in bytes of JSON, and its key.
    pub largest: (usize, Option<Key>),
    /// Counts every change; [`Store::stamp`].
    stamp: u64,
    /// The stamp of the last change of each key ever changed.
    stamps: HashMap<Key, u64>,
}

/// Kinds the model knows without a CRD.
const BUILT_IN: &[&str] = &["ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding", "Namespace", "Service"];

/// The kind kubectl means by a resource name (`coderuns`, `configmap`, `cm`).
pub fn kind_of_resource(resource: &str) -> String {
    let lower = resource.to_ascii_lowercase();
    let known = [
        ("configmap", "ConfigMap"),
        ("cm", "ConfigMap"),
        ("secret", "Secret"),
        ("workflow", "Workflow"),
        ("wf", "Workflow"),
        ("workflowtemplate", "WorkflowTemplate"),
        ("cronworkflow", "CronWorkflow"),
        ("coderun", "CodeRun"),
        ("docsrun", "DocsRun"),
        ("application", "Application"),
        ("sensor", "Sensor"),
    ];
    let singular = lower.split('.').next().unwrap_or("").trim_end_matches('s');
    known
        .iter()
        .find(|(name, _)| *name == singular || *name == lower)
        .map_or_else(|| resource.to_string(), |(_, kind)| (*kind).to_string())
}

impl Store {
    /// A store with the given CRD kinds installed.
    pub fn new(installed: impl IntoIterator<Item = String>) -> Self {
        Store { installed: installed.into_iter().collect(), ..Store::default() }
    }

    /// Installs a CRD's kind.
    pub fn install(&mut self, kind: &str) {
        self.installed.insert(kind.to_string());
    }

    /// Removes a CRD's kind (and every object of it).
    pub fn uninstall(&mut self, kind: &str) {
        self.installed.remove(kind);
        let gone: Vec<Key> = self.objects.keys().filter(|key| key.kind == kind).cloned().collect();
        for key in &gone {
            self.objects.remove(key);
            self.touch(key);
        }
    }

    /// Whether objects of `kind` can exist.
    pub fn knows(&self, kind: &str) -> bool {
        BUILT_IN.contains(&kind) || self.installed.contains(kind)
    }

    /// The key of an object as written (namespace defaults to `namespace`).
    pub fn key_of(object: &Value, namespace: &str) -> Result<Key, String> {
        let kind = object["kind"].as_str().ok_or("the object has no kind")?.to_string();
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        let ns = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(namespace).to_string();
        Ok(Key { kind, namespace: ns, name })
    }

    /// One object.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Every object of a kind in a namespace, in name order.
    pub fn list(&self, kind: &str, namespace: &str) -> impl Iterator<Item = (&Key, &Value)> {
        // Keys order by kind, namespace, name: the objects of one kind and namespace are a range.
        let first = Key { kind: kind.to_string(), namespace: namespace.to_string(), name: String::new() };
        self.objects.range(first..).take_while(move |(k, _)| k.kind == kind && k.namespace == namespace)
    }

    /// Every object, in key order.
    pub fn all(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.iter()
    }

    /// Changes since the last call.
    pub fn drain(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// A counter of changes: it grows with every create, update and delete.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// Whether the object `key` was created, changed or deleted after [`Store::stamp`] said `stamp`.
    pub fn changed_since(&self, key: &Key, stamp: u64) -> bool {
        self.stamps.get(key).is_some_and(|s| *s > stamp)
    }

    fn touch(&mut self, key: &Key) {
        self.stamp += 1;
        match self.stamps.get_mut(key) {
            Some(s) => *s = self.stamp,
            None => {
                self.stamps.insert(key.clone(), self.stamp);
            }
        }
    }

    fn note_size(&mut self, key: &Key) {
        if let Some(object) = self.objects.get(key) {
            let size = serde_json::to_vec(object).map_or(0, |v| v.len());
            if size > self.largest.0 {
                self.largest = (size, Some(key.clone()));
            }
        }
    }

    /// `create`: AlreadyExists when the name is taken; `generateName` is honoured.
    pub fn create(&mut self, mut object: Value, namespace: &str) -> Result<Key, String> {
        let mut key = Store::key_of(&object, namespace)?;
        if !self.knows(&key.kind) && !is_argo_kind(&key.kind) {
            return Err(format!("the server doesn't have a resource type \"{}\"", key.kind.to_ascii_lowercase()));
        }
        if key.name.is_empty() {
            let prefix = object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .ok_or("the object has neither name nor generateName")?;
            self.uids += 1;
            key.name = format!("{prefix}{:05x}", self.uids);
            object["metadata"]["name"] = Value::String(key.name.clone());
        }
        if self.objects.contains_key(&key) {
            return Err(format!("{} \"{}\" already exists (AlreadyExists)", key.kind, key.name));
        }
        self.uids += 1;
        let metadata = object["metadata"].as_object_mut().ok_or("the object has no metadata")?;
        metadata.insert("namespace".into(), Value::String(key.namespace.clone()));
        let mixed = (self.uids.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32;
        metadata.insert("uid".into(), Value::String(format!("{mixed:08x}-0000-4000-8000-{:012x}", self.uids)));
        self.objects.insert(key.clone(), object);
        self.touch(&key);
        self.note_size(&key);
        self.changes.push(Change::Created(key.clone()));
        Ok(key)
    }

    /// Merge patch of an existing object; with `create_missing`, a missing object is created from
    /// the patch (Argo Events' `patch`).
    pub fn merge_patch(&mut self, patch: &Value, namespace: &str, create_missing: bool) -> Result<Key, String> {
        let key = Store::key_of(patch, namespace)?;
        match self.objects.get_mut(&key) {
            Some(object) => {
                merge(object, patch);
                self.touch(&key);
                self.note_size(&key);
                self.changes.push(Change::Updated(key.clone()));
                Ok(key)
            }
            None if create_missing => self.create(patch.clone(), namespace),
            None => Err(format!("{} \"{}\" not found", key.kind, key.name)),
        }
    }

    /// `kubectl apply`: create, or merge into the existing object.
    pub fn apply(&mut self, object: Value, namespace: &str) -> Result<Key, String> {
        self.merge_patch(&object, namespace, true)
    }

    /// Replaces `path` (a JSON pointer) of an existing object, as a controller writing status does.
    pub fn set(&mut self, key: &Key, pointer: &str, value: Value) -> Result<(), String> {
        let object = self.objects.get_mut(key).ok_or_else(|| format!("{key} not found"))?;
        set_pointer(object, pointer, value);
        self.touch(key);
        self.changes.push(Change::Updated(key.clone()));
        self.note_size(key);
        Ok(())
    }

    /// Deletes an object and, as the garbage collector does, everything it owns.
    pub fn delete(&mut self, key: &Key) -> Result<(), String> {
        let object = self.objects.remove(key).ok_or_else(|| format!("{} \"{}\" not found", key.kind, key.name))?;
        self.touch(key);
        self.changes.push(Change::Deleted(key.clone()));
        if let Some(uid) = object.pointer("/metadata/uid").and_then(Value::as_str) {
            let owned: Vec<Key> = self
                .objects
                .iter()
                .filter(|(_, o)| {
                    o.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in owned {
                let _ = self.delete(&key);
            }
        }
        Ok(())
    }

    /// The keys of `kind` objects in `namespace` whose labels match a selector (`a=b,c=d`).
    pub fn select(&self, kind: &str, namespace: &str, selector: &str) -> Vec<Key> {
        let wanted: Vec<(&str, &str)> = selector.split(',').filter_map(|pair| pair.split_once('=')).collect();
        self.list(kind, namespace)
            .filter(|(_, object)| {
                wanted.iter().all(|(k, v)| {
                    object.pointer("/metadata/labels").and_then(|l| l.get(*k)).and_then(Value::as_str) == Some(*v)
                })
            })
            .map(|(k, _)| k.clone())
            .collect()
    }
}

fn is_argo_kind(kind: &str) -> bool {
    ["Workflow", "WorkflowTemplate", "CronWorkflow", "Sensor", "EventSource", "EventBus", "WorkflowTaskResult"]
        .contains(&kind)
}

/// RFC 7386 merge.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (k, v) in patch {
                if v.is_null() {
                    target.remove(k);
                } else {
                    merge(target.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn set_pointer(object: &mut Value, pointer: &str, value: Value) {
    let mut current = object;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let map = current.as_object_mut().expect("an object");
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), value);
            return;
        }
        current = map.entry((*part).to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
}

/// A value at a dotted path (gjson's plain syntax: `status.phase`, `metadata.labels.a-b`).
pub fn dotted<'v>(object: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = object;
    for part in path.split('.') {
        current = match current {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The text gjson's `String()` gives for a value.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Argo's resource conditions (`workflow/executor/resource.go`, `matchConditions`): the condition
/// is a label selector (`labels.ParseToRequirements`) whose keys are gjson paths into the object;
/// a path that does not exist is an absent label, so `==` and `in` fail on it and `!=` holds.
pub fn condition_holds(condition: &str, object: &Value) -> Result<bool, String> {
    for requirement in split_requirements(condition) {
        let requirement = requirement.trim();
        if requirement.is_empty() {
            continue;
        }
        let (key, op, values) = parse_requirement(requirement)?;
        let actual = dotted(object, key).filter(|v| !v.is_null()).map(text_of);
        let ok = match (op, &actual) {
            ("==" | "=" | "in", Some(a)) => values.iter().any(|v| v == a),
            ("==" | "=" | "in", None) => false,
            ("!=" | "notin", Some(a)) => values.iter().all(|v| v != a),
            ("!=" | "notin", None) => true,
            ("exists", a) => a.is_some(),
            ("!", a) => a.is_none(),
            (">" | "<", Some(a)) => {
                let (a, b) = (
                    a.parse::<i64>().map_err(|e| e.to_string())?,
                    values[0].parse::<i64>().map_err(|e| e.to_string())?,
                );
                if op == ">" { a > b } else { a < b }
            }
            _ => false,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn split_requirements(condition: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in condition.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&condition[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&condition[start..]);
    parts
}

fn parse_requirement(text: &str) -> Result<(&str, &'static str, Vec<String>), String> {
    for op in ["==", "!=", "=", ">", "<"] {
        if let Some((key, value)) = text.split_once(op) {
            let op: &'static str = match op {
                "==" => "==",
                "!=" => "!=",
                "=" => "=",
                ">" => ">",
                _ => "<",
            };
            return Ok((key.trim(), op, vec![value.trim().to_string()]));
        }
    }
    for op in [" notin ", " in "] {
        if let Some((key, rest)) = text.split_once(op) {
            let list = rest.trim().trim_start_matches('(').trim_end_matches(')');
            let op: &'static str = if op.trim() == "in" { "in" } else { "notin" };
            return Ok((key.trim(), op, list.split(',').map(|v| v.trim().to_string()).collect()));
        }
    }
    if let Some(key) = text.strip_prefix('!') {
        return Ok((key.trim(), "!", Vec::new()));
    }
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c)) {
        return Ok((text, "exists", Vec::new()));
    }
    Err(format!("cannot parse the condition {text:?}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conditions_read_paths_as_labels() {
        let object = json!({"status": {"phase": "Succeeded"}, "metadata": {"labels": {"pressplay-task": "7"}}});
        assert!(condition_holds("status.phase == Succeeded", &object).unwrap());
        assert!(!condition_holds("status.phase == Failed", &object).unwrap());
        assert!(
            condition_holds("metadata.labels.pressplay-task == 7,status.phase in (Succeeded, Failed)", &object)
                .unwrap()
        );
        assert!(!condition_holds("status.missing == x", &object).unwrap());
        assert!(condition_holds("status.missing != x", &object).unwrap());
    }

    #[test]
    fn create_refuses_a_taken_name_and_patch_creates() {
        let mut store = Store::default();
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}});
        store.create(cm.clone(), "ns").unwrap();
        assert!(store.create(cm, "ns").unwrap_err().contains("AlreadyExists"));
        let patch = json!({"kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"merged": "true"}});
        let key = store.merge_patch(&patch, "ns", true).unwrap();
        assert_eq!(store.get(&key).unwrap()["data"]["merged"], "true");
        assert!(store.create(json!({"kind": "DocsRun", "metadata": {"name": "d"}}), "ns").is_err());
    }

    #[test]
    fn deleting_an_owner_deletes_what_it_owns() {
        let mut store = Store::new(["CodeRun".to_string()]);
        let owner = store.create(json!({"kind": "Workflow", "metadata": {"name": "w"}}), "ns").unwrap();
        let uid = store.get(&owner).unwrap()["metadata"]["uid"].clone();
        let run = json!({"kind": "CodeRun", "metadata": {"generateName": "r-", "ownerReferences": [{"uid": uid}]}});
        let child = store.create(run, "ns").unwrap();
        assert!(child.name.starts_with("r-"));
        store.delete(&owner).unwrap();
        assert!(store.get(&child).is_none());
    }
}
