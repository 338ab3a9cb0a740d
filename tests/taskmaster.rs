//! Task Master backlogs and the text the agents receive: every real file in the corpus renders
//! or fails with a diagnostic, and every text arrives byte for byte, whatever it contains.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use crate::common::{diagnostics, render_text, root, shared};

/// Every brief in a rendered tree (its brief ConfigMaps), decoded, by task id.
fn briefs(files: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    crate::common::briefs(files)
        .into_values()
        .map(|text| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
            let brief: Value = serde_json::from_slice(&bytes).unwrap();
            (brief["id"].as_str().unwrap().to_owned(), brief)
        })
        .collect()
}

/// The tasks of a Task Master file as plain JSON, for the tag pressplay reads by default.
fn source_tasks(json: &Value) -> Vec<Value> {
    if let Some(tasks) = json.get("tasks").and_then(Value::as_array) {
        return tasks.clone();
    }
    match &json["master"] {
        Value::Array(tasks) => tasks.clone(),
        master => master["tasks"].as_array().cloned().unwrap_or_default(),
    }
}

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

/// Every text field of every rendered task equals the source's, byte for byte.
fn assert_texts_arrive(source: &[Value], briefs: &BTreeMap<String, Value>) -> usize {
    let mut compared = 0;
    for task in source {
        let Some(brief) = briefs.get(&id_text(&task["id"])) else { continue };
        for (from, to) in [
            ("title", "title"),
            ("description", "description"),
            ("details", "details"),
            ("testStrategy", "testStrategy"),
        ] {
            if let Some(text) = task.get(from).and_then(Value::as_str) {
                assert_eq!(brief[to].as_str(), Some(text), "task {} field {from}", id_text(&task["id"]));
                compared += 1;
            }
        }
        for sub in task["subtasks"].as_array().into_iter().flatten() {
            let local = id_text(&sub["id"]);
            let parent = id_text(&task["id"]);
            let full = if local.starts_with(&format!("{parent}.")) { local } else { format!("{parent}.{local}") };
            let found = brief["subtasks"].as_array().into_iter().flatten().find(|s| s["id"] == full.as_str());
            let found = found.unwrap_or_else(|| panic!("subtask {full} missing from the brief"));
            if let Some(details) = sub.get("details").and_then(Value::as_str) {
                assert_eq!(found["details"].as_str(), Some(details), "subtask {full}");
                compared += 1;
            }
        }
    }
    compared
}

