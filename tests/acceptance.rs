//! Acceptance: HTTP probes run by Argo, criteria for the agent, and a failed acceptance going
//! back through remediation and the gates a bounded number of times before the task fails.

use serde_json::Value;

use crate::common::{diagnostics, root};

fn generated() -> pressplay::Generated {
    let case = root().join("tests/fixtures/acceptance-and-deploy");
    pressplay::generate(&case.join("requirements.yaml"), "requirements.yaml", &pressplay::Options::default())
        .unwrap_or_else(|e| panic!("{}", diagnostics(&e)))
}

fn template<'a>(stages: &'a Value, name: &str) -> &'a Value {
    stages["spec"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Runs the accept template's loop the way Argo would when verification always fails:
/// returns how many times remediation ran before the task gave up.
fn remediations_until_give_up(stages: &Value, accept: &str) -> usize {
    let mut attempt: u32 = 0;
    let mut remediations = 0;
    loop {
        let steps = template(stages, accept)["steps"].as_array().unwrap();
        let when_of = |name: &str| -> String {
            steps.iter().flat_map(|g| g.as_array().unwrap()).find(|s| s["name"] == name).unwrap()["when"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        // Verification failed: evaluate each `when` for this attempt.
        let holds = |when: &str| {
            let when = when
                .replace("{{steps.verify.status}}", "Failed")
                .replace("{{inputs.parameters.attempt}}", &attempt.to_string());
            let (lhs, rhs) = when.split_once(" && ").unwrap();
            assert_eq!(lhs, "Failed != Succeeded");
            let parts: Vec<&str> = rhs.split(' ').collect();
            let (a, op, b): (u32, &str, u32) = (parts[0].parse().unwrap(), parts[1], parts[2].parse().unwrap());
            match op {
                "<" => a < b,
                ">=" => a >= b,
                other => panic!("operator {other}"),
            }
        };
        let remediate = holds(&when_of("remediate"));
        let retry = holds(&when_of("retry"));
        let give_up = holds(&when_of("give-up"));
        assert!(remediate == retry && retry != give_up, "exactly one of retry and give-up runs");
        if give_up {
            return remediations;
        }
        remediations += 1;
        let next = steps.iter().flat_map(|g| g.as_array().unwrap()).find(|s| s["name"] == "retry").unwrap();
        assert_eq!(next["template"], accept, "retry calls the same loop");
        let attempt_arg =
            next["arguments"]["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "attempt").unwrap();
        assert_eq!(attempt_arg["value"], "{{=asInt(inputs.parameters.attempt) + 1}}");
        attempt += 1;
        assert!(remediations < 50, "the loop does not end");
    }
}

#[test]
fn a_failed_acceptance_is_remediated_at_most_max_remediations_times() {
    let generated = generated();
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/shop-stages.yaml"]).unwrap();
    let accept = "code-author-lint-tests-deploy-acceptance-accept";
    assert_eq!(remediations_until_give_up(&stages, accept), 1, "defaults.maxRemediations is 1 in the fixture");
    let verify = &template(&stages, accept)["steps"][0][0];
    assert_eq!(verify["continueOn"]["failed"], true, "a failed verification must reach the loop");
    // After remediation, the gates run again before acceptance does (verification deploys).
    let names: Vec<&str> =
        template(&stages, accept)["steps"].as_array().unwrap().iter().map(|g| g[0]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["verify", "remediate", "again-lint", "again-tests", "retry"]);
    let failed = template(&stages, "acceptance-failed");
    assert_eq!(failed["outputs"]["parameters"][0]["name"], "reason", "the reason is an output");
    assert!(failed["container"]["args"][0].as_str().unwrap().contains("/dev/termination-log"), "and the run's message");
    assert!(!failed["container"]["args"][0].as_str().unwrap().contains("{{"), "no parameter in the shell text");

    // The default bound is 2.
    let default = crate::common::render_text("tasks:\n  - id: 1\n    title: One\n").unwrap();
    let stages: Value = serde_saphyr::from_str(&default.files["workflowtemplates/pressplay-stages.yaml"]).unwrap();
    assert_eq!(remediations_until_give_up(&stages, accept), 2);
}

#[test]
fn probes_run_in_argo_and_criteria_reach_the_agent() {
    let generated = generated();
    let first = crate::common::records(&generated.files).into_keys().next().unwrap();
    let arguments = crate::common::task_arguments(&generated.files, &first);
    let probes: Value = serde_json::from_str(&arguments["probes"]).unwrap();
    assert_eq!(
        probes,
        serde_json::json!([{"url": "https://shop.example.com/healthz", "method": "GET", "status": "200", "body": "ok"}])
    );
    let brief = crate::common::brief_of(&generated.files, &first);
    assert_eq!(
        brief["acceptance"],
        serde_json::json!([
            "command: curl -fsS https://shop.example.com/version",
            "The version matches the release tag."
        ])
    );
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/shop-stages.yaml"]).unwrap();
    let probe = template(&stages, "http-probe");
    assert_eq!(probe["http"]["url"], "{{inputs.parameters.url}}");
    let verify = template(&stages, "code-author-lint-tests-deploy-acceptance-verify");
    let names: Vec<&str> = verify["steps"].as_array().unwrap().iter().map(|g| g[0]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["deploy", "deploy-wait", "probe", "acceptance"], "deploy, wait, probes, then the agent");
    assert_eq!(verify["steps"][2][0]["withParam"], "{{inputs.parameters.probes}}");
    assert_eq!(verify["steps"][3][0]["template"], "coderun-acceptance");
    // The agent pod that runs `http` templates mounts the orchestrator's token Secret.
    let secret: Value =
        serde_saphyr::from_str(&generated.files["rbac/secret-shop-orchestrator.service-account-token.yaml"]).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    assert_eq!(secret["metadata"]["annotations"]["kubernetes.io/service-account.name"], "shop-orchestrator");
}

#[test]
fn deploy_waits_for_the_argo_cd_application() {
    let generated = generated();
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/shop-stages.yaml"]).unwrap();
    let wait = template(&stages, "deploy-wait");
    assert_eq!(wait["activeDeadlineSeconds"], 1200);
    assert_eq!(wait["resource"]["action"], "get");
    assert_eq!(
        wait["resource"]["successCondition"],
        "metadata.labels.pressplay-deploy == t{{inputs.parameters.task-number}}-a{{inputs.parameters.attempt}}-{{=sprig.trunc(8, workflow.uid)}},status.health.status == Healthy,status.sync.status == Synced,status.operationState.phase == Succeeded"
    );
    assert_eq!(wait["retryStrategy"]["retryPolicy"], "Always", "a Degraded moment is read again");
    assert_eq!(wait["inputs"]["parameters"][0]["name"], "task-number");
    let steps = template(&stages, "code-author-lint-tests-deploy-acceptance-steps")["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|g| g[0]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["author", "lint", "tests", "acceptance"], "acceptance deploys each attempt");
    let verify = template(&stages, "code-author-lint-tests-deploy-acceptance-verify");
    assert_eq!(verify["synchronization"]["mutexes"][0]["name"], "shop-deploy", "one task on the preview at a time");
    // The deploy agent is told the token the wait looks for.
    let text = &generated.files["workflowtemplates/shop-stages.yaml"];
    assert!(text.contains("PRESSPLAY_DEPLOY_TOKEN: \"t{{inputs.parameters.task-number}}-a{{inputs.parameters.attempt}}-{{=sprig.trunc(8, workflow.uid)}}\""));
    let binding = &generated.files["rbac/rolebinding-shop-deploy-wait.yaml"];
    assert!(binding.contains("namespace: \"argocd\"") && binding.contains("name: \"shop-deploy\""));
}

#[test]
fn the_merge_agent_runs_last_when_it_merges() {
    let text = "defaults:\n  merge: auto-merge\ntasks:\n  - id: 1\n    title: One\n  - id: 2\n    title: Own pipeline\n    pipeline: [author]\n";
    let generated = crate::common::render_text(text).unwrap_or_else(|e| panic!("{}", diagnostics(&e)));
    let chains: Vec<Vec<&str>> =
        generated.planned.plan.chains.iter().map(|c| c.stages.iter().map(|s| s.as_str()).collect()).collect();
    assert!(chains.iter().all(|stages| stages.last() == Some(&"merge")), "{chains:?}");
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/pressplay-stages.yaml"]).unwrap();
    let steps = template(&stages, "code-author-lint-tests-deploy-acceptance-merge-steps")["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|g| g[0]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["author", "lint", "tests", "acceptance", "merge"], "merge comes after acceptance");
    assert!(
        generated.files["workflowtemplates/pressplay-stages.yaml"].contains("PRESSPLAY_MERGE_MODE: \"auto-merge\"")
    );
    let wait = crate::common::render_text("tasks:\n  - id: 1\n    title: One\n").unwrap();
    assert!(wait.planned.plan.chains[0].stages.iter().all(|s| s.as_str() != "merge"), "by default a person merges");
    // Without events no agent waits for a person's merge: the task's pod-less gate does.
    let quiet = crate::common::render_text("events:\n  enabled: false\ntasks:\n  - id: 1\n    title: One\n").unwrap();
    assert!(quiet.planned.plan.chains[0].stages.iter().all(|s| s.as_str() != "merge"));
    let stages: Value = serde_saphyr::from_str(&quiet.files["workflowtemplates/pressplay-stages.yaml"]).unwrap();
    assert!(template(&stages, "await-gate").is_object(), "the gate is there with events off too");
    // The merge agent holds no agent slot and no task lock: it may take a while.
    let merging: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/pressplay-stages.yaml"]).unwrap();
    assert!(template(&merging, "coderun-merge").get("synchronization").is_none());
}

#[test]
fn a_merged_task_leaves_nothing_behind() {
    let generated = generated();
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/shop-stages.yaml"]).unwrap();
    let cleanup = template(&stages, "cleanup");
    assert_eq!(cleanup["resource"]["action"], "delete");
    let flags: Vec<&str> =
        cleanup["resource"]["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(
        flags,
        [
            "{{inputs.parameters.kinds}}",
            "--selector",
            "pressplay.dev/project=shop,pressplay.dev/workflow={{workflow.name}},pressplay.dev/task-number={{inputs.parameters.task-number}}",
            "--ignore-not-found"
        ]
    );
    // With events on, it runs after the merge gate.
    let wrapper = template(&stages, "code-author-lint-tests-deploy-acceptance");
    let tasks = wrapper["dag"]["tasks"].as_array().unwrap();
    let step = tasks.iter().find(|t| t["name"] == "cleanup").unwrap();
    assert_eq!(step["depends"], "await-merge");
    assert_eq!(step["template"], "cleanup-merged", "a step that cannot fail the merged task");
    assert_eq!(step["arguments"]["parameters"][1]["value"], "coderuns", "only the kinds this chain creates");
    assert_eq!(template(&stages, "cleanup-merged")["steps"][0][0]["continueOn"]["failed"], true);
    let role: Value = serde_saphyr::from_str(&generated.files["rbac/role-shop-cleanup.yaml"]).unwrap();
    assert_eq!(role["rules"][0]["verbs"], serde_json::json!(["list", "delete"]), "cleanup may only list and delete");
}

#[test]
fn deploy_can_wait_for_any_configured_resource() {
    let text = "project:\n  name: shop\n  deploy:\n    application: shop-preview\n    apiVersion: apps/v1\n    kind: Deployment\n    namespace: preview\n    successCondition: status.readyReplicas > 0\n    failureCondition: status.unavailableReplicas > 2\ntasks:\n  - id: 1\n    title: One\n";
    let generated = crate::common::render_text(text).unwrap_or_else(|e| panic!("{}", diagnostics(&e)));
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/shop-stages.yaml"]).unwrap();
    let wait = template(&stages, "deploy-wait");
    assert_eq!(wait["resource"]["successCondition"], "status.readyReplicas > 0");
    let manifest: Value = serde_saphyr::from_str(wait["resource"]["manifest"].as_str().unwrap()).unwrap();
    assert_eq!(manifest["kind"], "Deployment");
    assert_eq!(manifest["metadata"]["namespace"], "preview");
    let role: Value = serde_saphyr::from_str(&generated.files["rbac/role-shop-deploy-wait.yaml"]).unwrap();
    assert_eq!(role["metadata"]["namespace"], "preview");
    assert_eq!(role["rules"][0]["apiGroups"], serde_json::json!(["apps"]));
    assert_eq!(role["rules"][0]["resources"], serde_json::json!(["deployments"]));

    let bad = text.replace("status.readyReplicas > 0", "\"{{workflow.name}}\"");
    let err = crate::common::render_text(&bad).unwrap_err();
    assert!(diagnostics(&err).contains("project.deploy.successCondition"), "{}", diagnostics(&err));
}

/// Regressions from a review of the acceptance, deploy and merge stages.
#[test]
fn review_regressions() {
    let generated = generated();
    // The cleanup account may also report its step's result.
    let role: Value = serde_saphyr::from_str(&generated.files["rbac/role-shop-cleanup.yaml"]).unwrap();
    assert!(role.to_string().contains("workflowtaskresults"));
    // After a remediation the deploy runs again, with its wait, before acceptance: every
    // verification starts with one.
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/shop-stages.yaml"]).unwrap();
    let names: Vec<&str> = template(&stages, "code-author-lint-tests-deploy-acceptance-verify")["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g[0]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[..2], ["deploy", "deploy-wait"]);
    // Docs agents get their gates and attributes as annotations (DocsRun has no env).
    assert!(generated.files["workflowtemplates/shop-stages.yaml"].contains("pressplay.dev/gates-b64"));

    // An acceptance-only pipeline still has an author to go back to.
    let only = crate::common::render_text("tasks:\n  - id: 1\n    title: One\n    pipeline: [acceptance]\n").unwrap();
    assert!(only.files["workflowtemplates/pressplay-stages.yaml"].contains("- name: \"coderun-author\""));

    // Pipelines with merge before the end, HEAD probes with a body, custom kinds without a
    // condition are errors; probes without an acceptance stage a warning.
    for (text, expected) in [
        ("tasks:\n  - id: 1\n    title: A\n    pipeline: [merge, author]\n", "`merge` is not the last stage"),
        (
            "tasks:\n  - id: 1\n    title: A\n    acceptance:\n      - http: {url: \"https://x.example.com/\", method: HEAD, body: ok}\n",
            "HEAD request",
        ),
        (
            "project:\n  deploy:\n    application: a\n    kind: Deployment\n    apiVersion: apps/v1\ntasks:\n  - id: 1\n    title: A\n",
            "no `successCondition`",
        ),
    ] {
        let err = crate::common::render_text(text).unwrap_err();
        assert!(diagnostics(&err).contains(expected), "{}", diagnostics(&err));
    }
    let warned = crate::common::render_text(
        "tasks:\n  - id: 1\n    title: A\n    pipeline: [author]\n    acceptance:\n      - http: {url: \"https://x.example.com/\"}\n",
    )
    .unwrap();
    assert!(warned.planned.warnings.iter().any(|w| w.message.contains("no `acceptance` stage")));
}
