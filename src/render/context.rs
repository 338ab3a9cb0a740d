//! View models handed to templates. Field names are used by `templates/`: renaming one means
//! updating the templates too. Every value here is computed in Rust (names, ordering, defaults,
//! the `depends` expressions); templates only lay them out.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::Plan;
use crate::plan::names;
pub use crate::plan::names::{
    LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_PR, LABEL_PROJECT, LABEL_REPOSITORY, LABEL_STAGE, LABEL_TASK,
    LABEL_TASK_NUMBER, Names, common_labels,
};
use crate::spec::{AgentRole, Kind, StageName};

/// The suspend template a merge wake-up targets.
pub const GATE_WAIT_TEMPLATE: &str = "gate-wait";
/// A merge gate reads its state again after this long without a wake-up.
/// Twice a day: a lost wake-up is made good by the reconcile within 15 minutes anyway, and every
/// round adds five nodes to the task Workflow (a month of 6-hour rounds weighed 420 KiB).
pub const GATE_RECHECK: &str = "12h";
/// Rounds of a merge gate before the task fails (60 rounds of 12 hours: 30 days; a wake-up
/// that finds no merge also ends a round).
pub const GATE_ROUNDS: u32 = 60;
/// The parameters every chain and agent template takes, in order.
pub const TASK_PARAMS: [&str; 4] = ["task-number", "task-id", "task-node", "brief-map"];
/// The suspend template the run waits in until its last task Workflow has ended.
pub const END_WAIT_TEMPLATE: &str = "end-wait";
/// The run reads the task Workflows again after this long without a wake-up (the last task's
/// dispatcher wakes it, and so does every reconcile once nothing is left).
pub const END_RECHECK: &str = "24h";
/// Rounds of the run's wait: one a day for ten years, since a run lasts as long as its backlog.
/// A round costs a few nodes only when it happens, so the run's status stays small.
pub const END_ROUNDS: u32 = 3650;
/// The dispatcher's template in the stages WorkflowTemplate.
pub const DISPATCH_TEMPLATE: &str = "dispatch";
/// The optional parameter carrying a task's requirements (base64 YAML) to its CodeRuns.
pub const REQUIREMENTS_PARAM: &str = "requirements";

/// Eight characters of the run's uid: tells apart the runs of one name (the fixed-name run is
/// deleted and created again).
pub const RUN_ID: &str = "{{=sprig.trunc(8, workflow.uid)}}";
/// The token of one deployment: task, remediation attempt, run. A label value (at most 63).
pub const DEPLOY_TOKEN: &str =
    "t{{inputs.parameters.task-number}}-a{{inputs.parameters.attempt}}-{{=sprig.trunc(8, workflow.uid)}}";

/// Key of the agents semaphore in the limits ConfigMap.
pub const AGENTS_SEMAPHORE_KEY: &str = "agents";

/// Context of `workflows/stages.yaml.j2`.
#[derive(Debug, Serialize)]
pub struct StagesCtx {
    /// WorkflowTemplate name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Object labels.
    pub labels: BTreeMap<String, String>,
    /// Parameters of chain and agent templates.
    pub task_params: Vec<&'static str>,
    /// One per chain.
    pub chains: Vec<ChainCtx>,
    /// One per (resource kind, agent role) used.
    pub agents: Vec<AgentCtx>,
    /// Semaphore every agent holds.
    pub semaphore: SemaphoreCtx,
    /// Project values written into the CodeRun/DocsRun spec.
    pub project: ProjectCtx,
    /// Whether the `nothing-to-run` template is needed.
    pub noop: bool,
    /// The stand-in template's name.
    pub noop_name: &'static str,
    /// Default of the `requirements` parameter (the project's, base64), when any task's
    /// CodeRuns carry requirements.
    pub requirements: Option<String>,
    /// The merge gate, when events are on.
    pub gate: Option<GateCtx>,
    /// Task branches are `<branch_prefix><task number>[-anything]`.
    pub branch_prefix: &'static str,
    /// Task pull requests carry the label `<label_prefix><task number>`.
    pub label_prefix: &'static str,
    /// Whether any task has HTTP probes (the chains then take a `probes` parameter).
    pub probes: bool,
    /// The Argo CD Application the deploy stage waits for, when configured.
    pub deploy: Option<DeployCtx>,
    /// Times a failed acceptance goes back to remediation.
    pub max_remediations: u32,
    /// A pinned image for the one step that only fails (a task out of remediations).
    pub fail_image: &'static str,
    /// `wait`, `merge` or `auto-merge`, for the merge agent.
    pub merge_mode: String,
    /// Seconds between the merge agent's checks.
    pub merge_poll_seconds: u64,
    /// After a task's merge: what to delete (`coderuns`, `docsruns`, comma-joined) and as whom.
    pub cleanup: Option<CleanupCtx>,
    /// The settings of task Workflows, which start from this template; none without tasks.
    pub workflow: Option<TaskWorkflowCtx>,
}

