//! View models of the event side: the GitHub EventSource, the Sensors and the workflows they
//! start. Field names are used by `templates/events/` and `templates/workflows/remediate.yaml.j2`.
//!
//! Rules every Sensor here follows, because the project this design comes from broke on each:
//! filters are anchored regexes; no filter reads a path a payload may lack (Argo Events drops
//! the event when a filter's path does not exist: optional fields are matched inside the JSON
//! text of an object that is always there, or replaced by one that is); comments and issues
//! count only from trusted authors; a `/play` command is [`PLAY_COMMAND`], in the play Sensor
//! and negated in every comment Sensor; events whose sender is a bot (the agents' own GitHub
//! Apps among them) or an ignored login trigger nothing; the task is found by one rule (branch `task/<number>`, PR label `task-<number>`)
//! and the number is extracted by an anchored regex of at most 16 digits; event text reaches a
//! workflow only as base64; every workflow a Sensor creates has a name derived from the
//! delivery (or the issue), so a replayed delivery creates nothing new; every trigger has a
//! rate limit.

use serde_json::{Value, json};

use crate::plan::Plan;
use crate::plan::names::{BRANCH_PREFIX, PR_LABEL_PREFIX};
use crate::render::context::{GATE_WAIT_TEMPLATE, LABEL_PR, LABEL_TASK_NUMBER, Names, agent_template, common_labels};
use crate::spec::{AgentRole, Events, Kind};

/// Port the EventSource listens on.
pub const WEBHOOK_PORT: u16 = 12000;
/// The digits of a task number in a branch or label.
const NUMBER: &str = "[0-9]{1,16}";
/// What a `/play` command is, in the play Sensor and (negated) in every comment Sensor: the
/// whole comment is `/play`, whitespace around it allowed (browsers send CRLF). `/play` followed
/// by more text is a comment for the agent.
pub const PLAY_COMMAND: &str = "^\\s*/play\\s*$";

/// Name of the GitHub event inside the EventSource.
pub fn event_name(plan: &Plan) -> String {
    plan.project.name.clone()
}

/// The Go template that extracts the task number from a branch at `path` (`.Input.body...`).
pub fn number_from_branch(path: &str) -> String {
    format!("{{{{ {path} | regexFind \"^{BRANCH_PREFIX}{NUMBER}\" | trimPrefix \"{BRANCH_PREFIX}\" }}}}")
}

/// The Go template that extracts the task number from the first `task-<number>` label.
pub fn number_from_labels(path: &str) -> String {
    format!(
        "{{{{ range {path} }}}}{{{{ if regexMatch \"^{PR_LABEL_PREFIX}{NUMBER}$\" .name }}}}{{{{ trimPrefix \"{PR_LABEL_PREFIX}\" .name }}}}{{{{ break }}}}{{{{ end }}}}{{{{ end }}}}"
    )
}

/// The Go template of a short, stable hash of the delivery id.
pub const DELIVERY_HASH: &str = "{{ index .Input.body \"X-GitHub-Delivery\" | sha256sum | trunc 16 }}";

fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if ".+*?()|[]{}^$\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn filter(path: &str, regex: &str) -> Value {
    json!({"path": path, "type": "string", "values": [regex], "comparator": ""})
}

fn filter_not(path: &str, regex: &str) -> Value {
    json!({"path": path, "type": "string", "values": [regex], "comparator": "!="})
}

fn filter_bool(path: &str, value: bool) -> Value {
    json!({"path": path, "type": "bool", "values": [value.to_string()], "comparator": ""})
}

/// Filters every dependency that starts agents shares: the event type, this repository, and a
/// human sender.
fn base_filters(plan: &Plan, event: &str, action: Option<&str>) -> Vec<Value> {
    let mut filters = fact_filters(plan, event, action);
    // GitHub Apps (the agents among them) send as `Bot`: nothing they cause starts an agent.
    filters.push(filter("body.sender.type", "^User$"));
    filters
}

