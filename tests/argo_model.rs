//! Tests of the substitution model (`pressplay::model::subst`): the examples of the research note and a
//! comparison with its Python model.

#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pressplay::model::subst::*;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

// Tests: the examples of the research note

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn b64(text: &str) -> String {
    BASE64.encode(text.as_bytes())
}

/// Closes the manifest string inside `ARGO_TEMPLATE` and supplies a new manifest (a duplicate key, which Go
/// resolves to the last one) when it lands there escaped only once.
const MANIFEST_SWAP: &str =
    r#"","manifest":"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: swapped\n","ignored":""#;

/// Text a pull-request comment could contain.
fn hostile_inputs() -> Vec<String> {
    let mut inputs: Vec<String> = [
        "x\"\n  model: evil\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: \"",
        "leak={{workflow.parameters.secret}}",
        "{{=sprig.upper(workflow.name)}}",
        "{{= (}} {{tasks.build.outputs.result}} $(TOKEN) $$ $(id); `rm -rf /` 'single' \\ %s",
        "an unclosed {{ brace",
        "ESC \u{1b}[1m DEL \u{7f} NEL \u{85} LS \u{2028} RLO \u{202e} ZWJ \u{200d} e\u{301} \u{1f600} \u{e0001}",
        "quotes \" and backslashes \\ and tabs \t and CRLF \r\n",
        "<script>&amp;</script>",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    inputs.push(format!("{{{{=sprig.b64dec('{}')}}}}", b64(MANIFEST_SWAP)));
    inputs.push("{{x}} \"q\"\n\t\u{e9} ".repeat(13_000).chars().take(100_000).collect());
    inputs
}

const CODERUN_HEAD: &str = "apiVersion: x.io/v1\nkind: CodeRun\nmetadata:\n  name: cr\nspec:\n";
const CODERUN_JSON_HEAD: &str =
    r#"{"apiVersion":"x.io/v1","kind":"CodeRun","metadata":{"name":"cr"},"spec":{"promptModification":"#;

fn raw_manifest() -> String {
    format!("{CODERUN_HEAD}  promptModification: \"{{{{inputs.parameters.comment}}}}\"\n  model: safe\n")
}

fn tojson_manifest() -> String {
    format!("{CODERUN_HEAD}  promptModification: {{{{=toJson(inputs.parameters.comment)}}}}\n  model: safe\n")
}

fn base64_kept_manifest() -> String {
    format!("{CODERUN_HEAD}  promptModificationBase64: \"{{{{inputs.parameters.comment}}}}\"\n")
}

fn b64dec_json_manifest() -> String {
    format!(r#"{CODERUN_JSON_HEAD}{{{{=toJson(sprig.b64dec(inputs.parameters.comment))}}}},"model":"safe"}}}}"#)
}

/// Section 3.1's manifest: base64 in, `toJson`, braces written as `\u007b`/`\u007d`.
fn brace_escaped_json_manifest() -> String {
    let expression = r#"sprig.replace("}", "\\u007d", sprig.replace("{", "\\u007b", toJson(sprig.b64dec(inputs.parameters.comment))))"#;
    format!(r#"{CODERUN_JSON_HEAD}{{{{={expression}}}}},"model":"safe"}}}}"#)
}

/// A WorkflowTemplate whose entrypoint DAG passes `{{workflow.parameters.comment}}` to the leaf `create`,
/// which is a resource template with `manifest`, or a container template with `env` as the value of `C`.
fn workflow_template(manifest: Option<&str>, env: Option<&str>) -> Value {
    let mut leaf = json!({"name": "create", "inputs": {"parameters": [{"name": "comment"}]}});
    if let Some(manifest) = manifest {
        leaf["resource"] = json!({"action": "create", "manifest": manifest});
    }
    if let Some(env) = env {
        leaf["container"] =
            json!({"image": "a", "env": [{"name": "TOKEN", "value": "tok"}, {"name": "C", "value": env}]});
    }
    json!({"spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": "comment"}, {"name": "secret", "value": "TOPSECRET"}]},
        "templates": [
            {"name": "main", "dag": {"tasks": [{"name": "create", "template": "create",
                "arguments": {"parameters": [{"name": "comment", "value": "{{workflow.parameters.comment}}"}]}}]}},
            leaf,
        ],
    }})
}