/// Workflow-level settings of the task Workflows.
#[derive(Debug, Serialize)]
pub struct TaskWorkflowCtx {
    /// ServiceAccount of the task Workflow (its http probes run under it).
    pub service_account: String,
    /// The kinds of agent runs the exit handler of a task Workflow that did not succeed ends
    /// (`coderuns`, `docsruns`), as a JSON list for `withParam`; empty when there are none.
    pub stop_kinds: String,
    /// Task Workflows are `<task_prefix><number>`.
    pub task_prefix: String,
}

/// Deleting a task's agent runs once it is merged.
#[derive(Debug, Serialize)]
pub struct CleanupCtx {
    /// Resource kinds, as kubectl names them, comma-joined.
    pub kinds: String,
    /// The selector prefix; the task number completes it.
    pub selector_prefix: String,
    /// The ServiceAccount allowed to delete them.
    pub service_account: String,
    /// Selects every agent run this run created.
    pub run_selector: String,
}

/// The deploy stage's wait for an Argo CD Application (or another resource).
#[derive(Debug, Serialize)]
pub struct DeployCtx {
    /// Resource name.
    pub application: String,
    /// API version.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Success condition.
    pub success_condition: String,
    /// Failure condition.
    pub failure_condition: String,
    /// Its namespace.
    pub namespace: String,
    /// Longest wait.
    pub timeout_seconds: u64,
    /// ServiceAccount allowed to read the Application (the deploy agent's).
    pub service_account: String,
}

/// The acceptance stage of a chain: probes and the acceptance agent, and on failure a bounded
/// loop back through remediation and the gates.
#[derive(Debug, Serialize)]
pub struct AcceptCtx {
    /// The recursive template (`<chain>-accept`).
    pub accept: String,
    /// Probes then the acceptance agent (`<chain>-verify`).
    pub verify: String,
    /// The acceptance agent template.
    pub agent: String,
    /// The remediation agent template (the author's).
    pub remediation: String,
    /// The gate stages run again after remediation, in order.
    pub gates: Vec<StepCtx>,
    /// The deploy stage, when the chain deploys before acceptance: every attempt deploys,
    /// waits for its own deployment and verifies it while holding `deploy_lock`.
    pub deploy: Option<StepCtx>,
    /// The mutex held from deploy to the end of acceptance, so that two tasks never test the
    /// shared preview at the same time.
    pub deploy_lock: String,
}

/// The merge gate's names.
#[derive(Debug, Serialize)]
pub struct GateCtx {
    /// State ConfigMaps are `<state_prefix><task number>`.
    pub state_prefix: String,
    /// The suspend template wake-ups target.
    pub wait_template: &'static str,
    /// How long one round waits without a wake-up before reading the state again.
    pub recheck: &'static str,
    /// How many rounds a task waits at most (with `recheck`, about 30 days).
    pub rounds: u32,
}