#[test]
fn every_corpus_file_renders_or_fails_with_a_diagnostic() {
    let Some(shared) = shared() else {
        eprintln!("skipped: ../shared/corpus not found (CI has it)");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut rendered = 0;
    let mut compared = 0;
    let mut files: Vec<_> =
        std::fs::read_dir(shared.join("corpus/taskmaster")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        match crate::common::render_file(path, &name) {
            Ok(generated) => {
                let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
                compared += assert_texts_arrive(&source_tasks(&json), &briefs(&generated.files));
                pressplay::output::write_tree(&out.path().join(&name), &generated.files).unwrap();
                rendered += 1;
            }
            Err(pressplay::Error::Invalid { file, diagnostics })
            | Err(pressplay::Error::Load(pressplay::spec::LoadError::Invalid { file, diagnostics })) => {
                let text = file.render(&diagnostics);
                assert!(diagnostics.iter().any(|d| d.is_error()), "{name}: rejected without an error:\n{text}");
                assert!(text.contains("task") || text.contains("tag"), "{name}: the diagnostic names no task:\n{text}");
            }
            Err(other) => panic!("{name}: {other}"),
        }
    }
    assert!(rendered * 2 > files.len(), "only {rendered} of {} files rendered", files.len());
    assert!(compared > 100, "only {compared} texts compared");
    assert!(
        crate::common::argo_validator_passes(&shared, out.path()),
        "validate.sh found problems in the rendered corpus"
    );
}

/// Text no template may alter: markup, template syntax of several engines, quotes, control
/// characters, non-ASCII (combining, right-to-left, astral), and size.
fn hostile_texts() -> Vec<String> {
    vec![
        "```yaml\nkey: {{ .Values.x }}\n---\nkind: Secret\n```".to_owned(),
        "{{inputs.parameters.brief}} {{workflow.parameters.token}} {{= sprig.env('HOME') }}".to_owned(),
        "{% raw %}[[ x ]] [% y %] [# z #]{% endraw %} ${HOME} $(rm -rf /) `id` $$ \\n".to_owned(),
        "quotes \" ' \\\" and a tab\there, CR\r\nLF, NUL-free control \u{1}\u{7f}\u{85}".to_owned(),
        "ünïcödé, Кириллица, 한국어, עברית \u{202e}reversed, e\u{301}, 🔒🚀 \u{2028}\u{2029}".to_owned(),
        "- item\n  - nested: yes\non: off\n'single' & <angle> #comment".to_owned(),
    ]
}

/// 100 KB of text: one object holds about 200 KiB, so one field per task carries it.
fn long_text() -> String {
    "long line of text with {{ tags }} and ${vars}\n".repeat(100 * 1024 / 45)
}

#[test]
fn native_text_reaches_the_agent_byte_for_byte() {
    let texts = hostile_texts();
    let mut backlog = String::from("tasks:\n");
    for (i, text) in texts.iter().enumerate() {
        let quoted = yaml_quote(text);
        backlog.push_str(&format!(
            "  - id: {}\n    title: {quoted}\n    description: {quoted}\n    details: {quoted}\n    testStrategy: {quoted}\n",
            i + 1
        ));
    }
    let long = long_text();
    backlog.push_str(&format!("  - id: 100\n    title: Long\n    details: {}\n", yaml_quote(&long)));
    let generated = render_text(&backlog).unwrap_or_else(|e| panic!("{}", diagnostics(&e)));
    let briefs = briefs(&generated.files);
    for (i, text) in texts.iter().enumerate() {
        let brief = &briefs[&(i + 1).to_string()];
        for field in ["title", "description", "details", "testStrategy"] {
            assert_eq!(brief[field].as_str(), Some(text.as_str()), "task {} field {field}", i + 1);
        }
    }
    assert_eq!(briefs["100"]["details"].as_str(), Some(long.as_str()));
    // Nothing of the text leaks into the manifests as text.
    for text in generated.files.values() {
        assert!(!text.contains("sprig.env"), "backlog text reached a manifest unencoded");
    }
}

#[test]
fn taskmaster_text_reaches_the_agent_byte_for_byte() {
    let texts = hostile_texts();
    let tasks: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            serde_json::json!({
                "id": i + 1, "title": text, "description": text, "details": text, "testStrategy": text,
                "status": "pending", "dependencies": [],
                "subtasks": [{"id": 1, "title": text, "details": text, "dependencies": []}]
            })
        })
        .collect();
    let mut tasks = tasks;
    tasks.push(serde_json::json!({"id": 100, "title": "Long", "details": long_text(), "status": "pending"}));
    let json = serde_json::json!({"master": {"tasks": tasks}});
    let generated = render_text(&escape_c1(&serde_json::to_string_pretty(&json).unwrap()))
        .unwrap_or_else(|e| panic!("{}", diagnostics(&e)));
    let compared = assert_texts_arrive(&source_tasks(&json), &briefs(&generated.files));
    assert_eq!(compared, texts.len() * 5 + 2);
}

/// JSON leaves DEL and the C1 controls raw, and YAML (which also reads JSON files) does not
/// accept them raw; both read the `\u` escape. Real files carry these escaped.
fn escape_c1(json: &str) -> String {
    json.chars()
        .map(|c| if ('\u{7f}'..='\u{9f}').contains(&c) { format!("\\u{:04x}", c as u32) } else { c.to_string() })
        .collect()
}

/// A YAML double-quoted scalar for any text.
fn yaml_quote(text: &str) -> String {
    escape_c1(&serde_json::to_string(text).unwrap())
}

