//! The reconcile CronWorkflow and the press launcher (`src/render/lifecycle.rs`): what is
//! rendered, its RBAC, names and Argo tags, and the two scripts run against a fake GitHub,
//! Kubernetes API and Argo Server on the loopback (skipped without python3 or openssl).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{render_file, render_text, root};

fn basic() -> BTreeMap<String, String> {
    render_file(&root().join("examples/basic/requirements.yaml"), "examples/basic/requirements.yaml").unwrap().files
}

fn doc(files: &BTreeMap<String, String>, path: &str) -> Value {
    let text = files.get(path).unwrap_or_else(|| panic!("{path} is not rendered"));
    serde_saphyr::from_str(text).unwrap()
}

#[test]
fn reconcile_and_press_are_rendered_and_installed() {
    let files = basic();
    let kustomization = &files["kustomization.yaml"];
    for path in [
        "cronworkflows/shop-api-reconcile.yaml",
        "workflowtemplates/shop-api-press.yaml",
        "rbac/serviceaccount-shop-api-reconcile.yaml",
        "rbac/role-shop-api-reconcile.yaml",
        "rbac/rolebinding-shop-api-reconcile.yaml",
        "rbac/serviceaccount-shop-api-press.yaml",
        "rbac/role-shop-api-press.yaml",
        "rbac/rolebinding-shop-api-press.yaml",
    ] {
        assert!(files.contains_key(path), "{path}");
        assert!(kustomization.contains(&format!("  - {path}\n")), "{path} is not installed");
    }
    let cron = doc(&files, "cronworkflows/shop-api-reconcile.yaml");
    let spec = &cron["spec"];
    assert_eq!(spec["schedules"], json!(["*/15 * * * *"]));
    assert_eq!(spec["concurrencyPolicy"], "Forbid");
    assert!(spec["startingDeadlineSeconds"].as_u64().unwrap() <= 900);
    assert_eq!(spec["successfulJobsHistoryLimit"], 1);
    assert_eq!(spec["failedJobsHistoryLimit"], 3);
    let workflow = &spec["workflowSpec"];
    assert_eq!(workflow["serviceAccountName"], "shop-api-reconcile");
    assert!(workflow["activeDeadlineSeconds"].as_u64().unwrap() < 900, "ends within one period");
    let press = doc(&files, "workflowtemplates/shop-api-press.yaml");
    assert_eq!(press["spec"]["serviceAccountName"], "shop-api-press");
    assert!(press["spec"]["activeDeadlineSeconds"].as_u64().unwrap() <= 600);
    assert_eq!(press["spec"]["synchronization"]["mutexes"][0]["name"], "shop-api-press");
    for template in [named(workflow, "reconcile"), &press["spec"]["templates"][0]] {
        let script = &template["script"];
        assert!(script["image"].as_str().unwrap().starts_with("python:3.13.5-"), "pinned image");
        assert!(
            script["resources"]["limits"]["memory"].is_string() && script["resources"]["limits"]["cpu"].is_string()
        );
        assert_eq!(script["securityContext"]["allowPrivilegeEscalation"], false);
    }
    // The reconcile mounts only the GitHub App keys it signs with, never the webhook secret.
    let items: Vec<&str> = workflow["volumes"][0]["secret"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["app-id", "installation-id", "private-key"]);
    for volume in workflow["volumes"].as_array().unwrap() {
        assert_eq!(volume["secret"]["optional"], true, "a missing Secret skips one half, not the whole pod");
    }
}

#[test]
fn without_events_the_reconcile_stays_and_the_launcher_goes() {
    let files = render_text("events:\n  enabled: false\ntasks:\n  - id: 1\n    title: One\n").unwrap().files;
    assert!(files.contains_key("cronworkflows/pressplay-reconcile.yaml"), "nothing else would record a merge");
    assert!(files.contains_key("rbac/role-pressplay-reconcile.yaml"));
    assert!(files.contains_key("rbac/serviceaccount-pressplay-waker.yaml"), "the reconcile wakes gates as the waker");
    assert!(!files.keys().any(|p| p.contains("pressplay-press")));
    assert!(!files.values().any(|t| t.contains("pressplay-press")), "no Sensor starts a launcher");
    // Nothing without tasks: no gate to reconcile.
    let empty = render_text("events:\n  enabled: false\ntasks: []\n").unwrap().files;
    assert!(!empty.keys().any(|p| p.starts_with("cronworkflows/")));
}