const ENV_TAG: &str = "{{inputs.parameters.comment}}";

fn run_one(template: &Value, comment: &str) -> Result<Executed, String> {
    let mut executed = run(template, &[("comment", comment)])?;
    assert_eq!(executed.len(), 1);
    Ok(executed.remove(0))
}

#[test]
fn quoting_follows_strconv_quote() {
    assert_eq!(go_quote_inner("a\"b\\c"), r#"a\"b\\c"#);
    assert_eq!(go_quote_inner("\n\t\r\u{8}\u{c}"), r"\n\t\r\b\f");
    assert_eq!(go_quote_inner("\u{7}\u{b}\u{1b}\u{0}\u{7f}"), r"\a\v\x1b\x00\x7f");
    assert_eq!(go_quote_inner("\u{85}\u{a0}\u{2028}\u{202e}\u{200d}"), r"\u0085\u00a0\u2028\u202e\u200d");
    assert_eq!(go_quote_inner("é😀 <&>"), "é😀 <&>");
    assert_eq!(go_quote_inner("\u{e0001}\u{f0000}"), r"\U000e0001\U000f0000");
    assert_eq!(go_json_string("<a&b>\u{7f}\u{1b}\u{2029}"), "\"\\u003ca\\u0026b\\u003e\u{7f}\\u001b\\u2029\"");
}

#[test]
fn a_simple_tag_is_escaped_once_for_json() {
    let text = r#"{"a":"{{x}}","b":"{{ x }}"}"#;
    let value = "say \"hi\"\nthen \\ leave\t";
    let out = substitute(text, &vars(&[("x", value)]), true).unwrap();
    assert_eq!(out, r#"{"a":"say \"hi\"\nthen \\ leave\t","b":"say \"hi\"\nthen \\ leave\t"}"#);
    let parsed = parse_json(&out).unwrap();
    assert_eq!(parsed["a"], value);
    assert_eq!(parsed["b"], value);
}

#[test]
fn control_characters_and_astral_non_printables_fail_the_pass() {
    for bad in ["ANSI \u{1b}[31m", "bell \u{7}", "vt \u{b}", "del \u{7f}", "tag \u{e0001}"] {
        let err = substitute(r#"{"a":"{{x}}"}"#, &vars(&[("x", bad)]), true).unwrap_err();
        assert!(err.contains("invalid JSON"), "{bad:?}: {err}");
    }
    for fine in ["NEL \u{85}", "LS \u{2028}", "nbsp \u{a0}", "emoji \u{1f600}", "RLO \u{202e}"] {
        let out = substitute(r#"{"a":"{{x}}"}"#, &vars(&[("x", fine)]), true).unwrap();
        assert_eq!(parse_json(&out).unwrap()["a"], fine);
    }
}

#[test]
fn tags_are_cut_at_the_first_closing_braces_and_not_rescanned() {
    let map = vars(&[("x", "{{y}}"), ("y", "Y"), ("b", "B")]);
    let once = substitute(r#"{"a":"{{x}} {{unknown}}"}"#, &map, true).unwrap();
    assert_eq!(once, r#"{"a":"{{y}} {{unknown}}"}"#);
    assert_eq!(substitute(&once, &map, true).unwrap(), r#"{"a":"Y {{unknown}}"}"#);
    assert_eq!(find_tags(&once).unwrap(), ["y", "unknown"]);
    // `{{a {{b}}` is cut at the first `}}`; the nested-tag rule writes `{{a ` and the value of `b`.
    assert_eq!(substitute(r#"{"a":"{{a {{b}} c"}"#, &map, true).unwrap(), r#"{"a":"{{a B c"}"#);
    assert_eq!(find_tags(r#"{"a":"{ {{\"}"}}"}"#).unwrap(), [r#"\"}""#]);
    let err = substitute(r#"{"a":"an unclosed {{ brace"}"#, &map, true).unwrap_err();
    assert!(err.starts_with("Cannot find end tag=\"}}\""), "{err}");
    // Plain-text context: quoted all the same, no JSON checks.
    assert_eq!(substitute("key-{{x}}\"", &vars(&[("x", "a\"b")]), false).unwrap(), "key-a\\\"b\"");
}

#[test]
fn strictness_decides_what_an_unresolved_tag_does() {
    let map = vars(&[("tasks.a.outputs.result", "r")]);
    let text = r#"{"a":"{{tasks.b.outputs.result}}"}"#;
    assert_eq!(substitute(text, &map, true).unwrap(), text);
    let err = substitute_with(text, &map, true, TASKS_AND_STEPS).unwrap_err();
    assert_eq!(err, "failed to resolve {{tasks.b.outputs.result}}");
    let artifact = r#"{"a":"{{tasks.b.outputs.artifacts.x}}"}"#;
    assert_eq!(substitute_with(artifact, &map, true, TASKS_AND_STEPS).unwrap(), artifact);
    assert!(substitute_with(artifact, &map, true, Strictness::All).is_err());
    let other = r#"{"a":"{{workflow.parameters.nope}} {{tasksx}}"}"#;
    assert_eq!(substitute_with(other, &map, true, TASKS_AND_STEPS).unwrap(), other);
}

#[test]
fn expression_tags_are_evaluated_and_escaped_once() {
    let map =
        vars(&[("workflow.name", "wf-1"), ("inputs.parameters.c", "a \"q\" <b>\nc"), ("inputs.parameters", "[]")]);
    let text = r#"{"u":"{{=sprig.upper(workflow.name)}}","j":"{{=toJson(inputs.parameters.c)}}"}"#;
    let out = parse_json(&substitute(text, &map, true).unwrap()).unwrap();
    assert_eq!(out["u"], "WF-1");
    assert_eq!(out["j"], "\"a \\\"q\\\" \\u003cb\\u003e\\nc\"");
    // A quote inside the expression arrives JSON-escaped and is unescaped before parsing.
    let quoted = r#"{"x":"{{=sprig.replace(\"-\", \"+\", workflow.name)}}"}"#;
    assert_eq!(parse_json(&substitute(quoted, &map, true).unwrap()).unwrap()["x"], "wf+1");
    // Missing names stay for a later pass (also in syntax outside the modelled subset); a parse error never
    // does, nor a runtime error or a nil result when nothing is missing.
    let later = r#"{"x":"{{=workflow.parameters.later}}","y":"{{=a ? b : c}}","z":"{{=sprig.nope(workflow.name)}}"}"#;
    assert_eq!(substitute(later, &map, true).unwrap(), later);
    for failing in [r#"{"x":"{{=sprig.upper(1)}}"}"#, r#"{"x":"{{=nil}}"}"#, r#"{"x":"{{=1 + 'a'}}"}"#] {
        let err = substitute(failing, &map, true).unwrap_err();
        assert!(err.starts_with("failed to evaluate expression"), "{failing}: {err}");
    }
    let err = substitute(r#"{"x":"{{=workflow.name == 'wf-1'}}"}"#, &map, true).unwrap_err();
    assert!(err.contains("outside the modelled subset"), "{err}");
    for broken in [r#"{"x":"{{= (}}"}"#, r#"{"x":"{{=}}"}"#, r#"{"x":"{{=a b}}"}"#] {
        let err = substitute(broken, &map, true).unwrap_err();
        assert!(err.starts_with("failed to evaluate expression"), "{broken}: {err}");
    }
    let strict = r#"{"x":"{{=tasks.a.outputs.result + 'x'}}"}"#;
    let err = substitute_with(strict, &map, true, TASKS_AND_STEPS).unwrap_err();
    assert_eq!(err, "failed to evaluate expression: tasks is missing");
    // Index syntax for names that are not identifiers.
    let index = r#"{"x":"{{=inputs.parameters['c'] + '!'}}"}"#;
    assert_eq!(parse_json(&substitute(index, &map, true).unwrap()).unwrap()["x"], "a \"q\" <b>\nc!");
}

#[test]
fn second_order_injection_through_a_parameter_value() {
    let comment = "leak={{workflow.parameters.secret}} {{=sprig.upper(workflow.name)}}";
    let raw = run_one(&workflow_template(Some(&raw_manifest()), None), comment).unwrap();
    assert_eq!(raw.objects().unwrap()[0]["spec"]["promptModification"], "leak=TOPSECRET WF-1");
    let tojson = run_one(&workflow_template(Some(&tojson_manifest()), None), comment).unwrap();
    assert_eq!(tojson.objects().unwrap()[0]["spec"]["promptModification"], "leak=TOPSECRET WF-1");
    let env = run_one(&workflow_template(None, Some(ENV_TAG)), comment).unwrap();
    assert_eq!(env.env()["C"], "leak=TOPSECRET WF-1");
    // The kubelet expands `$(VAR)` of earlier variables and turns `$$` into `$`.
    let env = run_one(&workflow_template(None, Some(ENV_TAG)), "$(TOKEN) $$5 $(NOPE)").unwrap();
    assert_eq!(env.env()["C"], "tok $5 $(NOPE)");
    // The same through `run_dag_task`.
    let template = json!({"name": "show", "inputs": {"parameters": [{"name": "c"}]},
        "container": {"image": "a", "env": [{"name": "C", "value": "{{inputs.parameters.c}}"}]}});
    let task_args = [("c", "{{workflow.parameters.comment}}")];
    let done =
        run_dag_task(&template, &task_args, &[("comment", "s={{workflow.parameters.secret}}"), ("secret", "S3")]);
    assert_eq!(done.unwrap().pointer("/container/env/0/value").unwrap(), "s=S3");
    // `{{workflow.parameters}}` (all arguments as JSON) re-inserts itself in every pass, so one such tag is
    // still there in the pod pass, where its quotes are escaped once too few.
    let done = run_dag_task(&template, &task_args, &[("comment", "all={{workflow.parameters}}"), ("secret", "S3")]);
    assert!(done.unwrap_err().starts_with("ARGO_TEMPLATE is no longer valid JSON"));
}

#[test]
fn raw_text_in_a_yaml_manifest_injects_fields_and_objects() {
    let comment = &hostile_inputs()[0];
    let template = workflow_template(Some(&raw_manifest()), None);
    let objects = run_one(&template, comment).unwrap().objects().unwrap();
    let kinds: Vec<_> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["CodeRun", "ConfigMap"]);
    assert_eq!(objects[0]["spec"]["model"], "evil");
    // With `setOwnerReference: true` only the first document survives, but its fields are still injected.
    let mut owned = template.clone();
    owned["spec"]["templates"][1]["resource"]["setOwnerReference"] = json!(true);
    let objects = run_one(&owned, comment).unwrap().objects().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["spec"]["model"], "evil");
    assert_eq!(objects[0]["metadata"]["ownerReferences"][0]["kind"], "Workflow");
}

#[test]
fn tojson_alone_does_not_protect_the_manifest() {
    let template = workflow_template(Some(&tojson_manifest()), None);
    let err = run_one(&template, "an unclosed {{ brace").unwrap_err();
    assert!(err.starts_with("ARGO_TEMPLATE is no longer valid JSON"), "{err}");
    assert!(run_one(&template, "ANSI \u{1b}[31m").unwrap_err().contains("invalid JSON"));
    let err = run_one(&template, "see {{tasks.a.outputs.result}}").unwrap_err();
    assert_eq!(err, "failed to resolve {{tasks.a.outputs.result}}");
    // toJson of a global is evaluated in P3, so an expression inside the value writes raw YAML in P3'.
    let direct = json!({"spec": {"entrypoint": "c", "arguments": {"parameters": [{"name": "comment"}]},
        "templates": [{"name": "c", "resource": {"action": "create",
            "manifest": tojson_manifest().replace("inputs.", "workflow.")}}]}});
    let delayed = format!("{{{{=sprig.b64dec('{}')}}}}", b64(&hostile_inputs()[0]));
    let objects = run(&direct, &[("comment", &delayed)]).unwrap()[0].objects().unwrap();
    let kinds: Vec<_> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["CodeRun", "ConfigMap"]);
    assert_eq!(objects[0]["spec"]["model"], "evil");
}

#[test]
fn decoded_text_reaches_the_pod_pass_and_swaps_the_manifest() {
    let swap = format!("{{{{=sprig.b64dec('{}')}}}}", b64(MANIFEST_SWAP));
    let template = workflow_template(Some(&b64dec_json_manifest()), None);
    let objects = run_one(&template, &b64(&swap)).unwrap().objects().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["metadata"]["name"], "swapped");
    // Each pass peels one layer of a self-unwrapping value, so the last layer fires in P4.
    let mut layered = swap.clone();
    for _ in 0..3 {
        layered = format!("{{{{=sprig.b64dec('{}')}}}}", b64(&layered));
    }
    let template = workflow_template(Some(&tojson_manifest()), None);
    let objects = run_one(&template, &layered).unwrap().objects().unwrap();
    assert_eq!(objects[0]["metadata"]["name"], "swapped");
}

#[test]
fn base64_values_survive_every_pass_unchanged() {
    for text in hostile_inputs() {
        let encoded = b64(&text);
        assert!(!encoded.contains(['{', '}', '"', '\\', '$', '\n']));
        let kept = run_one(&workflow_template(Some(&base64_kept_manifest()), None), &encoded).unwrap();
        assert_eq!(kept.objects().unwrap()[0]["spec"]["promptModificationBase64"], encoded.as_str());
        let env = run_one(&workflow_template(None, Some(ENV_TAG)), &encoded).unwrap();
        assert_eq!(env.env()["C"], encoded);
        assert_eq!(BASE64.decode(env.env()["C"].as_bytes()).unwrap(), text.as_bytes());
    }
}

#[test]
fn the_brace_escaped_json_manifest_is_exact() {
    let template = workflow_template(Some(&brace_escaped_json_manifest()), None);
    for text in hostile_inputs() {
        let executed = run_one(&template, &b64(&text)).unwrap();
        let manifest = executed.manifest().unwrap();
        assert!(find_tags(manifest).unwrap().is_empty(), "a tag survived: {}", shorten(manifest));
        let objects = executed.objects().unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0]["spec"]["promptModification"], text.as_str());
        assert_eq!(objects[0]["spec"]["model"], "safe");
    }
}

#[test]
fn sensor_parameters_are_written_as_exact_strings() {
    let workflow = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": "run-"},
        "spec": {"workflowTemplateRef": {"name": "wt"},
            "arguments": {"parameters": [{"name": "comment", "value": ""}, {"name": "task", "value": "t"}]}}});
    for text in hostile_inputs() {
        let out = sensor_parameter(&workflow, "spec.arguments.parameters.0.value", &text, "overwrite");
        assert_eq!(out["spec"]["arguments"]["parameters"][0]["value"], text.as_str());
        assert_eq!(out["spec"]["arguments"]["parameters"][1], workflow["spec"]["arguments"]["parameters"][1]);
        assert_eq!(parse_json(&sjson_literal(&text)).unwrap(), text.as_str());
    }
    assert_eq!(sjson_literal("plain {{x}} text"), "\"plain {{x}} text\"");
    assert_eq!(sjson_literal("a<b\u{e9}"), "\"a\\u003cb\u{e9}\"");
    let named = sensor_parameter(&workflow, "metadata.name", "run-42", "");
    assert_eq!(named["metadata"]["name"], "run-42");
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(sensor_parameter(&config_map, "data.task", "t-1\n", "overwrite")["data"], json!({"task": "t-1\n"}));
    let appended = sensor_parameter(&workflow, "spec.arguments.parameters.1.value", "-x", "append");
    assert_eq!(appended["spec"]["arguments"]["parameters"][1]["value"], "t-x");
    let prepended = sensor_parameter(&workflow, "spec.arguments.parameters.1.value", "x-", "prepend");
    assert_eq!(prepended["spec"]["arguments"]["parameters"][1]["value"], "x-t");
    let padded = sensor_parameter(&workflow, "spec.arguments.parameters.3.value", "v", "overwrite");
    assert_eq!(padded["spec"]["arguments"]["parameters"][2], Value::Null);
    assert_eq!(padded["spec"]["arguments"]["parameters"][3], json!({"value": "v"}));
    let built = sensor_parameter(&json!({}), "a.1.b\\.c", "v", "overwrite");
    assert_eq!(built, json!({"a": [null, {"b.c": "v"}]}));
    let forced = sensor_parameter(&json!({}), "a.:1", "v", "overwrite");
    assert_eq!(forced, json!({"a": {"1": "v"}}));
    let raw = sensor_parameter_raw(&workflow, "spec.extra", r#"{"k":[1,"x"]}"#).unwrap();
    assert_eq!(raw["spec"]["extra"], json!({"k": [1, "x"]}));
    // The Workflow then gets those exact bytes, and its own passes expand any tag in them.
    let template = workflow_template(None, Some(ENV_TAG));
    let comment = "leak={{workflow.parameters.secret}}";
    let delivered = sensor_parameter(&workflow, "spec.arguments.parameters.0.value", comment, "overwrite");
    let value = delivered["spec"]["arguments"]["parameters"][0]["value"].as_str().unwrap();
    assert_eq!(run_one(&template, value).unwrap().env()["C"], "leak=TOPSECRET");
}

#[test]
fn data_templates_of_the_research_evaluate_like_go() {
    let event = json!({"body": {
        "comment": {"body": "please run task/t-12-fix now\n\"quoted\" {{x}}"},
        "issue": {"number": 1234567, "title": "small 42"},
        "branch": "task/t-7-docs-v2.tmp",
    }});
    let encoded = go_template("{{ .Input.body.comment.body | b64enc }}", &event).unwrap();
    assert_eq!(BASE64.decode(encoded).unwrap(), b"please run task/t-12-fix now\n\"quoted\" {{x}}");
    let task =
        r#"{{ .Input.body.branch | regexFind "^task/t-[a-z0-9-]+" | trimPrefix "task/" | trimSuffix "-docs-v2" }}"#;
    assert_eq!(go_template(task, &event).unwrap(), "t-7");
    let inside = r#"{{ .Input.body.comment.body | regexFind "task/t-[0-9]+(-[a-z]+)?" }}"#;
    assert_eq!(go_template(inside, &event).unwrap(), "task/t-12-fix");
    assert_eq!(go_template("{{ .Input.body.issue.number }}", &event).unwrap(), "1.234567e+06");
    assert_eq!(go_template("n={{ .Input.body.missing }}", &event).unwrap(), "n=<no value>");
    assert!(go_template("{{ .Input.body.missing.deeper }}", &event).is_err());
    assert!(go_template("{{ .Input.body.issue.number | b64enc }}", &event).is_err());
    assert_eq!(go_template(r#"{{ .Input.body.nothing | default "none" | upper }}"#, &event).unwrap(), "NONE");
    // ResolveParamValue: "<no value>" and errors fall back to dataKey, then to value.
    let missing = Some("{{ .Input.body.missing }}");
    assert_eq!(resolve_data_param(&event, missing, Some("body.issue.title"), None).unwrap(), "small 42");
    assert_eq!(resolve_data_param(&event, missing, None, Some("")).unwrap(), "");
    assert!(resolve_data_param(&event, missing, None, None).is_err());
    assert_eq!(data_key_value(&event, "body.issue").unwrap(), r#"{"number":1234567,"title":"small 42"}"#);
    assert_eq!(data_key_value(&event, "body.issue.number").unwrap(), "1234567");
}

#[test]
fn the_regex_subset_is_leftmost_first() {
    let find = |pattern: &str, subject: &str| Regex::new(pattern).unwrap().find(subject).map(str::to_string);
    assert_eq!(find("^task/t-[a-z0-9-]+", "task/t-1-a b").as_deref(), Some("task/t-1-a"));
    assert_eq!(find("^task/t-[a-z0-9-]+", "x task/t-1"), None);
    assert_eq!(find("a|ab", "ab").as_deref(), Some("a"));
    assert_eq!(find("(ab|a)c?", "abc").as_deref(), Some("abc"));
    assert_eq!(find("x*", "yyy").as_deref(), Some(""));
    assert_eq!(find("a+?", "aaa").as_deref(), Some("a"));
    assert_eq!(find(r"\d{2,3}", "a12345").as_deref(), Some("123"));
    assert_eq!(find(r"[^\s]+$", "one two").as_deref(), Some("two"));
    assert_eq!(find("(?:ab)+", "xababa").as_deref(), Some("abab"));
    assert_eq!(find("a.c", "a\nc abc").as_deref(), Some("abc"));
    assert_eq!(find(".*", &"z".repeat(200_000)).map(|m| m.len()), Some(200_000));
    assert!(Regex::new("(?i)a").is_err());
    assert!(Regex::new("a)").is_err());
}

#[test]
fn json_is_read_with_gos_rules() {
    assert_eq!(parse_json(r#"{"a":1,"a":2}"#).unwrap(), json!({"a": 2}));
    assert_eq!(parse_json(r#""\ud800x\ud83d\ude00""#).unwrap(), "\u{fffd}x\u{1f600}");
    assert!(parse_json("\"a\u{1}\"").is_err());
    assert!(parse_json(r#""\x1b""#).is_err());
    assert!(parse_json("[1,]").is_err());
    assert!(parse_json("01").is_err());
    assert_eq!(go_format_float(0.0001), "0.0001");
    assert_eq!(go_format_float(0.00001), "1e-05");
    assert_eq!(go_format_float(123456.0), "123456");
    assert_eq!(go_format_float(-2.5), "-2.5");
    assert_eq!(go_json_float(1e21), "1e+21");
}

// ------------------------------------------------------------------------------------------------------------
// Comparison with the Python model of the research note

/// Runs `argo_substitution_model.py` on each case and returns its answers as JSON.
fn python_model(model: &std::path::Path, cases: &Value) -> Option<Vec<Value>> {
    use std::io::Write as _;
    let driver = r#"
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("argo_model", sys.argv[1])
model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model)
model.kubectl = lambda manifest: [{"manifest": manifest}]
answers = []
for case in json.load(sys.stdin):
    try:
        answers.append({"ok": model.run(case["template"], {"comment": case["comment"]})})
    except model.ArgoError as e:
        answers.append({"error": str(e)})
json.dump(answers, sys.stdout)
"#;
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(driver)
        .arg(model)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take().unwrap().write_all(cases.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

fn error_kind(message: &str) -> &'static str {
    for (needle, kind) in [
        ("ARGO_TEMPLATE", "argo-template"),
        ("Cannot find end tag", "unclosed"),
        ("invalid JSON", "invalid-json"),
        ("failed to resolve", "unresolved"),
        ("failed to evaluate", "expression"),
        ("failed to unmarshall", "expression"),
        ("was not supplied", "not-supplied"),
    ] {
        if message.contains(needle) {
            return kind;
        }
    }
    "other"
}

#[test]
fn matches_the_python_model() {
    let Some(model) = crate::common::shared().map(|s| s.join("research/argo_substitution_model.py")) else {
        eprintln!("skipped: ../shared/research/argo_substitution_model.py not found");
        return;
    };
    let templates = [
        workflow_template(Some(&raw_manifest()), None),
        workflow_template(Some(&tojson_manifest()), None),
        workflow_template(Some(&base64_kept_manifest()), None),
        workflow_template(Some(&b64dec_json_manifest()), None),
        workflow_template(Some(&brace_escaped_json_manifest()), None),
        workflow_template(None, Some(ENV_TAG)),
        workflow_template(None, Some("pre {{inputs.parameters.comment}} {{pod.name}} {{workflow.parameters.secret}}")),
    ];
    // The 100 KB input is cut to 2 KB here: the Python model takes seconds per case on it.
    let mut comments: Vec<String> = hostile_inputs().into_iter().map(|c| c.chars().take(2_000).collect()).collect();
    comments.extend(
        [
            "{{workflow.parameters.comment}}",
            "{{inputs.parameters.comment}}",
            "{{inputs.parameters}}",
            "{{workflow.parameters.json}}",
            "{{ pod.name }} {{workflow.namespace}}",
            "{{=toJson(workflow.parameters.secret)}}",
            "{{=workflow.parameters.secret + '!'}}",
            "{{='{'+'{workflow.parameters.secret}'+'}'}}",
            "{{=sprig.b64enc('x')}} {{=nope.at.all}}",
            "{{a {{workflow.parameters.secret}}",
            "a}}b{{c",
            "}} {{",
            "$(TOKEN)$$(TOKEN)$$$",
            "see {{tasks.a.outputs.result}}",
            "{{steps.s.outputs.parameters.p}}",
            "{{tasks.a.outputs.artifacts.x}}",
            "{{=tasks.a.outputs.result}}",
        ]
        .map(String::from),
    );
    let encoded: Vec<String> = comments.iter().map(|c| b64(c)).collect();
    let mut cases = Vec::new();
    for (i, template) in templates.iter().enumerate() {
        // The two b64dec manifests only see base64: sprig's error text for other input is Go's, not Python's.
        let decodes = i == 3 || i == 4;
        for comment in
            if decodes { encoded.iter().collect::<Vec<_>>() } else { comments.iter().chain(&encoded).collect() }
        {
            cases.push(json!({"template": template, "comment": comment}));
        }
    }
    let Some(answers) = python_model(&model, &Value::Array(cases.clone())) else {
        eprintln!("skipped: python3 could not run {}", model.display());
        return;
    };
    assert_eq!(answers.len(), cases.len());
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for (case, answer) in cases.iter().zip(&answers) {
        let comment = case["comment"].as_str().unwrap();
        let mine = run_one(&case["template"], comment);
        let label = format!("template {} / comment {:?}", shorten(&go_json(&case["template"])), shorten(comment));
        match (&mine, answer.get("error")) {
            (Err(e), Some(theirs)) => {
                assert_eq!(error_kind(e), error_kind(theirs.as_str().unwrap()), "{label}: {e} vs {theirs}");
                *outcomes.entry(error_kind(e)).or_default() += 1;
            }
            (Err(e), None) => panic!("{label}: only this model fails: {e}"),
            (Ok(_), Some(theirs)) => panic!("{label}: only the Python model fails: {theirs}"),
            (Ok(executed), None) => {
                let theirs = &answer["ok"][0];
                match executed.manifest() {
                    Some(manifest) => assert_eq!(manifest, theirs["manifest"].as_str().unwrap(), "{label}"),
                    None => {
                        let env: Map<String, Value> =
                            executed.env().into_iter().map(|(k, v)| (k, Value::String(v))).collect();
                        assert_eq!(Value::Object(env), theirs["env"], "{label}");
                    }
                }
            }
        }
        if mine.is_ok() {
            *outcomes.entry("same output").or_default() += 1;
        }
    }
    eprintln!("the Python model agrees on {} cases: {outcomes:?}", cases.len());
}