/// A chain template.
#[derive(Debug, Serialize)]
pub struct ChainCtx {
    /// Template name the DAG nodes call.
    pub name: String,
    /// Name of the steps template (the same as `name` without a gate).
    pub steps_name: String,
    /// Whether the chain passes requirements on (code chains, when any task has some).
    pub requirements: bool,
    /// Steps in order, up to (not including) acceptance.
    pub steps: Vec<StepCtx>,
    /// The acceptance stage, when the pipeline has one.
    pub accept: Option<AcceptCtx>,
    /// Steps after acceptance (the merge agent, say).
    pub after: Vec<StepCtx>,
    /// What the chain's agents create, as kubectl names them (`coderuns`), comma-joined: what
    /// cleanup deletes.
    pub cleanup_kinds: String,
}

/// One step of a chain.
#[derive(Debug, Serialize)]
pub struct StepCtx {
    /// Stage name (also the step name).
    pub stage: &'static str,
    /// Agent template it calls.
    pub template: String,
    /// Whether the deploy wait follows this step.
    pub deploy_wait: bool,
}

/// An agent template: creates one CodeRun or DocsRun and waits for it.
#[derive(Debug, Serialize)]
pub struct AgentCtx {
    /// Template name (`coderun-author`, `docsrun-lint`, ...).
    pub template: String,
    /// Resource kind.
    pub kind: &'static str,
    /// Agent role (`author`, ..., `pr-comment`).
    pub role: &'static str,
    /// The role's ServiceAccount.
    pub service_account: String,
    /// GitHub App of the role.
    pub github_app: String,
    /// Model of the role.
    pub model: String,
    /// Name of the created resource, with Argo tags: one per run, task, role and remediation
    /// attempt, so that a retried step (an evicted pod) finds the agent already at work instead
    /// of starting a second one.
    pub resource_name: String,
    /// The per-task mutex every agent of a task holds (none for the merge agent, which may
    /// wait for people).
    pub task_mutex: Option<String>,
    /// Whether the agent takes a slot of the `agents` semaphore.
    pub holds_slot: bool,
    /// The deploy agent's token (`PRESSPLAY_DEPLOY_TOKEN`), which it puts on what it syncs.
    pub deploy_token: Option<String>,
    /// Labels of the created resource, with Argo tags.
    pub labels: BTreeMap<String, String>,
    /// Whether the resource gets `taskRequirements`.
    pub requirements: bool,
    /// CodeRun `promptModification` (checked: no `{{`, `}}` or control characters).
    pub prompt_modification: String,
    /// CodeRun `localTools`, comma-separated.
    pub local_tools: String,
    /// CodeRun `remoteTools`, comma-separated.
    pub remote_tools: String,
    /// `cpu=...,memory=...` for the resources annotation.
    pub resources: String,
    /// `activeDeadlineSeconds` of this agent's step.
    pub timeout_seconds: u64,
    /// Retries of this agent's step after infrastructure errors.
    pub retries: u32,
    /// The quality gates the agent owns, as base64 of a JSON list.
    pub gates_b64: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`, with Argo tags for the task and run.
    pub otel_attributes: String,
}

/// A semaphore reference.
#[derive(Debug, Serialize)]
pub struct SemaphoreCtx {
    /// ConfigMap name.
    pub config_map: String,
    /// Key in it.
    pub key: &'static str,
}

/// Project values for resource specs.
#[derive(Debug, Serialize)]
pub struct ProjectCtx {
    /// Project name.
    pub name: String,
    /// CodeRun `service`.
    pub service: String,
    /// Clone URL.
    pub repository_url: String,
    /// Docs clone URL.
    pub docs_repository_url: String,
    /// Docs directory.
    pub docs_project_directory: String,
    /// Docs branch.
    pub docs_branch: String,
    /// Working directory.
    pub working_directory: String,
    /// Base branch.
    pub base_branch: String,
}

/// The agent template for a resource kind and a role: `coderun-author`.
pub fn agent_template(kind: Kind, role: AgentRole) -> String {
    let kind = match kind {
        Kind::Code => "coderun",
        Kind::Docs => "docsrun",
    };
    format!("{kind}-{}", role.as_str())
}

/// The resource a role creates for a task of `kind`: a DocsRun for docs tasks, else the kind
/// the role's profile names.
pub fn resource_kind(plan: &Plan, kind: Kind, role: AgentRole) -> Kind {
    match kind {
        Kind::Docs => Kind::Docs,
        Kind::Code if plan.profiles.get(&role).is_some_and(|p| p.kind == "DocsRun") => Kind::Docs,
        Kind::Code => Kind::Code,
    }
}

/// Every (resource kind, role) an agent template is rendered for: the stages the chains use,
/// and the event-driven agents when events are on.
pub fn agent_roles(plan: &Plan) -> Vec<(Kind, AgentRole)> {
    let mut roles: std::collections::BTreeSet<(Kind, AgentRole)> = plan
        .chains
        .iter()
        .flat_map(|c| {
            c.stages.iter().map(move |s| (resource_kind(plan, c.kind, AgentRole::Stage(*s)), AgentRole::Stage(*s)))
        })
        .collect();
    // A failed acceptance goes back to the author, whether or not the pipeline starts with one.
    for chain in plan.chains.iter().filter(|c| c.stages.contains(&StageName::Acceptance)) {
        let author = AgentRole::Stage(StageName::Author);
        roles.insert((resource_kind(plan, chain.kind, author), author));
    }
    if plan.events.is_some() {
        roles.extend(AgentRole::REMEDIATORS.iter().map(|r| (resource_kind(plan, Kind::Code, *r), *r)));
    }
    roles.into_iter().collect()
}

/// Context of `workflows/stages.yaml.j2`.
pub fn stages(plan: &Plan, names: &Names) -> StagesCtx {
    let project = &plan.project;
    let with_requirements = plan.requirements.is_some() || plan.tasks.iter().any(|t| t.requirements.is_some());
    let gate = marks_merge(plan);
    let agent_labels = |role: AgentRole| {
        let mut labels = common_labels(plan, "agent");
        labels.insert(LABEL_TASK.to_owned(), "{{inputs.parameters.task-node}}".to_owned());
        labels.insert(LABEL_TASK_NUMBER.to_owned(), "{{inputs.parameters.task-number}}".to_owned());
        labels.insert(LABEL_STAGE.to_owned(), role.as_str().to_owned());
        labels.insert("pressplay.dev/workflow".to_owned(), "{{workflow.name}}".to_owned());
        // Known to runs that events start; empty for the first run of a task, whose author
        // opens the pull request (labelled task-<number>).
        labels.insert(LABEL_PR.to_owned(), "{{inputs.parameters.pr}}".to_owned());
        labels
    };
    StagesCtx {
        name: names.stages.to_string(),
        namespace: project.namespace.clone(),
        labels: common_labels(plan, "stages"),
        task_params: TASK_PARAMS.to_vec(),
        chains: plan
            .chains
            .iter()
            .map(|chain| ChainCtx {
                name: chain.name.to_string(),
                steps_name: if gate { format!("{}-steps", chain.name) } else { chain.name.to_string() },
                requirements: with_requirements && chain.kind == Kind::Code,
                steps: chain
                    .stages
                    .iter()
                    .take_while(|stage| **stage != StageName::Acceptance)
                    .filter(|stage| !(**stage == StageName::Deploy && chain.stages.contains(&StageName::Acceptance)))
                    .map(|stage| step(plan, chain.kind, *stage))
                    .collect(),
                after: chain
                    .stages
                    .iter()
                    .skip_while(|stage| **stage != StageName::Acceptance)
                    .skip(1)
                    .map(|stage| step(plan, chain.kind, *stage))
                    .collect(),
                accept: chain.stages.contains(&StageName::Acceptance).then(|| {
                    let role = AgentRole::Stage(StageName::Acceptance);
                    let author = AgentRole::Stage(StageName::Author);
                    AcceptCtx {
                        accept: format!("{}-accept", chain.name),
                        verify: format!("{}-verify", chain.name),
                        agent: agent_template(resource_kind(plan, chain.kind, role), role),
                        remediation: agent_template(resource_kind(plan, chain.kind, author), author),
                        gates: chain
                            .stages
                            .iter()
                            .take_while(|s| **s != StageName::Acceptance)
                            .filter(|s| matches!(s, StageName::Lint | StageName::Tests))
                            .map(|s| step(plan, chain.kind, *s))
                            .collect(),
                        deploy: chain
                            .stages
                            .iter()
                            .take_while(|s| **s != StageName::Acceptance)
                            .find(|s| **s == StageName::Deploy)
                            .map(|s| step(plan, chain.kind, *s)),
                        deploy_lock: names.of("deploy").to_string(),
                    }
                }),
                cleanup_kinds: chain_kinds(plan, chain).join(","),
            })
            .collect(),
        agents: agent_roles(plan)
            .into_iter()
            .map(|(kind, role)| {
                let profile = &plan.profiles[&role];
                AgentCtx {
                    template: agent_template(kind, role),
                    kind: match kind {
                        Kind::Code => "CodeRun",
                        Kind::Docs => "DocsRun",
                    },
                    role: role.as_str(),
                    service_account: names.agent_account(role).to_string(),
                    github_app: profile.github_app.clone(),
                    model: profile.model.clone(),
                    prompt_modification: profile.prompt_modification.clone(),
                    local_tools: profile.local_tools.join(","),
                    remote_tools: profile.remote_tools.join(","),
                    resources: profile.resources_text(),
                    timeout_seconds: profile.timeout_seconds,
                    retries: profile.retries,
                    gates_b64: profile.gates_b64(),
                    otel_attributes: format!(
                        "service.name=pressplay,pressplay.project={},pressplay.stage={},pressplay.task={{{{inputs.parameters.task-number}}}},argo.workflow={{{{workflow.name}}}}",
                        project.name,
                        role.as_str()
                    ),
                    resource_name: format!(
                        "{}-{{{{inputs.parameters.task-number}}}}-{}-{{{{inputs.parameters.attempt}}}}-{RUN_ID}",
                        project.name,
                        role.as_str()
                    ),
                    task_mutex: (role != AgentRole::Stage(StageName::Merge))
                        .then(|| format!("{}-task-{{{{inputs.parameters.task-number}}}}", project.name)),
                    holds_slot: role != AgentRole::Stage(StageName::Merge),
                    deploy_token: (role == AgentRole::Stage(StageName::Deploy)).then(|| DEPLOY_TOKEN.to_owned()),
                    labels: agent_labels(role),
                    requirements: with_requirements && kind == Kind::Code,
                }
            })
            .collect(),
        semaphore: SemaphoreCtx { config_map: names.limits.to_string(), key: AGENTS_SEMAPHORE_KEY },
        project: ProjectCtx {
            name: project.name.clone(),
            service: project.service.clone(),
            repository_url: project.repository_url.clone(),
            docs_repository_url: project.docs_repository_url.clone(),
            docs_project_directory: project.docs_project_directory.clone(),
            docs_branch: project.docs_branch.clone(),
            working_directory: project.working_directory.clone(),
            base_branch: project.base_branch.clone(),
        },
        noop: plan.tasks.is_empty(),
        noop_name: crate::plan::NOOP_NODE,
        requirements: with_requirements.then(|| plan.requirements.clone().unwrap_or_default()),
        gate: gate.then(|| GateCtx {
            state_prefix: names.state_prefix(),
            wait_template: GATE_WAIT_TEMPLATE,
            recheck: GATE_RECHECK,
            rounds: GATE_ROUNDS,
        }),
        branch_prefix: names::BRANCH_PREFIX,
        label_prefix: names::PR_LABEL_PREFIX,
        probes: plan.tasks.iter().any(|t| t.probes.is_some()),
        deploy: plan.project.deploy.as_ref().map(|deploy| DeployCtx {
            application: deploy.application.clone(),
            api_version: deploy.api_version.clone(),
            kind: deploy.kind.clone(),
            success_condition: deploy.success_condition.clone(),
            failure_condition: deploy.failure_condition.clone(),
            namespace: deploy.namespace.clone(),
            timeout_seconds: deploy.timeout_seconds,
            service_account: names.agent_account(AgentRole::Stage(StageName::Deploy)).to_string(),
        }),
        max_remediations: plan.defaults.max_remediations,
        fail_image: "busybox:1.37",
        merge_mode: plan.defaults.merge.clone(),
        merge_poll_seconds: plan.defaults.merge_poll_seconds,
        cleanup: cleanup_kinds(plan).map(|kinds| CleanupCtx {
            kinds: kinds.join(","),
            // Only this run's: a remediation that an event started for the same task keeps its
            // runs until its own workflow ends.
            selector_prefix: format!("{LABEL_PROJECT}={},pressplay.dev/workflow={{{{workflow.name}}}},{LABEL_TASK_NUMBER}=", project.name),
            service_account: names.of("cleanup").to_string(),
            run_selector: format!("{LABEL_PROJECT}={},pressplay.dev/workflow={{{{workflow.name}}}}", project.name),
        }),
        workflow: (!plan.tasks.is_empty()).then(|| TaskWorkflowCtx {
            service_account: names.orchestrator_account.to_string(),
            stop_kinds: cleanup_kinds(plan).map(|k| serde_json::to_string(&k).expect("strings")).unwrap_or_default(),
            task_prefix: names.task_workflow_prefix(),
        }),
    }
}

/// Whether tasks wait for their merge before their dependents start: always, in a pod-less gate.
/// With events on the merge Sensor records a merge and wakes the gate; the reconcile
/// CronWorkflow reads merges from GitHub either way (the only source with events off).
pub fn marks_merge(plan: &Plan) -> bool {
    !plan.tasks.is_empty()
}

/// Whether the reconcile CronWorkflow, the GitHub App credentials it reads and the waker account
/// it wakes gates as are rendered: with events (whose Sensors use them, tasks or not), or when
/// some task has a gate whose merge only the reconcile can record.
pub fn reconciles(plan: &Plan) -> bool {
    plan.events.is_some() || marks_merge(plan)
}

/// What a chain's agents create, as kubectl names the kinds (`coderuns`, `docsruns`).
fn chain_kinds(plan: &Plan, chain: &crate::plan::Chain) -> Vec<&'static str> {
    let mut roles: Vec<AgentRole> = chain.stages.iter().map(|s| AgentRole::Stage(*s)).collect();
    if chain.stages.contains(&StageName::Acceptance) {
        roles.push(AgentRole::Stage(StageName::Author));
    }
    let kinds: std::collections::BTreeSet<&'static str> = roles
        .into_iter()
        .map(|role| match resource_kind(plan, chain.kind, role) {
            Kind::Code => "coderuns",
            Kind::Docs => "docsruns",
        })
        .collect();
    kinds.into_iter().collect()
}

/// The resources a merged task's agents leave behind, when something marks the merge (the
/// merge gate with events on, or the merge agent without them): `coderuns`, `docsruns`.
pub fn cleanup_kinds(plan: &Plan) -> Option<Vec<&'static str>> {
    if !marks_merge(plan) || plan.tasks.is_empty() {
        return None;
    }
    let kinds: std::collections::BTreeSet<&'static str> = agent_roles(plan)
        .into_iter()
        .map(|(kind, _)| match kind {
            Kind::Code => "coderuns",
            Kind::Docs => "docsruns",
        })
        .collect();
    Some(kinds.into_iter().collect())
}

/// A chain step calling the agent of `stage`, followed by the deploy wait when there is one.
fn step(plan: &Plan, kind: Kind, stage: StageName) -> StepCtx {
    let role = AgentRole::Stage(stage);
    StepCtx {
        stage: stage.as_str(),
        template: agent_template(resource_kind(plan, kind, role), role),
        deploy_wait: stage == StageName::Deploy && plan.project.deploy.is_some(),
    }
}

/// Context of `workflows/orchestrator.yaml.j2`: the run, which starts the tasks whose
/// dependencies have merged and waits, without a pod, until the last task Workflow has ended.
#[derive(Debug, Serialize)]
pub struct OrchestratorCtx {
    /// WorkflowTemplate name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Object labels.
    pub labels: BTreeMap<String, String>,
    /// Object annotations.
    pub annotations: BTreeMap<String, String>,
    /// ServiceAccount the run uses.
    pub service_account: String,
    /// Labels on every run.
    pub workflow_labels: BTreeMap<String, String>,
    /// One run per project at a time.
    pub mutex: String,
    /// TTL after success.
    pub ttl_after_success_seconds: u64,
    /// TTL after failure.
    pub ttl_after_failure_seconds: u64,
    /// The stages WorkflowTemplate, which holds the dispatcher.
    pub stages: String,
    /// The dispatcher's template.
    pub dispatch: &'static str,
    /// The suspend template wake-ups target.
    pub wait_template: &'static str,
    /// How long one round waits without a wake-up.
    pub recheck: &'static str,
    /// Rounds before the run gives up waiting.
    pub rounds: u32,
    /// No task to run: the run only says so.
    pub noop: Option<&'static str>,
}

/// A name/value argument.
#[derive(Debug, Serialize)]
pub struct ParamCtx {
    /// Parameter name.
    pub name: &'static str,
    /// Its value (always a string, as the CRD requires).
    pub value: String,
}

/// Context of `workflows/orchestrator.yaml.j2`.
pub fn orchestrator(plan: &Plan, names: &Names) -> OrchestratorCtx {
    let annotations = BTreeMap::from([
        ("pressplay.dev/role".to_owned(), "orchestrator".to_owned()),
        ("pressplay.dev/tasks".to_owned(), plan.tasks.len().to_string()),
    ]);
    OrchestratorCtx {
        name: names.orchestrator.to_string(),
        namespace: plan.project.namespace.clone(),
        labels: common_labels(plan, "orchestrator"),
        annotations,
        service_account: names.orchestrator_account.to_string(),
        workflow_labels: common_labels(plan, "run"),
        mutex: names.run_mutex.to_string(),
        ttl_after_success_seconds: plan.defaults.ttl_after_success_seconds,
        ttl_after_failure_seconds: plan.defaults.ttl_after_failure_seconds,
        stages: names.stages.to_string(),
        dispatch: DISPATCH_TEMPLATE,
        wait_template: END_WAIT_TEMPLATE,
        recheck: END_RECHECK,
        rounds: END_ROUNDS,
        noop: plan.tasks.is_empty().then_some(crate::plan::NOOP_NODE),
    }
}

/// One task's record in a graph ConfigMap: what the dispatcher needs to start its Workflow.
#[derive(Debug, Serialize)]
pub struct TaskRecord {
    /// Task number (digits).
    pub number: String,
    /// Numbers of the tasks it waits for (their merge).
    pub deps: Vec<String>,
    /// The chain template the task Workflow starts at.
    pub entrypoint: String,
    /// The task Workflow's arguments.
    pub parameters: Vec<ParamCtx>,
}

/// The record of `plan.tasks[index]`.
pub fn task_record(plan: &Plan, names: &Names, index: usize) -> TaskRecord {
    let task = &plan.tasks[index];
    let values = [
        task.number.to_string(),
        task.id.to_string(),
        task.node.to_string(),
        names.brief_map(task.brief_map).to_string(),
    ];
    let mut parameters: Vec<ParamCtx> =
        TASK_PARAMS.iter().zip(values).map(|(name, value)| ParamCtx { name, value }).collect();
    if let Some(requirements) = task.requirements.as_ref().filter(|_| task.kind == Kind::Code) {
        parameters.push(ParamCtx { name: REQUIREMENTS_PARAM, value: requirements.clone() });
    }
    if let Some(probes) = &task.probes {
        parameters.push(ParamCtx { name: "probes", value: probes.clone() });
    }
    // The dispatcher starts only tasks that are not merged; the gate reads the state again.
    parameters.push(ParamCtx { name: "merged", value: "pending".to_owned() });
    TaskRecord {
        number: task.number.to_string(),
        deps: task.dependencies.iter().map(|&d| plan.tasks[d].number.to_string()).collect(),
        entrypoint: plan.chains[task.chain].name.to_string(),
        parameters,
    }
}