/// Every `{{...}}` tag of a text.
fn tags(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..].find("}}").map_or(rest.len(), |e| start + e + 2);
        out.push(rest[start..end].to_owned());
        rest = &rest[end..];
    }
    out
}

#[test]
fn argo_tags_are_only_the_intended_ones() {
    let files = basic();
    assert_eq!(tags(&files["cronworkflows/shop-api-reconcile.yaml"]), Vec::<String>::new());
    assert_eq!(tags(&files["workflowtemplates/shop-api-press.yaml"]), ["{{workflow.name}}"]);
    // The play Sensors: only the delivery hash, a Go template of Argo Events, never Argo's.
    for sensor in ["play-comment", "play-push", "play-push-added"] {
        let path = format!("events/sensor-shop-api-{sensor}.yaml");
        let Some(text) = files.get(&path) else { continue };
        let sensor = doc(&files, &path);
        let trigger = &sensor["spec"]["triggers"][0]["template"]["k8s"];
        assert_eq!(trigger["operation"], "create");
        let resource = &trigger["source"]["resource"];
        assert_eq!(resource["kind"], "Workflow");
        assert_eq!(resource["spec"]["workflowTemplateRef"]["name"], "shop-api-press");
        let parameters = trigger["parameters"].as_array().unwrap();
        assert_eq!(parameters.len(), 1);
        assert_eq!(parameters[0]["dest"], "metadata.name");
        assert_eq!(
            parameters[0]["src"]["dataTemplate"],
            "shop-api-press-{{ index .Input.body \"X-GitHub-Delivery\" | sha256sum | trunc 16 }}"
        );
        assert!(tags(text).iter().all(|t| t.contains(".Input.")), "{path}");
    }
}

fn rules(files: &BTreeMap<String, String>, name: &str) -> Value {
    doc(files, &format!("rbac/role-{name}.yaml"))["rules"].clone()
}

#[test]
fn rbac_is_exactly_what_the_scripts_use() {
    let files = basic();
    let states: Vec<String> = (1..=5).map(|n| format!("shop-api-task-{n}")).collect();
    assert_eq!(
        rules(&files, "shop-api-reconcile"),
        json!([
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"], "resourceNames": states},
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["list"]},
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
        ])
    );
    // The dispatcher: the run and the task Workflows, and the task states it reads.
    assert_eq!(
        rules(&files, "shop-api-dispatch"),
        json!([
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["get", "list", "create"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
        ])
    );
    assert_eq!(
        rules(&files, "shop-api-press"),
        json!([
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["get", "delete"], "resourceNames": ["shop-api-play"]},
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]},
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
        ])
    );
    for name in ["shop-api-reconcile", "shop-api-press", "shop-api-dispatch"] {
        let binding = doc(&files, &format!("rbac/rolebinding-{name}.yaml"));
        assert_eq!(binding["roleRef"]["name"], name);
        assert_eq!(binding["subjects"], json!([{"kind": "ServiceAccount", "name": name, "namespace": "agents"}]));
    }
}

#[test]
fn large_backlogs_patch_without_names_so_the_role_stays_small() {
    let mut text = String::from("tasks:\n");
    for n in 1..=1001 {
        text.push_str(&format!("  - id: {n}\n    title: Task {n}\n"));
    }
    let files = render_text(&text).unwrap().files;
    let rules = rules(&files, "pressplay-reconcile");
    assert_eq!(rules[2], json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}));
    assert!(files["rbac/role-pressplay-reconcile.yaml"].len() < 2048);
}

#[test]
fn names_fit_with_the_longest_project_name() {
    let project = "p".repeat(40);
    let text = format!("project:\n  name: {project}\ntasks:\n  - id: 1\n    title: One\n");
    let files = render_text(&text).unwrap().files;
    let cron = doc(&files, &format!("cronworkflows/{project}-reconcile.yaml"));
    // Argo: CronWorkflow names at most 52 (a Workflow `<name>-<10 digits>` is made from it).
    assert!(cron["metadata"]["name"].as_str().unwrap().len() <= 52);
    // The launcher: `<project>-press-` and 16 hex digits, at most 63.
    assert!(format!("{project}-press-{}", "0".repeat(16)).len() <= 63);
}