/// Filters of an event that records a fact (a merge), whoever caused it.
fn fact_filters(plan: &Plan, event: &str, action: Option<&str>) -> Vec<Value> {
    let mut filters = vec![filter("body.X-GitHub-Event", &format!("^{event}$"))];
    if let Some(action) = action {
        filters.push(filter("body.action", &format!("^{action}$")));
    }
    filters.push(filter("body.repository.full_name", &format!("^{}$", regex_literal(&plan.project.repository_slug))));
    filters
}

fn trusted(events: &Events, path: &str) -> Value {
    filter(path, &format!("^({})$", events.trusted_associations.join("|")))
}

/// An expression filter that drops ignored logins (besides bots, which `sender.type` drops).
fn not_ignored(events: &Events) -> Vec<Value> {
    if events.ignore_authors.is_empty() {
        return Vec::new();
    }
    let expr =
        events.ignore_authors.iter().map(|login| format!("login != \"{login}\"")).collect::<Vec<_>>().join(" && ");
    vec![json!({"expr": expr, "fields": [{"name": "login", "path": "body.sender.login"}]})]
}

fn dependency(name: &str, data: Vec<Value>, exprs: Vec<Value>) -> Value {
    json!({"name": name, "data": data, "exprs": exprs})
}

fn param(dependency: &str, source: (&str, &str), dest: &str, operation: &str) -> Value {
    json!({"dependency": dependency, "source": source.0, "value": source.1, "dest": dest, "operation": operation})
}

/// A trigger that creates a Workflow from `template`, named `<name_prefix><suffix>` where the
/// suffix comes from the event, with the arguments `task-number` and `event`.
fn create_run(plan: &Plan, spec: RunTrigger<'_>) -> Value {
    let labels = common_labels(plan, "remediation");
    let resource = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": format!("{}0", spec.name_prefix),
            "namespace": plan.project.namespace,
            "labels": labels,
        },
        "spec": {
            "workflowTemplateRef": {"name": spec.template},
            "arguments": {"parameters": [
                {"name": "task-number", "value": "0"},
                {"name": "event", "value": ""},
                {"name": "pr", "value": ""},
            ]},
        },
    });
    let mut parameters = vec![
        param(
            spec.dependency,
            ("dataTemplate", &format!("{}{}", spec.name_prefix, spec.name_suffix)),
            "metadata.name",
            "overwrite",
        ),
        param(spec.dependency, spec.number, "spec.arguments.parameters.0.value", "overwrite"),
        param(spec.dependency, ("dataTemplate", spec.event_b64), "spec.arguments.parameters.1.value", "overwrite"),
    ];
    if let Some(pr) = spec.pr {
        // Not every check run belongs to a pull request: then the label stays empty.
        let mut pr_param = param(spec.dependency, ("dataKey", pr), "spec.arguments.parameters.2.value", "overwrite");
        pr_param["default"] = Value::from("");
        parameters.push(pr_param);
    }
    json!({
        "name": spec.name,
        "conditions": spec.dependency,
        "kind": "k8s",
        "operation": "create",
        "resource": resource,
        "parameters": parameters,
        "rate": {"unit": "Minute", "requests": 30},
    })
}

struct RunTrigger<'a> {
    name: &'a str,
    dependency: &'a str,
    template: String,
    name_prefix: String,
    /// Go template of the name's suffix; the name is `name_prefix` followed by it.
    name_suffix: &'a str,
    number: (&'a str, &'a str),
    event_b64: &'a str,
    /// Where the event keeps the pull request number, when it has one.
    pr: Option<&'a str>,
}

