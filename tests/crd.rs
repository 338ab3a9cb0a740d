//! The CodeRun and DocsRun manifests inside the agent templates, with their Argo placeholders
//! filled the way Argo fills them, are objects the CRDs accept: required fields present, typed
//! values typed (taskId an integer, booleans booleans), no field the CRD does not know.
//! The schema check needs `../shared/crds/` and is skipped without it; the type checks always run.

use serde_json::Value;

use crate::common::{render_text, shared};

const BACKLOG: &str = "tasks:\n  - id: 1\n    title: Code\n  - id: docs-1\n    title: Docs\n    kind: docs\n";

/// Sample values for every placeholder the agent templates use.
const SAMPLES: [(&str, &str); 10] = [
    ("{{=sprig.trunc(8, workflow.uid)}}", "5f2b9c1e"),
    ("{{inputs.parameters.attempt}}", "0"),
    ("{{inputs.parameters.pr}}", "31"),
    ("{{inputs.parameters.task-number}}", "42"),
    ("{{inputs.parameters.task-id}}", "docs-1"),
    ("{{inputs.parameters.task-node}}", "t-docs-1"),
    ("{{inputs.parameters.brief-map}}", "pressplay-briefs-0"),
    ("{{inputs.parameters.event}}", "eyJib2R5IjoiZml4IGl0In0="),
    ("{{inputs.parameters.requirements}}", "c2VjcmV0czogW10K"),
    ("{{workflow.name}}", "pressplay-x7k2p"),
];

/// The filled manifests of the agent templates, by kind.
fn filled_manifests() -> Vec<(String, Value)> {
    let generated = render_text(BACKLOG).unwrap();
    let stages = &generated.files["workflowtemplates/pressplay-stages.yaml"];
    let doc: Value = serde_saphyr::from_str(stages).unwrap();
    let mut out = Vec::new();
    for template in doc["spec"]["templates"].as_array().unwrap() {
        let Some(manifest) = template["resource"]["manifest"].as_str() else {
            continue;
        };
        let mut text = manifest.to_owned();
        for (placeholder, value) in SAMPLES {
            text = text.replace(placeholder, value);
        }
        assert!(!text.contains("{{"), "unfilled placeholder in\n{text}");
        let object: Value = serde_saphyr::from_str(&text).unwrap();
        out.push((object["kind"].as_str().unwrap().to_owned(), object));
    }
    let kinds: std::collections::BTreeSet<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["CodeRun", "DocsRun"]);
    // One template per (kind, role): five stages for code, four for docs (nothing to deploy),
    // and the three event-driven agents.
    assert_eq!(out.len(), 12);
    out
}

#[test]
fn typed_values_keep_their_types() {
    for (kind, object) in filled_manifests() {
        let spec = &object["spec"];
        assert_eq!(object["apiVersion"], "agents.platform/v1");
        match kind.as_str() {
            "CodeRun" => {
                assert_eq!(spec["taskId"], Value::from(42), "taskId must be an integer");
                assert_eq!(spec["contextVersion"], Value::from(1));
                assert_eq!(spec["continueSession"], Value::Bool(false));
                assert_eq!(spec["overwriteMemory"], Value::Bool(false));
                for field in ["service", "repositoryUrl", "docsRepositoryUrl", "workingDirectory", "model", "githubApp"]
                {
                    assert!(spec[field].is_string(), "{field} must be a string");
                }
                assert!(spec["env"].as_object().unwrap().values().all(Value::is_string));
            }
            _ => {
                assert_eq!(spec["includeCodebase"], Value::Bool(false));
                for field in ["repositoryUrl", "workingDirectory", "sourceBranch", "githubApp", "model"] {
                    assert!(spec[field].is_string(), "{field} must be a string");
                }
            }
        }
        let labels = object["metadata"]["labels"].as_object().unwrap();
        assert!(labels.values().all(|v| v.as_str().is_some_and(|s| s.len() <= 63)));
        assert_eq!(object["metadata"]["annotations"]["pressplay.dev/task-id"], "docs-1");
        for key in [
            "pressplay.dev/project",
            "pressplay.dev/repository",
            "pressplay.dev/task-number",
            "pressplay.dev/pr",
            "pressplay.dev/stage",
        ] {
            assert!(labels.contains_key(key), "{kind} lacks the correlation label {key}");
        }
    }
}

/// Adds `additionalProperties: false` wherever a schema lists properties, as the API server's
/// pruning would silently drop unknown fields and we want to know about them.
fn strict(schema: &mut Value) {
    if let Some(object) = schema.as_object_mut() {
        if object.contains_key("properties") && !object.contains_key("additionalProperties") {
            object.insert("additionalProperties".into(), Value::Bool(false));
        }
        for value in object.values_mut() {
            strict(value);
        }
    } else if let Some(items) = schema.as_array_mut() {
        items.iter_mut().for_each(strict);
    }
}

#[test]
fn manifests_pass_the_crd_schemas() {
    let Some(shared) = shared() else {
        eprintln!("skipped: ../shared/crds not found (CI has it)");
        return;
    };
    for (kind, object) in filled_manifests() {
        let file = shared.join("crds").join(format!("{}-crd.yaml", kind.to_lowercase()));
        let crd: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let mut schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
        strict(&mut schema);
        // metadata is validated by the API server's ObjectMeta rules, not by the CRD schema.
        schema["properties"]["apiVersion"] = serde_json::json!({"type": "string"});
        schema["properties"]["kind"] = serde_json::json!({"type": "string"});
        schema["properties"]["metadata"] = serde_json::json!({"type": "object"});
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(&object).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{kind} does not match {}:\n{}", file.display(), errors.join("\n"));

        // And the schema can fail: a string taskId or a missing required field is rejected.
        let mut broken = object.clone();
        if kind == "CodeRun" {
            broken["spec"]["taskId"] = Value::from("42");
        } else {
            broken["spec"].as_object_mut().unwrap().remove("sourceBranch");
        }
        assert!(!validator.is_valid(&broken), "the {kind} schema check cannot fail");
    }
}