#[test]
fn rendered_lifecycle_passes_the_argo_validator_and_kustomize() {
    let Some(shared) = crate::common::shared() else {
        eprintln!("skipped: ../shared/argo-schemas not found (CI has it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let deploy = tmp.path().join("deploy");
    pressplay::output::write_tree(&deploy, &basic()).unwrap();
    assert!(crate::common::argo_validator_passes(&shared, &deploy), "validate.sh found problems (see above)");
    let out = Command::new(shared.join("tools/kubectl.sh")).arg("kustomize").arg(&deploy).output().unwrap();
    if out.status.code() == Some(3) {
        eprintln!("skipped kustomize: kubectl could not be fetched");
        return;
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kind: CronWorkflow") && text.contains("name: shop-api-press"));
}

// ---- the scripts, against fakes -----------------------------------------------------------

/// One request the fake saw.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) authorization: String,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

impl Seen {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

pub(crate) type Handler = dyn Fn(&Seen) -> (u16, Value) + Send + Sync;

/// A fake HTTP server on the loopback: answers with `handler` and records every request. It
/// stops by itself after 60 s or 500 requests.
pub(crate) fn serve(handler: Box<Handler>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut count = 0;
        while start.elapsed() < Duration::from_secs(60) && count < 500 {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            count += 1;
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 8192];
            let head_end = loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut first = lines.next().unwrap_or_default().split(' ');
            let (method, path) =
                (first.next().unwrap_or_default().to_owned(), first.next().unwrap_or_default().to_owned());
            let headers: BTreeMap<String, String> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut body = raw[head_end + 4..].to_vec();
            while body.len() < length {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            let request = Seen {
                method,
                path,
                authorization: headers.get("authorization").cloned().unwrap_or_default(),
                content_type: headers.get("content-type").cloned().unwrap_or_default(),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            let (status, answer) = handler(&request);
            log.lock().unwrap().push(request);
            let answer = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (base, seen)
}

pub(crate) fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success())
        || Command::new(name).arg("version").output().is_ok_and(|o| o.status.success())
}

/// The template called `name` of a Workflow spec.
fn named<'a>(spec: &'a Value, name: &str) -> &'a Value {
    spec["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no template {name}"))
}

/// The script and environment of a rendered script template.
fn script_of(template: &Value) -> (String, Vec<(String, String)>) {
    let script = &template["script"];
    let env = script["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["value"].as_str().unwrap().to_owned()))
        .collect();
    (script["source"].as_str().unwrap().to_owned(), env)
}

/// Runs a script with the rendered environment, `overrides` replacing entries; returns the exit
/// code and the termination message.
pub(crate) fn run_script(
    dir: &Path,
    source: &str,
    env: &[(String, String)],
    overrides: &[(&str, String)],
) -> (i32, String) {
    let file = dir.join("script.py");
    std::fs::write(&file, source).unwrap();
    let log = dir.join("termination-log");
    let mut command = Command::new("python3");
    command.arg(&file).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (name, value) in env {
        command.env(name, value);
    }
    for (name, value) in overrides {
        command.env(name, value);
    }
    command.env("TERMINATION_LOG", &log);
    let out = command.output().unwrap();
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), std::fs::read_to_string(&log).unwrap_or_default())
}

fn pr(number: u64, branch: &str, repo: Option<&str>, base: &str, state: &str, merged: bool) -> Value {
    json!({
        "number": number,
        "title": "{{workflow.parameters.x}} $(touch /tmp/pwned) `id`",
        "state": state,
        "merged_at": if merged { json!("2026-01-01T00:00:00Z") } else { Value::Null },
        "merge_commit_sha": if merged { json!(format!("{number:040x}")) } else { Value::Null },
        "head": {"ref": branch, "repo": repo.map(|r| json!({"full_name": r}))},
        "base": {"ref": base},
    })
}

fn task_workflow(name: &str, phase: &str, nodes: Value) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"pressplay.dev/project": "shop-api", "pressplay.dev/component": "task"}},
        "status": {"phase": phase, "nodes": nodes},
    })
}

fn gate_node(task: &str) -> Value {
    json!({
        "type": "Suspend", "phase": "Running", "templateName": "gate-wait",
        "inputs": {"parameters": [{"name": "task-number", "value": task}, {"name": "gate", "value": "merged"}]},
    })
}