/// Every Sensor, as `(name, context)`.
pub fn sensors(plan: &Plan, names: &Names, events: &Events) -> Vec<(String, Value)> {
    let project = &plan.project;
    let base = regex_literal(&project.base_branch);
    // `task/<n>` or `task/<n>-<anything git allows>` (`+`, `#`, `@`, non-ASCII...).
    let branch = format!("^{BRANCH_PREFIX}{NUMBER}(-.*)?$");
    let sensor = |suffix: &str, dependencies: Vec<Value>, triggers: Vec<Value>| {
        let name = names.of(suffix).to_string();
        let ctx = json!({
            "name": name,
            "namespace": project.namespace,
            "labels": common_labels(plan, "sensor"),
            "event_bus": event_bus(plan, events),
            "service_account": names.of("sensor").to_string(),
            "event_source": names.of("github").to_string(),
            "event_name": event_name(plan),
            "dependencies": dependencies,
            "triggers": triggers,
        });
        (name, ctx)
    };
    let on = |role: AgentRole| names.of(&format!("on-{}", role.as_str())).to_string();
    let mut out = Vec::new();

    // Press play: `/play` by a trusted author, or a push to the base branch that changes the backlog.
    let mut comment = base_filters(plan, "issue_comment", Some("created"));
    comment.push(filter("body.comment.body", PLAY_COMMAND));
    comment.push(trusted(events, "body.comment.author_association"));
    let mut push = base_filters(plan, "push", None);
    push.push(filter("body.ref", &format!("^refs/heads/{base}$")));
    // A push that adds the backlog presses play as one that modifies it does (a new backlog is
    // new work): one Sensor each, since a filter cannot say "added or modified".
    let mut push_added = push.clone();
    // Some commit of the push modified (added) the backlog: the lists of every commit as JSON
    // text, with the path as one element. Not a query for the first such commit: a path that
    // does not exist is a filtering error, logged for every push that leaves the backlog alone.
    let listed = format!("^.*[\\[,]\"{}\"[,\\]].*$", regex_literal(&events.backlog_path));
    push.push(filter("body.commits.#.modified", &listed));
    push_added.push(filter("body.commits.#.added", &listed));
    // Not the run itself (a create fails while the previous run exists): the press launcher,
    // named after the delivery, which replaces a finished run or says why not (`lifecycle.rs`).
    let run = crate::render::lifecycle::press_workflow(plan, names);
    // One dependency per Sensor: an event may back only one dependency of a Sensor on some
    // EventBus kinds, and a reaction with two sources is two Sensors with the same trigger.
    for (suffix, dep, data) in
        [("play-comment", "comment", comment), ("play-push", "push", push), ("play-push-added", "push", push_added)]
    {
        out.push(sensor(
            suffix,
            vec![dependency(dep, data, not_ignored(events))],
            vec![json!({
                "name": "start-run",
                "conditions": dep,
                "kind": "k8s",
                "operation": "create",
                "resource": run.clone(),
                "parameters": crate::render::lifecycle::press_parameters(names, dep),
                "rate": {"unit": "Minute", "requests": 6},
            })],
        ));
    }

    // The reactions that start an event-driven agent: one Sensor each, one trigger each.
    let comment_number = number_from_labels(".Input.body.issue.labels");
    let review_number = number_from_branch(".Input.body.pull_request.head.ref");
    let check_number = number_from_branch(".Input.body.check_run.check_suite.head_branch");
    let run_number = number_from_branch(".Input.body.workflow_run.head_branch");
    let mut pr_comment = base_filters(plan, "issue_comment", Some("created"));
    // A pull request's conversation: the issue has a `pull_request` object. Matched in the
    // issue's JSON text, which always exists: on a plain issue `issue.pull_request` is absent,
    // and a filter on a missing path is an error (logged for every issue comment). Quotes in
    // strings are escaped in that text, so only a key can match.
    pr_comment.push(filter("body.issue", "^.*\"pull_request\":\\{.*$"));
    // Some label is exactly `task-<n>` (the names as a JSON list; a `task-*` query would stop at
    // the first label that starts so, `task-force`, and disagree with the parameter).
    pr_comment.push(filter("body.issue.labels.#.name", &format!("^\\[(.*,)?\"{PR_LABEL_PREFIX}{NUMBER}\"(,.*)?\\]$")));
    pr_comment.push(filter_not("body.comment.body", PLAY_COMMAND));
    pr_comment.push(trusted(events, "body.comment.author_association"));
    let mut review = base_filters(plan, "pull_request_review_comment", Some("created"));
    review.push(filter("body.pull_request.head.ref", &branch));
    review.push(trusted(events, "body.comment.author_association"));
    // A review's own text (changes requested, or a comment) goes to the same agent.
    let mut submitted = base_filters(plan, "pull_request_review", Some("submitted"));
    submitted.push(filter("body.review.state", "^(changes_requested|commented)$"));
    // A review with text (not only whitespace; an approval's body is often null).
    submitted.push(filter_not("body.review.body", "^\\s*$"));
    submitted.push(filter("body.pull_request.head.ref", &branch));
    submitted.push(filter(
        "body.pull_request.head.repo.full_name",
        &format!("^{}$", regex_literal(&project.repository_slug)),
    ));
    submitted.push(trusted(events, "body.review.author_association"));
    // CI failures on a task's branch, scoped to the failing check or workflow run. The agents
    // push task branches, so these events come from bots too: the loop guard is that a failure
    // of the CI-failure agent's own fix starts nothing (a person looks at it instead).
    // GitHub Actions report through workflow_run; check_run covers the other CI apps, so one
    // failure starts one remediation.
    let own_fix = format!("{}[bot]", AgentRole::CiFailure.github_app());
    let mut check = fact_filters(plan, "check_run", Some("completed"));
    check.push(filter("body.check_run.conclusion", "^failure$"));
    check.push(filter("body.check_run.check_suite.head_branch", &branch));
    // Not `check_run.app.slug`: some check runs have an app without a slug, and a filter on a
    // missing path drops the event. The check run's JSON always exists.
    check.push(filter_not("body.check_run", "^.*\"slug\":\"github-actions\".*$"));
    let mut workflow_run = fact_filters(plan, "workflow_run", Some("completed"));
    workflow_run.push(filter("body.workflow_run.conclusion", "^failure$"));
    workflow_run.push(filter("body.workflow_run.head_branch", &branch));
    let not_own_fix = |path: &str| {
        vec![json!({"expr": format!("login != \"{own_fix}\""), "fields": [{"name": "login", "path": path}]})]
    };
    // New issues from trusted authors: one triage per issue, whatever is delivered twice.
    let mut issue = base_filters(plan, "issues", Some("opened"));
    issue.push(trusted(events, "body.issue.author_association"));

    let fix = format!("{}-fix-", names.orchestrator);
    let ci = format!("{}-ci-", names.orchestrator);
    let triage = format!("{}-triage-", names.orchestrator);
    let reactions = [
        // (Sensor, dependency, filters, trigger, role, run name prefix and suffix, task number,
        //  event as base64, pull request number)
        (
            "pr-comment",
            "comment",
            pr_comment,
            "fix-comment",
            AgentRole::PrComment,
            &fix,
            DELIVERY_HASH,
            ("dataTemplate", comment_number.as_str()),
            "{{ .Input.body.comment.body | b64enc }}",
            Some("body.issue.number"),
        ),
        (
            "review-comment",
            "review",
            review,
            "fix-review",
            AgentRole::PrComment,
            &fix,
            DELIVERY_HASH,
            ("dataTemplate", review_number.as_str()),
            "{{ .Input.body.comment.body | b64enc }}",
            Some("body.pull_request.number"),
        ),
        (
            "review",
            "review",
            submitted,
            "fix-review-text",
            AgentRole::PrComment,
            &fix,
            DELIVERY_HASH,
            ("dataTemplate", review_number.as_str()),
            "{{ .Input.body.review.body | b64enc }}",
            Some("body.pull_request.number"),
        ),
        (
            "ci-check",
            "check",
            check,
            "fix-check",
            AgentRole::CiFailure,
            &ci,
            DELIVERY_HASH,
            ("dataTemplate", check_number.as_str()),
            "{{ .Input.body.check_run | toJson | b64enc }}",
            Some("body.check_run.pull_requests.0.number"),
        ),
        (
            "ci-workflow-run",
            "run",
            workflow_run,
            "fix-run",
            AgentRole::CiFailure,
            &ci,
            DELIVERY_HASH,
            ("dataTemplate", run_number.as_str()),
            "{{ .Input.body.workflow_run | toJson | b64enc }}",
            Some("body.workflow_run.pull_requests.0.number"),
        ),
        (
            "triage",
            "issue",
            issue,
            "triage-issue",
            AgentRole::Triage,
            &triage,
            "{{ int64 .Input.body.issue.number }}",
            ("dataKey", "body.issue.number"),
            "{{ .Input.body.issue | toJson | b64enc }}",
            None,
        ),
    ];
    for (suffix, dep, data, trigger, role, prefix, name_suffix, number, event_b64, pr) in reactions {
        let exprs = match suffix {
            "ci-check" => not_own_fix("body.sender.login"),
            // `workflow_run.actor` is missing from some payloads; `sender` never is.
            "ci-workflow-run" => not_own_fix("body.sender.login"),
            _ => not_ignored(events),
        };
        let run = RunTrigger {
            name: trigger,
            dependency: dep,
            template: on(role),
            name_prefix: prefix.clone(),
            name_suffix,
            number,
            event_b64,
            pr,
        };
        out.push(sensor(suffix, vec![dependency(dep, data, exprs)], vec![create_run(plan, run)]));
    }

    // Merge or close: record the fact (durable, idempotent) in Sensors that hold no Secret, so
    // that nothing the wake-up needs can stop the record; wake the waiting gate from a third.
    let mut closed = fact_filters(plan, "pull_request", Some("closed"));
    closed.push(filter("body.pull_request.base.ref", &format!("^{base}$")));
    closed.push(filter(
        "body.pull_request.head.repo.full_name",
        &format!("^{}$", regex_literal(&project.repository_slug)),
    ));
    closed.push(filter("body.pull_request.head.ref", &branch));
    let number = number_from_branch(".Input.body.pull_request.head.ref");
    let state = |value: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": names.state_prefix(),
                "namespace": project.namespace,
                "labels": {
                    "workflows.argoproj.io/configmap-type": "Parameter",
                    "app.kubernetes.io/managed-by": "pressplay",
                    "pressplay.dev/project": project.name,
                    "pressplay.dev/component": "state",
                },
            },
            "data": {"merged": value, "task-number": "", "pr": "", "merge-commit": ""},
        })
    };
    let record = |name: &str, value: &str, with_commit: bool| {
        let mut parameters = vec![
            param("closed", ("dataTemplate", &number), "metadata.name", "append"),
            param("closed", ("dataTemplate", &number), "data.task-number", "overwrite"),
            param("closed", ("dataKey", "body.pull_request.number"), "data.pr", "overwrite"),
        ];
        if with_commit {
            parameters.push(param(
                "closed",
                ("dataKey", "body.pull_request.merge_commit_sha"),
                "data.merge-commit",
                "overwrite",
            ));
        }
        json!({
            "name": name,
            "conditions": "closed",
            "kind": "k8s",
            "operation": "patch",
            "patch_strategy": "application/merge-patch+json",
            "resource": state(value),
            "parameters": parameters,
            "rate": {"unit": "Minute", "requests": 60},
        })
    };
    for (suffix, merged, trigger, value) in
        [("merge", true, "record-merged", "true"), ("merge-closed", false, "record-closed", "closed")]
    {
        let mut data = closed.clone();
        data.push(filter_bool("body.pull_request.merged", merged));
        out.push(sensor(suffix, vec![dependency("closed", data, Vec::new())], vec![record(trigger, value, merged)]));
    }
    let selector = format!(
        "templateName={GATE_WAIT_TEMPLATE},inputs.parameters.gate.value=merged,inputs.parameters.task-number.value={number}"
    );
    // Each task runs in its own Workflow `<project>-task-<number>`: the URL names it, completed
    // from the same digits the selector carries (a trigger-level parameter rewrites `http.url`).
    let resume = |task: &str| {
        format!(
            "{}/api/v1/workflows/{}/{}{task}/resume",
            plan.access.argo_server,
            project.namespace,
            names.task_workflow_prefix()
        )
    };
    out.push(sensor(
        "merge-wake",
        vec![dependency("closed", closed, Vec::new())],
        vec![json!({
            "name": "wake-merge-wait",
            "conditions": "closed",
            "kind": "http",
            "url": resume("0"),
            "trigger_parameters": [param("closed", ("dataTemplate", &resume(&number)), "http.url", "overwrite")],
            "auth_secret": names.of("waker").to_string(),
            "ca_secret": names.of("argo-server-ca").to_string(),
            "payload": [param("closed", ("dataTemplate", &selector), "nodeFieldSelector", "overwrite")],
            "rate": {"unit": "Minute", "requests": 60},
        })],
    ));
    out
}

