//! The event side holds together: every Sensor targets something that exists in the same
//! render (the origin project's Sensors kept firing at suspend nodes a refactor had removed),
//! event data reaches workflows only as base64 or regex-checked digits, and duplicated
//! deliveries create one unit of work.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sha2::Digest as _;

use crate::common::{diagnostics, documents, render_text};

const BACKLOG: &str = "project:\n  name: shop\n  repository: acme/shop\ntasks:\n  - id: 1\n    title: One\n  - id: 2\n    title: Two\n    kind: docs\n    dependencies: [1]\n";

/// Every document of a render, by (kind, name).
fn objects(text: &str) -> BTreeMap<(String, String), Value> {
    let generated = render_text(text).unwrap_or_else(|e| panic!("{}", diagnostics(&e)));
    documents(&generated.files)
        .into_iter()
        .map(|(_, doc)| {
            let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            ((doc["kind"].as_str().unwrap().to_owned(), name), doc)
        })
        .collect()
}

fn of_kind<'a>(objects: &'a BTreeMap<(String, String), Value>, kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|((k, _), _)| k == kind).map(|(_, v)| v).collect()
}

fn get<'a>(objects: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    objects.get(&(kind.to_owned(), name.to_owned())).unwrap_or_else(|| panic!("no {kind} `{name}` in the render"))
}

fn template<'a>(workflow_template: &'a Value, name: &str) -> Option<&'a Value> {
    workflow_template["spec"]["templates"].as_array().unwrap().iter().find(|t| t["name"] == name)
}