fn plan_of(dir: &str) -> pressplay::Generated {
    let case = root().join("tests/fixtures").join(dir);
    let input = ["requirements.yaml", "tasks.json"].iter().map(|f| case.join(f)).find(|p| p.exists()).unwrap();
    pressplay::generate(&input, dir, &crate::fixtures::fixture_options(&case))
        .unwrap_or_else(|e| panic!("{}", diagnostics(&e)))
}

fn scheduled(generated: &pressplay::Generated) -> Vec<String> {
    generated.planned.plan.tasks.iter().map(|t| t.id.to_string()).collect()
}

#[test]
fn statuses_decide_what_runs_and_deferred_tasks_hold_back_their_dependents() {
    let generated = plan_of("statuses");
    assert_eq!(scheduled(&generated), ["2", "7"]);
    let reasons: BTreeMap<String, String> = generated
        .planned
        .plan
        .stats
        .not_scheduled
        .iter()
        .map(|n| {
            let reason = match &n.reason {
                pressplay::plan::Reason::Status(s) => s.to_string(),
                pressplay::plan::Reason::HeldBackBy(id) => format!("held by {id}"),
            };
            (n.id.to_string(), reason)
        })
        .collect();
    assert_eq!(reasons["1"], "done");
    assert_eq!(reasons["3"], "deferred");
    assert_eq!(reasons["4"], "held by 3");
    assert_eq!(reasons["5"], "held by 3");
    assert_eq!(reasons["6"], "cancelled");
    // A task whose only dependency is done starts at once.
    let task_2 = generated.planned.plan.tasks.iter().find(|t| t.id.as_str() == "2").unwrap();
    assert!(task_2.dependencies.is_empty() && task_2.level == 0);
}

#[test]
fn a_backlog_with_nothing_to_run_still_renders_a_valid_orchestrator() {
    let generated = plan_of("tm-all-done");
    assert!(generated.planned.plan.tasks.is_empty());
    let root: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/pressplay.yaml"]).unwrap();
    assert_eq!(root["spec"]["templates"][0]["steps"][0][0]["name"], "nothing-to-run");
    assert!(crate::common::records(&generated.files).is_empty(), "no task record");
}

#[test]
fn subtasks_become_tasks_that_their_parent_waits_for() {
    let generated = plan_of("tm-subtasks-as-tasks");
    assert_eq!(scheduled(&generated), ["2.3", "2.2", "2", "3"]);
    let plan = &generated.planned.plan;
    let parent = plan.tasks.iter().find(|t| t.id.as_str() == "2").unwrap();
    let deps: Vec<&str> = parent.dependencies.iter().map(|&d| plan.tasks[d].id.as_str()).collect();
    assert_eq!(deps, ["2.3", "2.2"]);
    assert!(plan.tasks.iter().all(|t| pressplay::plan::names::is_valid_name(t.node.as_str())));
}