fn event_bus(plan: &Plan, events: &Events) -> String {
    events.event_bus.clone().unwrap_or_else(|| plan.project.name.clone())
}

/// Context of `events/eventbus.yaml.j2`, when the project brings its own EventBus.
pub fn eventbus(plan: &Plan, events: &Events) -> Option<Value> {
    if events.event_bus.is_some() {
        return None;
    }
    Some(
        json!({"name": plan.project.name, "namespace": plan.project.namespace, "labels": common_labels(plan, "events")}),
    )
}

/// Context of `events/eventsource.yaml.j2`.
pub fn eventsource(plan: &Plan, names: &Names, events: &Events) -> Value {
    let (owner, repo) = plan.project.repository_slug.split_once('/').expect("slugs are owner/name");
    json!({
        "name": names.of("github").to_string(),
        "namespace": plan.project.namespace,
        "labels": common_labels(plan, "events"),
        "event_bus": event_bus(plan, events),
        "event_name": event_name(plan),
        "owner": owner,
        "repo": repo,
        "events": [
            "check_run",
            "issue_comment",
            "issues",
            "pull_request",
            "pull_request_review",
            "pull_request_review_comment",
            "push",
            "workflow_run",
        ],
        "endpoint": format!("/github/{}", plan.project.name),
        "port": WEBHOOK_PORT.to_string(),
        "port_number": WEBHOOK_PORT,
        "webhook_secret": events.webhook_secret.as_ref().map(|(name, key)| json!({"name": name, "key": key})),
    })
}