#[test]
fn reconcile_records_github_facts_and_wakes_only_waiting_final_tasks() {
    if !tool("python3") || !tool("openssl") {
        eprintln!("skipped: python3 or openssl not found");
        return;
    }
    let files = basic();
    let cron = doc(&files, "cronworkflows/shop-api-reconcile.yaml");
    let (source, env) = script_of(named(&cron["spec"]["workflowSpec"], "reconcile"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The mounted Secrets and the ServiceAccount token.
    std::fs::create_dir_all(dir.join("secrets/github")).unwrap();
    std::fs::create_dir_all(dir.join("secrets/waker")).unwrap();
    std::fs::create_dir_all(dir.join("account")).unwrap();
    let key = dir.join("secrets/github/private-key");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(dir.join("secrets/github/app-id"), "123\n").unwrap();
    std::fs::write(dir.join("secrets/github/installation-id"), "456\n").unwrap();
    std::fs::write(dir.join("secrets/waker/authorization"), "Bearer waker-token").unwrap();
    std::fs::write(dir.join("account/token"), "kube-token").unwrap();

    let hostile = "task/4-\"; rm -rf / #{{inputs.parameters.x}}\n---\nkind: Secret";
    let prs = json!([
        pr(11, "task/2-add-metrics", Some("acme/shop-api"), "main", "closed", true),
        pr(12, "task/3-$(touch /tmp/pwned)", Some("acme/shop-api"), "main", "closed", false),
        pr(13, hostile, Some("Acme/Shop-API"), "main", "closed", true),
        pr(14, "task/5-from-a-fork", Some("evil/shop-api"), "main", "closed", true),
        pr(15, "task/007-leading-zeros", Some("acme/shop-api"), "main", "closed", true),
        pr(16, "task/6", Some("acme/shop-api"), "main", "closed", false),
        pr(17, "task/6-second-try", Some("acme/shop-api"), "main", "open", false),
        pr(18, "task/12345678901234567", Some("acme/shop-api"), "main", "closed", true),
        pr(19, "Task/8", Some("acme/shop-api"), "main", "closed", true),
        pr(20, "task/9x", Some("acme/shop-api"), "main", "closed", true),
        pr(21, "task/10", Some("acme/shop-api"), "develop", "closed", true),
        pr(22, "task/11", None, "main", "closed", true),
        "not a pull request",
    ]);
    let configmaps = json!({"metadata": {}, "items": [
        {"metadata": {"name": "shop-api-task-1", "resourceVersion": "10"}, "data": {"merged": "true"}},
        {"metadata": {"name": "shop-api-task-2", "resourceVersion": "11"}, "data": {"task-number": "2"}},
        {"metadata": {"name": "shop-api-task-007", "resourceVersion": "12"}, "data": {"merged": "true"}},
        {"metadata": {"name": "other-task-5", "resourceVersion": "13"}, "data": {"merged": "true"}},
    ]});
    // The task Workflows: 1, 2 and 5 wait at their gate, 3 has only a pod on it, 4's node status
    // is offloaded (not in the answer), 6 ended; one of another project and one with a
    // malformed number are answered too.
    let pod = json!({"type": "Pod", "phase": "Running", "templateName": "gate-wait", "inputs": {"parameters": [{"name": "task-number", "value": "3"}, {"name": "gate", "value": "merged"}]}});
    let workflows = json!({"metadata": {}, "items": [
        task_workflow("shop-api-task-1", "Running", json!({"a": gate_node("1")})),
        task_workflow("shop-api-task-2", "Running", json!({"a": gate_node("2"), "b": gate_node("9")})),
        task_workflow("shop-api-task-3", "Running", json!({"a": pod})),
        {"metadata": {"name": "shop-api-task-4"}, "status": {"phase": "Running", "offloadNodeStatusVersion": "v1"}},
        task_workflow("shop-api-task-5", "Running", json!({"a": gate_node("5")})),
        task_workflow("shop-api-task-007", "Running", json!({"a": gate_node("7")})),
        task_workflow("other-task-2", "Running", json!({"a": gate_node("2")})),
    ]});
    let (base, seen) = serve(Box::new(move |r: &Seen| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/gh/app/installations/456/access_tokens") => (201, json!({"token": "ghs_test"})),
        ("GET", p) if p.starts_with("/gh/repos/acme/shop-api/pulls?") => (200, prs.clone()),
        ("GET", p) if p.starts_with("/kube/api/v1/namespaces/agents/configmaps?") => (200, configmaps.clone()),
        ("PATCH", "/kube/api/v1/namespaces/agents/configmaps/shop-api-task-2") => (200, json!({})),
        ("PATCH", _) => (404, json!({"reason": "NotFound"})),
        ("POST", "/kube/api/v1/namespaces/agents/configmaps") => (201, json!({})),
        ("GET", p) if p.starts_with("/kube/apis/argoproj.io/v1alpha1/namespaces/agents/workflows?") => {
            (200, workflows.clone())
        }
        ("PUT", p) if p.starts_with("/argo/api/v1/workflows/agents/shop-api-task-") && p.ends_with("/resume") => {
            if p.contains("-task-1/") {
                (
                    500,
                    json!({"code": 2, "message": "currently, set only targets suspend nodes: no suspend nodes matching nodeFieldSelector: x"}),
                )
            } else {
                (200, json!({}))
            }
        }
        _ => (418, json!({})),
    }));
    let overrides = [
        ("GITHUB_API", format!("{base}/gh")),
        ("KUBE_API", format!("{base}/kube")),
        ("ARGO_SERVER", format!("{base}/argo")),
        ("SECRETS_DIR", dir.join("secrets").display().to_string()),
        ("SERVICE_ACCOUNT_DIR", dir.join("account").display().to_string()),
    ];
    let (code, message) = run_script(dir, &source, &env, &overrides);
    assert_eq!(code, 0, "{message}");
    assert!(message.contains("recorded 3 state(s)"), "{message}");
    let seen = seen.lock().unwrap().clone();

    // The installation token: a JWT signed with the App's key, asking for read on pull requests
    // of this repository only.
    let token = seen.iter().find(|r| r.path.ends_with("/access_tokens")).unwrap();
    assert_eq!(token.json(), json!({"repositories": ["shop-api"], "permissions": {"pull_requests": "read"}}));
    let jwt = token.authorization.strip_prefix("Bearer ").unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    verify_rs256(dir, &key, &format!("{}.{}", parts[0], parts[1]), parts[2]);
    let pulls = seen.iter().find(|r| r.path.contains("/pulls?")).unwrap();
    assert_eq!(pulls.authorization, "Bearer ghs_test");
    assert!(pulls.path.contains("state=all") && pulls.path.contains("base=main"), "{}", pulls.path);

    // Writes: task 2 merged (patched), task 3 closed (created), task 4 merged (patch 404 → create).
    let writes: Vec<(String, String, Value)> = seen
        .iter()
        .filter(|r| r.path.starts_with("/kube/") && r.method != "GET")
        .map(|r| (r.method.clone(), r.path.clone(), r.json()))
        .collect();
    let paths: Vec<(&str, &str)> = writes.iter().map(|(m, p, _)| (m.as_str(), p.as_str())).collect();
    assert_eq!(
        paths,
        [
            ("PATCH", "/kube/api/v1/namespaces/agents/configmaps/shop-api-task-2"),
            ("POST", "/kube/api/v1/namespaces/agents/configmaps"),
            ("PATCH", "/kube/api/v1/namespaces/agents/configmaps/shop-api-task-4"),
            ("POST", "/kube/api/v1/namespaces/agents/configmaps"),
        ]
    );
    assert_eq!(
        writes[0].2["data"],
        json!({"merged": "true", "task-number": "2", "pr": "11", "merge-commit": format!("{:040x}", 11)})
    );
    assert_eq!(writes[0].2["metadata"]["labels"]["workflows.argoproj.io/configmap-type"], "Parameter");
    assert_eq!(writes[1].2["metadata"]["name"], "shop-api-task-3");
    assert_eq!(writes[1].2["data"], json!({"merged": "closed", "task-number": "3", "pr": "12"}));
    assert_eq!(writes[3].2["metadata"]["name"], "shop-api-task-4");
    assert_eq!(writes[3].2["data"]["merged"], "true");
    let kube_patch = seen.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(kube_patch.content_type, "application/merge-patch+json");
    assert_eq!(kube_patch.authorization, "Bearer kube-token");
    // Nothing from GitHub's text reached a request: every value written is digits or a literal.
    for request in &seen {
        for bad in ["rm -rf", "pwned", "{{", "Secret", "007", "from-a-fork"] {
            assert!(!request.path.contains(bad) && !request.body.contains(bad), "{bad} in {request:?}");
        }
    }

    // The task Workflows are listed by their labels, as the reconcile's own account.
    let list = seen.iter().find(|r| r.path.contains("/workflows?")).unwrap();
    assert!(
        list.path.contains("labelSelector=pressplay.dev%2Fproject%3Dshop-api%2Cpressplay.dev%2Fcomponent%3Dtask"),
        "{}",
        list.path
    );
    assert_eq!(list.authorization, "Bearer kube-token");
    // Wake-ups: the Running task Workflows of final tasks (1, 2, 3, 4) that wait (1, 2, 5) or
    // whose nodes are not in the answer (4): 1, 2 and 4, each its own Workflow. Task 1 had moved
    // on meanwhile (500, expected); task 3 only has a non-suspend node.
    let resumes: Vec<(String, Value)> =
        seen.iter().filter(|r| r.method == "PUT").map(|r| (r.path.clone(), r.json())).collect();
    let resume = |n: &str| {
        (
            format!("/argo/api/v1/workflows/agents/shop-api-task-{n}/resume"),
            json!({"nodeFieldSelector": format!("templateName=gate-wait,inputs.parameters.gate.value=merged,inputs.parameters.task-number.value={n}")}),
        )
    };
    assert_eq!(resumes, [resume("1"), resume("2"), resume("4")]);
    assert!(seen.iter().filter(|r| r.path.starts_with("/argo/")).all(|r| r.authorization == "Bearer waker-token"));
}

/// Checks an RS256 JWT signature with openssl and the key's public half.
fn verify_rs256(dir: &Path, key: &Path, signing_input: &str, signature: &str) {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).unwrap();
    std::fs::write(dir.join("input"), signing_input).unwrap();
    std::fs::write(dir.join("signature"), raw).unwrap();
    let public = dir.join("public.pem");
    assert!(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(key)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap()
            .success()
    );
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(dir.join("signature"))
        .arg(dir.join("input"))
        .output()
        .unwrap();
    assert!(out.status.success(), "the JWT does not verify: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn reconcile_without_github_still_wakes_and_reports_the_failure() {
    if !tool("python3") {
        eprintln!("skipped: python3 not found");
        return;
    }
    let files = basic();
    let cron = doc(&files, "cronworkflows/shop-api-reconcile.yaml");
    let (source, env) = script_of(named(&cron["spec"]["workflowSpec"], "reconcile"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("secrets/waker")).unwrap();
    std::fs::write(dir.join("secrets/waker/authorization"), "Bearer waker-token").unwrap();
    let configmaps = json!({"metadata": {}, "items": [
        {"metadata": {"name": "shop-api-task-1", "resourceVersion": "10"}, "data": {"merged": "closed"}},
    ]});
    let workflows = json!({"metadata": {}, "items": [
        task_workflow("shop-api-task-1", "Running", json!({"a": gate_node("1")})),
    ]});
    let (base, seen) = serve(Box::new(move |r: &Seen| match (r.method.as_str(), r.path.as_str()) {
        ("GET", p) if p.starts_with("/gh/") => (503, json!({"message": "down"})),
        ("GET", p) if p.starts_with("/kube/api/v1/namespaces/agents/configmaps?") => (200, configmaps.clone()),
        ("GET", p) if p.starts_with("/kube/apis/argoproj.io/v1alpha1/namespaces/agents/workflows?") => {
            (200, workflows.clone())
        }
        ("PUT", "/argo/api/v1/workflows/agents/shop-api-task-1/resume") => (200, json!({})),
        _ => (418, json!({})),
    }));
    let overrides = [
        ("GITHUB_API", format!("{base}/gh")),
        ("KUBE_API", format!("{base}/kube")),
        ("ARGO_SERVER", format!("{base}/argo")),
        ("SECRETS_DIR", dir.join("secrets").display().to_string()),
        ("SERVICE_ACCOUNT_DIR", dir.join("account").display().to_string()),
    ];
    let (code, message) = run_script(dir, &source, &env, &overrides);
    assert_eq!(code, 1);
    assert!(message.contains("GitHub did not list pull requests (HTTP 503)"), "{message}");
    let seen = seen.lock().unwrap().clone();
    let pulls = seen.iter().find(|r| r.path.starts_with("/gh/")).unwrap();
    assert_eq!(pulls.authorization, "", "no credentials mounted: anonymous");
    assert_eq!(seen.iter().filter(|r| r.method == "PUT").count(), 1, "the closed task is still woken");
    assert!(!seen.iter().any(|r| r.method == "PATCH" || r.method == "POST"));
}

/// Runs the press script against a fake Kubernetes API answering with `handler`.
fn press(handler: Box<Handler>) -> (i32, String, Vec<Seen>, Value) {
    let files = basic();
    let template = doc(&files, "workflowtemplates/shop-api-press.yaml");
    let (source, env) = script_of(&template["spec"]["templates"][0]);
    let manifest: Value = serde_json::from_str(&env.iter().find(|(n, _)| n == "RUN_MANIFEST").unwrap().1).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (base, seen) = serve(handler);
    let overrides = [
        ("KUBE_API", format!("{base}/kube")),
        ("SERVICE_ACCOUNT_DIR", tmp.path().display().to_string()),
        ("PRESS_NAME", "shop-api-press-0123456789abcdef".to_owned()),
        ("POLL_SECONDS", "0.05".to_owned()),
    ];
    let (code, message) = run_script(tmp.path(), &source, &env, &overrides);
    let seen = seen.lock().unwrap().clone();
    (code, message, seen, manifest)
}

const RUN_PATH: &str = "/kube/apis/argoproj.io/v1alpha1/namespaces/agents/workflows/shop-api-play";
const WORKFLOWS: &str = "/kube/apis/argoproj.io/v1alpha1/namespaces/agents/workflows";

#[test]
fn press_creates_the_run_when_there_is_none() {
    if !tool("python3") {
        eprintln!("skipped: python3 not found");
        return;
    }
    let (code, message, seen, manifest) = press(Box::new(|r: &Seen| match r.method.as_str() {
        "GET" => (404, json!({})),
        "POST" => (201, json!({"metadata": {"uid": "u2"}})),
        _ => (418, json!({})),
    }));
    assert_eq!(code, 0, "{message}");
    assert!(message.starts_with("started the run shop-api-play"), "{message}");
    let created = seen.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(created.path, WORKFLOWS);
    let mut expected = manifest;
    expected["metadata"]["annotations"] = json!({"pressplay.dev/pressed-by": "shop-api-press-0123456789abcdef"});
    assert_eq!(created.json(), expected);
    assert_eq!(created.json()["spec"]["workflowTemplateRef"]["name"], "shop-api");
    assert_eq!(created.json()["metadata"]["name"], "shop-api-play");
}

#[test]
fn press_refuses_while_the_run_still_goes_and_says_why() {
    if !tool("python3") {
        eprintln!("skipped: python3 not found");
        return;
    }
    let (code, message, seen, _) = press(Box::new(|r: &Seen| match r.method.as_str() {
        "GET" => (200, json!({"metadata": {"uid": "u1"}, "status": {"phase": "Running"}})),
        _ => (418, json!({})),
    }));
    assert_eq!(code, 1);
    assert!(message.contains("not started: the run shop-api-play is still Running"), "{message}");
    assert!(message.contains("argo stop shop-api-play"), "{message}");
    assert_eq!(seen.len(), 1, "only looked: {seen:?}");
}

#[test]
fn press_replaces_a_finished_run() {
    if !tool("python3") {
        eprintln!("skipped: python3 not found");
        return;
    }
    let deleted = Arc::new(Mutex::new(0u32));
    let state = Arc::clone(&deleted);
    let (code, message, seen, _) = press(Box::new(move |r: &Seen| {
        let mut polls = state.lock().unwrap();
        match r.method.as_str() {
            "GET" if *polls == 0 => (200, json!({"metadata": {"uid": "u1"}, "status": {"phase": "Failed"}})),
            // Being deleted for one poll, then gone.
            "GET" if *polls == 1 => {
                *polls = 2;
                (200, json!({"metadata": {"uid": "u1"}, "status": {"phase": "Failed"}}))
            }
            "GET" => (404, json!({})),
            "DELETE" => {
                *polls = 1;
                (200, json!({}))
            }
            "POST" => (201, json!({"metadata": {"uid": "u2"}})),
            _ => (418, json!({})),
        }
    }));
    assert_eq!(code, 0, "{message}");
    let methods: Vec<(&str, &str)> = seen.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(
        methods,
        [("GET", RUN_PATH), ("DELETE", RUN_PATH), ("GET", RUN_PATH), ("GET", RUN_PATH), ("POST", WORKFLOWS)]
    );
    let delete = seen.iter().find(|r| r.method == "DELETE").unwrap().json();
    assert_eq!(delete["preconditions"], json!({"uid": "u1"}), "never deletes a newer run");
}