fn input_names(template: &Value) -> BTreeSet<String> {
    template["inputs"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The verbs a component's Role grants on a resource.
fn verbs(objects: &BTreeMap<(String, String), Value>, account: &str, resource: &str) -> BTreeSet<String> {
    let role = get(objects, "Role", account);
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["resources"].as_array().unwrap().iter().any(|r| r == resource))
        .flat_map(|rule| rule["verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()))
        .collect()
}

/// Checks every reference a Sensor makes against the same render.
fn check_cross_references(objects: &BTreeMap<(String, String), Value>) {
    let sources = of_kind(objects, "EventSource");
    assert_eq!(sources.len(), 1);
    let source = sources[0];
    let stages = of_kind(objects, "WorkflowTemplate")
        .into_iter()
        .find(|wt| wt["metadata"]["annotations"]["pressplay.dev/role"] == "stages")
        .unwrap();
    let orchestrator = of_kind(objects, "WorkflowTemplate")
        .into_iter()
        .find(|wt| wt["metadata"]["annotations"]["pressplay.dev/role"] == "orchestrator")
        .unwrap();

    // The webhook secret is one the ExternalSecret fills.
    let github = source["spec"]["github"].as_object().unwrap();
    for (_, event) in github {
        let secret = &event["webhookSecret"];
        let external = get(objects, "ExternalSecret", secret["name"].as_str().unwrap());
        assert!(external["spec"]["data"].as_array().unwrap().iter().any(|d| d["secretKey"] == secret["key"]));
    }

    let sensors = of_kind(objects, "Sensor");
    assert_eq!(sensors.len(), 12, "one Sensor per reaction and source");
    for sensor in sensors {
        let sensor_name = sensor["metadata"]["name"].as_str().unwrap();
        let account = sensor["spec"]["template"]["serviceAccountName"].as_str().unwrap();
        get(objects, "ServiceAccount", account);
        if let Some(bus) = sensor["spec"]["eventBusName"].as_str() {
            assert_eq!(source["spec"]["eventBusName"], bus, "{sensor_name}: Sensor and EventSource share the bus");
        }
        for dependency in sensor["spec"]["dependencies"].as_array().unwrap() {
            assert_eq!(dependency["eventSourceName"], source["metadata"]["name"], "{sensor_name}");
            assert!(
                github.contains_key(dependency["eventName"].as_str().unwrap()),
                "{sensor_name}: unknown event name"
            );
            for filter in dependency["filters"]["data"].as_array().unwrap() {
                if filter["type"] == "string" {
                    for value in filter["value"].as_array().unwrap() {
                        let value = value.as_str().unwrap();
                        assert!(
                            value.starts_with('^') && value.ends_with('$'),
                            "{sensor_name}: unanchored filter `{value}`"
                        );
                    }
                }
            }
        }
        for trigger in sensor["spec"]["triggers"].as_array().unwrap() {
            let template = &trigger["template"];
            assert!(trigger["rateLimit"]["requestsPerUnit"].as_u64().unwrap() > 0, "{sensor_name}: no rate limit");
            if let Some(k8s) = template.get("k8s") {
                let resource = &k8s["source"]["resource"];
                let operation = k8s["operation"].as_str().unwrap();
                match resource["kind"].as_str().unwrap() {
                    "Workflow" => {
                        assert_eq!(operation, "create");
                        assert!(
                            verbs(objects, account, "workflows").contains("create"),
                            "{sensor_name}: may not create workflows"
                        );
                        let target = resource["spec"]["workflowTemplateRef"]["name"].as_str().unwrap();
                        let target = get(objects, "WorkflowTemplate", target);
                        let declared: Vec<&Value> = target["spec"]["arguments"]["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|p| &p["name"])
                            .collect();
                        let given: Vec<&Value> = resource["spec"]["arguments"]["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|p| &p["name"])
                            .collect();
                        assert_eq!(declared, given, "{sensor_name}: arguments differ from the WorkflowTemplate's");
                        for parameter in k8s["parameters"].as_array().into_iter().flatten() {
                            let dest = parameter["dest"].as_str().unwrap();
                            if let Some(index) =
                                dest.strip_prefix("spec.arguments.parameters.").and_then(|d| d.strip_suffix(".value"))
                            {
                                assert!(
                                    index.parse::<usize>().unwrap() < given.len(),
                                    "{sensor_name}: dest {dest} pads the list"
                                );
                            }
                        }
                    }
                    "ConfigMap" => {
                        assert_eq!(operation, "patch");
                        for verb in ["create", "get", "patch"] {
                            assert!(
                                verbs(objects, account, "configmaps").contains(verb),
                                "{sensor_name}: may not {verb} configmaps"
                            );
                        }
                        // The state the Sensor writes is the state the orchestrator reads.
                        let prefix = resource["metadata"]["name"].as_str().unwrap();
                        let read = orchestrator.to_string();
                        assert!(
                            read.contains(&format!("\"name\":\"{prefix}1\"")),
                            "orchestrator does not read `{prefix}<n>`"
                        );
                        // The values the gate reads: "true" merged, "closed" closed unmerged.
                        let expected = if sensor_name.ends_with("-merge-closed") { "closed" } else { "true" };
                        assert_eq!(resource["data"]["merged"], expected, "{sensor_name}");
                        // No Secret: nothing the wake-up needs can stop the record.
                        assert!(!sensor.to_string().contains("secretKeyRef"), "{sensor_name} mounts a Secret");
                    }
                    other => panic!("{sensor_name}: unexpected resource kind {other}"),
                }
            } else {
                let http = &template["http"];
                let url = http["url"].as_str().unwrap();
                let run = of_kind(objects, "Workflow");
                assert_eq!(run.len(), 1, "one run Workflow");
                assert!(url.ends_with(&format!("/{}/resume", run[0]["metadata"]["name"].as_str().unwrap())), "{url}");
                assert_eq!(run[0]["spec"]["workflowTemplateRef"]["name"], orchestrator["metadata"]["name"]);
                let selector = http["payload"][0]["src"]["dataTemplate"].as_str().unwrap();
                let wait = selector.strip_prefix("templateName=").unwrap().split(',').next().unwrap();
                let wait_template = template_of(stages, wait);
                assert!(
                    wait_template.get("suspend").is_some(),
                    "the wake-up target `{wait}` is not a suspend template"
                );
                let inputs = input_names(wait_template);
                let parts: Vec<&str> =
                    selector.split(',').filter_map(|p| p.strip_prefix("inputs.parameters.")).collect();
                assert_eq!(parts.len(), 2, "{selector}");
                for part in parts {
                    let input = part.split('.').next().unwrap();
                    assert!(inputs.contains(input), "`{wait}` has no input `{input}`");
                }
            }
        }
    }

    // Every event-driven workflow calls an agent template that exists, with the inputs it declares.
    for wt in of_kind(objects, "WorkflowTemplate") {
        let role = wt["metadata"]["annotations"]["pressplay.dev/role"].as_str().unwrap();
        if ["stages", "orchestrator", "part"].contains(&role) {
            continue;
        }
        let step = &wt["spec"]["templates"][0]["steps"][0][0];
        assert_eq!(step["templateRef"]["name"], stages["metadata"]["name"]);
        let agent = template_of(stages, step["templateRef"]["template"].as_str().unwrap());
        let passed: BTreeSet<String> = step["arguments"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        let required: BTreeSet<String> = agent["inputs"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p.get("default").is_none())
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(required.is_subset(&passed), "{role}: {required:?} not all passed");
        assert!(verbs(objects, agent["serviceAccountName"].as_str().unwrap(), "coderuns").contains("create"));
    }

    // Every chain step calls an agent template that exists.
    for chain in stages["spec"]["templates"].as_array().unwrap() {
        for group in chain["steps"].as_array().into_iter().flatten() {
            for step in group.as_array().unwrap() {
                template_of(stages, step["template"].as_str().unwrap());
            }
        }
    }
}

fn all_text(objects: &BTreeMap<(String, String), Value>) -> String {
    objects.values().map(Value::to_string).collect()
}

fn template_of<'a>(workflow_template: &'a Value, name: &str) -> &'a Value {
    template(workflow_template, name).unwrap_or_else(|| panic!("no template `{name}`"))
}

#[test]
fn every_sensor_targets_what_the_same_render_defines() {
    check_cross_references(&objects(BACKLOG));
}

#[test]
fn removing_stages_removes_what_called_them_and_nothing_dangles() {
    let text = BACKLOG.replace("tasks:\n", "defaults:\n  pipeline: [author]\ntasks:\n");
    let objects = objects(&text);
    check_cross_references(&objects);
    let stages =
        of_kind(&objects, "WorkflowTemplate").into_iter().find(|wt| wt["metadata"]["name"] == "shop-stages").unwrap();
    assert!(template(stages, "coderun-author").is_some());
    assert!(template(stages, "coderun-lint").is_none(), "a removed stage keeps its template");
    assert!(!all_text(&objects).contains("coderun-lint"));
    // The event-driven agents stay: they do not depend on the pipeline.
    assert!(template(stages, "coderun-pr-comment").is_some());
}

#[test]
fn disabling_events_removes_the_event_side_but_not_the_gate() {
    let text = BACKLOG.replace("tasks:\n", "events:\n  enabled: false\ntasks:\n");
    let objects = objects(&text);
    for kind in ["EventSource", "Sensor", "EventBus", "ExternalSecret"] {
        assert!(of_kind(&objects, kind).is_empty(), "{kind} rendered with events off");
    }
    // Tasks still wait for their merge, pod-less; the reconcile CronWorkflow reads it from GitHub.
    assert!(all_text(&objects).contains("gate-wait"));
}

#[test]
fn an_unsigned_webhook_needs_an_explicit_flag() {
    let text = BACKLOG.replace("tasks:\n", "events:\n  webhookSecret: none\ntasks:\n");
    let err = render_text(&text).unwrap_err();
    assert!(diagnostics(&err).contains("--insecure-webhook"), "{}", diagnostics(&err));

    let generated =
        crate::common::render_files(&[("r.yaml", &text)], "r.yaml", |options, _| options.load.insecure_webhook = true)
            .unwrap();
    let source = generated.files.iter().find(|(p, _)| p.contains("eventsource")).unwrap().1;
    assert!(!source.contains("webhookSecret"));
}

#[test]
fn event_types_are_listed_never_a_wildcard_and_filters_drop_bots() {
    let objects = objects(BACKLOG);
    let source = of_kind(&objects, "EventSource")[0];
    let events: Vec<&str> =
        source["spec"]["github"]["shop"]["events"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(!events.contains(&"*") && events.len() >= 6);
    for sensor in of_kind(&objects, "Sensor") {
        let name = sensor["metadata"]["name"].as_str().unwrap();
        let text = sensor.to_string();
        if name.starts_with("shop-ci-") {
            assert!(
                text.contains("pressplay-ci-failure[bot]"),
                "{name} lets the CI-failure agent loop on its own fixes"
            );
        } else if !name.starts_with("shop-merge") {
            assert!(text.contains("\"path\":\"body.sender.type\""), "{name} does not drop bots");
            assert!(text.contains("pressplay-author[bot]"), "{name} does not drop the agents' logins");
        }
    }
}

/// Every value a Sensor copies from an event into a Workflow is base64, a regex-checked task
/// number, a JSON number, or a hash: never raw text.
#[test]
fn event_data_reaches_workflows_only_in_safe_forms() {
    let objects = objects(BACKLOG);
    for sensor in of_kind(&objects, "Sensor") {
        for trigger in sensor["spec"]["triggers"].as_array().unwrap() {
            let parameters = trigger["template"]["k8s"]["parameters"].as_array().into_iter().flatten();
            let payload = trigger["template"]["http"]["payload"].as_array().into_iter().flatten();
            for parameter in parameters.chain(payload) {
                let src = &parameter["src"];
                let safe = if let Some(key) = src["dataKey"].as_str() {
                    // A pull request number: a JSON number, or the empty default.
                    key.ends_with(".number") || key.ends_with("merge_commit_sha")
                } else {
                    let template = src["dataTemplate"].as_str().unwrap();
                    template.ends_with("| b64enc }}")
                        || template.contains("regexFind \"^task/[0-9]{1,16}\"")
                        || template.contains("regexMatch \"^task-[0-9]{1,16}$\"")
                        || template.contains("sha256sum | trunc 16")
                        || template.ends_with("int64 .Input.body.issue.number }}")
                };
                assert!(safe, "{}: unsafe parameter {parameter}", sensor["metadata"]["name"]);
            }
        }
    }
}

/// A tiny model of the cluster a Sensor writes to: `create` fails on an existing name,
/// `patch` merges. Enough to show what duplicated deliveries do.
#[derive(Default)]
struct Cluster {
    objects: BTreeMap<String, Value>,
    created: usize,
}

impl Cluster {
    fn apply(&mut self, operation: &str, object: Value) {
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        match operation {
            "create" => {
                if let std::collections::btree_map::Entry::Vacant(slot) = self.objects.entry(name) {
                    slot.insert(object);
                    self.created += 1;
                }
            }
            "patch" => {
                let entry = self.objects.entry(name).or_insert_with(|| serde_json::json!({}));
                merge(entry, &object);
            }
            other => panic!("unexpected operation {other}"),
        }
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// The object a k8s trigger writes for an event, with the parameter forms this project uses
/// evaluated the way Argo Events evaluates them.
fn trigger_object(trigger: &Value, event: &Value) -> (String, Value) {
    let k8s = &trigger["template"]["k8s"];
    let mut resource = k8s["source"]["resource"].clone();
    for parameter in k8s["parameters"].as_array().into_iter().flatten() {
        let src = &parameter["src"];
        let value = match (src["dataKey"].as_str(), src["dataTemplate"].as_str()) {
            (Some(key), _) => lookup(event, key),
            (_, Some(template)) => evaluate(template, event),
            _ => unreachable!(),
        };
        // sjson paths escape dots in keys with a backslash.
        let dest_text = parameter["dest"].as_str().unwrap().replace("\\.", "\u{0}");
        let dest: Vec<String> = dest_text.split('.').map(|p| p.replace('\u{0}', ".")).collect();
        let slot = dest.iter().fold(&mut resource, |at, key| match key.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[key.as_str()],
        });
        match parameter["operation"].as_str().unwrap_or("overwrite") {
            "append" => *slot = Value::from(format!("{}{value}", slot.as_str().unwrap_or_default())),
            _ => *slot = Value::from(value),
        }
    }
    (k8s["operation"].as_str().unwrap().to_owned(), resource)
}

fn lookup(event: &Value, path: &str) -> String {
    let value = path.split('.').fold(event, |at, key| &at[key]);
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The dataTemplate forms this project uses, evaluated as Go's text/template with sprig would.
fn evaluate(template: &str, event: &Value) -> String {
    if let Some((prefix, rest)) = template.split_once("{{ ")
        && let Some((path, _)) = rest.split_once(" | regexFind \"^task/[0-9]{1,16}\"")
    {
        let branch = lookup(event, path.trim_start_matches(".Input."));
        let digits: String =
            branch.strip_prefix("task/").unwrap_or("").chars().take_while(char::is_ascii_digit).take(16).collect();
        let tail = rest.split_once("}}").map_or("", |(_, t)| t);
        return format!("{prefix}{digits}{tail}");
    }
    let delivery = event["body"]["X-GitHub-Delivery"].as_str().unwrap_or_default();
    let hash: String = sha2::Sha256::digest(delivery.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    if let Some(prefix) = template.strip_suffix(pressplay::render::events::DELIVERY_HASH) {
        return format!("{prefix}{}", &hash[..16]);
    }
    if template.ends_with("| b64enc }}") {
        return "ZXZlbnQ=".to_owned();
    }
    if template.contains("regexMatch") {
        return "7".to_owned();
    }
    if let Some(prefix) = template.strip_suffix("{{ int64 .Input.body.issue.number }}") {
        return format!("{prefix}{}", event["body"]["issue"]["number"]);
    }
    panic!("no model for {template}")
}

fn sensor<'a>(objects: &'a BTreeMap<(String, String), Value>, name: &str) -> &'a Value {
    get(objects, "Sensor", name)
}

#[test]
fn a_burst_of_replayed_deliveries_creates_one_unit_of_work() {
    let objects = objects(BACKLOG);
    let comment = serde_json::json!({"body": {
        "X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "action": "created", "comment": {"body": "please fix", "author_association": "OWNER"},
        "issue": {"number": 12, "labels": [{"name": "task-7"}], "pull_request": {"url": "https://api.github.com/x"}},
    }});
    let fix = &sensor(&objects, "shop-pr-comment")["spec"]["triggers"][0];
    let play = &sensor(&objects, "shop-play-comment")["spec"]["triggers"][0];
    let mut issue = comment.clone();
    issue["body"]["X-GitHub-Event"] = "issues".into();
    let triage = &sensor(&objects, "shop-triage")["spec"]["triggers"][0];
    let merge = &sensor(&objects, "shop-merge")["spec"]["triggers"][0];

    let mut cluster = Cluster::default();
    for _ in 0..100 {
        for trigger in [fix, play, triage] {
            let (operation, object) = trigger_object(trigger, &comment);
            cluster.apply(&operation, object);
        }
    }
    assert_eq!(cluster.created, 3, "100 replays of one delivery: one remediation, one run, one triage");
    assert!(cluster.objects.contains_key("shop-play"));
    assert!(cluster.objects.keys().any(|k| k.starts_with("shop-fix-") && k.len() == "shop-fix-".len() + 16));
    assert!(cluster.objects.contains_key("shop-triage-12"));

    // A different delivery of a new comment is new work.
    let mut other = comment.clone();
    other["body"]["X-GitHub-Delivery"] = "0a1b2c3d-0000-0000-0000-000000000000".into();
    let (operation, object) = trigger_object(fix, &other);
    cluster.apply(&operation, object);
    assert_eq!(cluster.created, 4);

    // The merge record is idempotent: a hundred deliveries leave the same state as one.
    let merged = serde_json::json!({"body": {
        "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-1", "action": "closed",
        "pull_request": {"number": 31, "merged": true, "merge_commit_sha": "0123abcd",
                         "head": {"ref": "task/7-orders-api"}, "base": {"ref": "main"}},
    }});
    let mut once = Cluster::default();
    let (operation, object) = trigger_object(merge, &merged);
    once.apply(&operation, object);
    let mut many = Cluster::default();
    for _ in 0..100 {
        let (operation, object) = trigger_object(merge, &merged);
        many.apply(&operation, object);
    }
    assert_eq!(once.objects, many.objects);
    let state = &many.objects["shop-task-7"];
    assert_eq!(state["data"]["merged"], "true");
    assert_eq!(state["data"]["pr"], "31");
    assert_eq!(state["data"]["task-number"], "7");
    let _ = issue;
}
