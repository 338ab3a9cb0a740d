//! The event side holds together: every Sensor targets something that exists in the same
//! render (the origin project's Sensors kept firing at suspend nodes a refactor had removed),
//! event data reaches workflows only as base64 or regex-checked digits, and duplicated
//! deliveries create one unit of work.

use std::collections::{BTreeMap, BTreeSet};

use pressplay::model::events::{Action, Delivery, deliver};
use serde_json::Value;

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
                        let read = stages.to_string();
                        assert!(
                            read.contains(&format!("\"name\":\"{prefix}{{{{inputs.parameters.task-number}}}}\"")),
                            "the merge gate does not read `{prefix}<n>`"
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
                // The task's own Workflow, named as the dispatcher names it, from the same digits.
                let url = trigger["parameters"][0]["src"]["dataTemplate"].as_str().unwrap();
                assert_eq!(trigger["parameters"][0]["dest"], "http.url");
                let dispatch = template_of(stages, "dispatch");
                let prefix =
                    dispatch["script"]["env"].as_array().unwrap().iter().find(|e| e["name"] == "TASK_PREFIX").unwrap()
                        ["value"]
                        .as_str()
                        .unwrap();
                let namespace = orchestrator["metadata"]["namespace"].as_str().unwrap();
                let expected = format!("/api/v1/workflows/{namespace}/{prefix}{{{{ ");
                assert!(url.contains(&expected) && url.ends_with("}}/resume"), "{url}");
                assert!(http["url"].as_str().unwrap().ends_with(&format!("/{prefix}0/resume")));
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
        // The press launcher's template runs a script, not an agent (`lifecycle.rs`).
        let Some(role) = wt["metadata"]["annotations"]["pressplay.dev/role"].as_str() else { continue };
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
    for kind in ["EventSource", "Sensor", "EventBus"] {
        assert!(of_kind(&objects, kind).is_empty(), "{kind} rendered with events off");
    }
    // Tasks still wait for their merge, pod-less; the reconcile CronWorkflow reads it from GitHub
    // with the App credentials, which no longer carry a webhook secret.
    assert!(all_text(&objects).contains("gate-wait"));
    assert_eq!(of_kind(&objects, "CronWorkflow").len(), 1, "the reconcile records merges with events off");
    let secret = &of_kind(&objects, "ExternalSecret")[0];
    let keys: Vec<&str> =
        secret["spec"]["data"].as_array().unwrap().iter().map(|d| d["secretKey"].as_str().unwrap()).collect();
    assert_eq!(keys, ["app-id", "installation-id", "private-key"]);
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
/// `patch` merges (and creates, as Argo Events' k8s trigger does). Enough to show what
/// duplicated deliveries do.
#[derive(Default)]
struct Cluster {
    objects: BTreeMap<String, Value>,
    created: usize,
}

impl Cluster {
    /// Delivers one event to the Sensors and applies what their k8s triggers do.
    fn deliver(&mut self, sensors: &[Value], event: &str, delivery: &str, body: &Value) {
        let delivery = Delivery { event: event.into(), id: delivery.into(), body: body.clone() };
        for fired in deliver(sensors, &delivery).fired {
            if let Ok(Action::K8s { operation, object, .. }) = fired.action {
                self.apply(&operation, object);
            }
        }
    }

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

#[test]
fn a_burst_of_replayed_deliveries_creates_one_unit_of_work() {
    let objects = objects(BACKLOG);
    let sensors: Vec<Value> = of_kind(&objects, "Sensor").into_iter().cloned().collect();
    let person = serde_json::json!({"type": "User", "login": "maintainer"});
    let repository = serde_json::json!({"full_name": "acme/shop"});
    let comment = |body: &str| {
        serde_json::json!({
            "action": "created", "sender": person, "repository": repository,
            "comment": {"body": body, "author_association": "OWNER"},
            "issue": {"number": 12, "labels": [{"name": "task-7"}], "html_url": "https://github.com/acme/shop/pull/12",
                      "pull_request": {"url": "https://api.github.com/repos/acme/shop/pulls/12"}},
        })
    };
    let issue = serde_json::json!({
        "action": "opened", "sender": person, "repository": repository,
        "issue": {"number": 12, "author_association": "OWNER", "title": "t", "body": "b"},
    });

    let first = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let mut cluster = Cluster::default();
    for _ in 0..100 {
        cluster.deliver(&sensors, "issue_comment", first, &comment("please fix"));
        cluster.deliver(&sensors, "issue_comment", first, &comment("/play"));
        cluster.deliver(&sensors, "issues", first, &issue);
    }
    assert_eq!(cluster.created, 3, "100 replays of each delivery: one remediation, one press, one triage");
    let named =
        |prefix: &str| cluster.objects.keys().filter(|k| k.starts_with(prefix) && k.len() == prefix.len() + 16).count();
    assert_eq!(named("shop-fix-"), 1, "{:?}", cluster.objects.keys());
    assert_eq!(named("shop-press-"), 1, "{:?}", cluster.objects.keys());
    assert!(cluster.objects.contains_key("shop-triage-12"));

    // A different delivery of a new comment is new work.
    cluster.deliver(&sensors, "issue_comment", "0a1b2c3d-0000-0000-0000-000000000000", &comment("please fix"));
    assert_eq!(cluster.created, 4);

    // The merge record is idempotent: a hundred deliveries leave the same state as one.
    let merged = serde_json::json!({
        "action": "closed", "sender": person, "repository": repository,
        "pull_request": {"number": 31, "merged": true, "merge_commit_sha": "0123abcd",
                         "head": {"ref": "task/7-orders-api", "repo": repository}, "base": {"ref": "main"}},
    });
    let mut once = Cluster::default();
    once.deliver(&sensors, "pull_request", "d-1", &merged);
    let mut many = Cluster::default();
    for i in 0..100 {
        many.deliver(&sensors, "pull_request", &format!("d-{i}"), &merged);
    }
    assert_eq!(once.objects, many.objects);
    let state = &many.objects["shop-task-7"];
    assert_eq!(state["data"]["merged"], "true");
    assert_eq!(state["data"]["pr"], "31");
    assert_eq!(state["data"]["task-number"], "7");
}