#[test]
fn subtasks_travel_with_their_task_in_dependency_order() {
    let generated = plan_of("tm-tagged");
    let brief = &briefs(&generated.files)["2"];
    let order: Vec<&str> = brief["subtasks"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(order, ["2.1", "2.3", "2.2"]);
    assert_eq!(scheduled(&generated), ["2", "3"], "done task 1 is not scheduled");
}

#[test]
fn quirks_have_their_one_sensible_meaning() {
    let generated = plan_of("tm-quirks");
    let briefs = briefs(&generated.files);
    let deps_of = |task: &str, sub: &str| -> Vec<String> {
        let subs = briefs[task]["subtasks"].as_array().unwrap();
        let s = subs.iter().find(|s| s["id"] == sub).unwrap();
        s["dependencies"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(deps_of("29", "29.4"), ["29.1", "29.2", "29.3"], "a comma-joined string is three dependencies");
    assert_eq!(deps_of("30", "30.2"), ["30.1", "29"], "siblings by number and by full id, then a task");
    assert_eq!(deps_of("data-models", "data-models.store"), ["data-models.parse"]);
    assert!(briefs["data-models"]["subtasks"].as_array().unwrap().iter().any(|s| s["id"] == "data-models.store.1"));
    // A subtask that waits for task 29 makes its parent wait for it.
    let plan = &generated.planned.plan;
    let task_30 = plan.tasks.iter().find(|t| t.id.as_str() == "30").unwrap();
    assert_eq!(task_30.dependencies.iter().map(|&d| plan.tasks[d].id.as_str()).collect::<Vec<_>>(), ["29"]);
    assert_eq!(task_30.priority, pressplay::spec::Priority::Medium);
    let first = plan.tasks.iter().find(|t| t.id.as_str() == "data-models").unwrap();
    assert_eq!(first.priority, pressplay::spec::Priority::High, "critical means high");
}

#[test]
fn requirements_reach_the_coderun_as_base64() {
    let generated = plan_of("requirements");
    let stages: Value = serde_saphyr::from_str(&generated.files["workflowtemplates/pressplay-stages.yaml"]).unwrap();
    let chain = stages["spec"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "code-author-lint-tests-deploy-acceptance")
        .unwrap();
    let default = chain["inputs"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "requirements")
        .unwrap()["default"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = std::fs::read(root().join("tests/fixtures/requirements/project-requirements.yaml")).unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD.decode(default).unwrap(),
        file,
        "the project file, byte for byte"
    );

    let plan = &generated.planned.plan;
    let own = |node: &str| {
        let task = plan.tasks.iter().find(|t| t.node.as_str() == node).unwrap();
        let arguments = crate::common::task_arguments(&generated.files, &task.number.to_string());
        arguments
            .get("requirements")
            .map(|value| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(value).unwrap()).unwrap())
    };
    assert_eq!(own("t-1"), None, "task 1 uses the project's requirements");
    let task_2: Value = serde_saphyr::from_str(&own("t-2").unwrap()).unwrap();
    assert_eq!(task_2["secrets"][0]["name"], "payments-api");
    assert_eq!(task_2["secrets"][0]["keys"][0]["API_KEY"], "PAYMENTS_API_KEY");
    assert_eq!(task_2["environment"]["LOG_LEVEL"], "debug");
    assert!(stages.to_string().contains("taskRequirements"));
}

#[test]
fn docs_tasks_take_no_requirements_argument() {
    let text =
        "tasks:\n  - id: 1\n    title: Docs\n    kind: docs\n    requirements:\n      environment:\n        A: b\n";
    let generated = render_text(text).unwrap_or_else(|e| panic!("{}", diagnostics(&e)));
    let orchestrator = &generated.files["workflowtemplates/pressplay.yaml"];
    assert!(!orchestrator.contains("name: \"requirements\""), "DocsRuns have no taskRequirements field");
}

#[test]
fn subtasks_of_finished_or_held_tasks_do_not_run_as_tasks() {
    let json = r#"{"master": {"tasks": [
        {"id": 1, "title": "Done", "status": "done", "subtasks": [{"id": 1, "title": "A"}]},
        {"id": 2, "title": "Deferred", "status": "deferred", "subtasks": [{"id": 1, "title": "B", "status": "pending"}]},
        {"id": 3, "title": "Open", "status": "pending", "subtasks": [{"id": 1, "title": "C"}, {"id": 2, "title": "D", "status": "done"}]}
    ]}}"#;
    let generated = crate::common::render_files(&[("tasks.json", json)], "tasks.json", |options, _| {
        options.load.subtasks_as_tasks = true
    })
    .unwrap();
    assert_eq!(scheduled(&generated), ["3.1", "3"]);
}

#[test]
fn a_malformed_requirements_file_is_an_error_with_its_position() {
    let files = [
        ("req.yaml", "secrets:\n  - name: ok\n    keyz: []\n"),
        ("requirements.yaml", "tasks:\n  - id: 1\n    title: A\n"),
    ];
    let err = crate::common::render_files(&files, "requirements.yaml", |options, dir| {
        options.load.requirements = Some(dir.join("req.yaml"));
    })
    .unwrap_err();
    let text = diagnostics(&err);
    assert!(text.contains("unknown field `keyz`") && text.contains("req.yaml:3:5"), "{text}");
    assert!(text.contains("did you mean `keys`?"), "{text}");
}