/// Context of `common/externalsecret.yaml.j2`: the GitHub App credentials (for the reconcile,
/// rendered with events on or off) and, with events, the webhook secret, from the External
/// Secrets Operator.
pub fn external_secret(plan: &Plan, names: &Names) -> Value {
    let mut keys = vec!["app-id", "installation-id", "private-key"];
    if plan.events.is_some() {
        keys.push("webhook-secret");
    }
    json!({
        "name": names.of("github").to_string(),
        "namespace": plan.project.namespace,
        "labels": common_labels(plan, "github"),
        "store": plan.access.secret_store,
        "remote_key": plan.access.remote_key,
        "keys": keys,
    })
}

/// Contexts of `workflows/remediate.yaml.j2`, one per event-driven agent.
pub fn remediations(plan: &Plan, names: &Names) -> Vec<(String, Value)> {
    AgentRole::REMEDIATORS
        .iter()
        .map(|role| {
            let name = names.of(&format!("on-{}", role.as_str())).to_string();
            let ctx = json!({
                "name": name,
                "namespace": plan.project.namespace,
                "labels": common_labels(plan, "remediation"),
                "role": role.as_str(),
                "service_account": names.orchestrator_account.to_string(),
                "stages": names.stages.to_string(),
                "agent": agent_template(Kind::Code, *role),
                "run_labels": {
                    LABEL_TASK_NUMBER: "{{workflow.parameters.task-number}}",
                    LABEL_PR: "{{workflow.parameters.pr}}",
                },
                "ttl_after_success_seconds": plan.defaults.ttl_after_success_seconds,
                "ttl_after_failure_seconds": plan.defaults.ttl_after_failure_seconds,
            });
            (name, ctx)
        })
        .collect()
}
