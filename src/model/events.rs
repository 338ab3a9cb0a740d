//! The Argo Events side of the model (v1.9.11): what the GitHub EventSource makes of a webhook,
//! which Sensor dependencies accept it, and what their triggers do.
//!
//! Rules (files are in argoproj/argo-events at v1.9.11):
//! * Envelope (`pkg/eventsources/sources/github/start.go`, `handleRoute`): the event data is
//!   `{"headers": {...}, "body": payload}` with the keys `X-GitHub-Event` and
//!   `X-GitHub-Delivery` added to the body; header names are Go-canonical (`X-Github-Event`).
//! * Data filters (`pkg/sensors/dependencies/filter.go`, `filterData`): the path is a gjson path
//!   into the event data; a path that does not exist is an error and the event is dropped
//!   (`listener.go`). `string`: each value is a Go regexp matched anywhere in the text (our
//!   values are anchored); with comparator `=` one match suffices, with `!=` one non-match
//!   does. `bool` and `number` compare parsed values. All filters must pass (the default
//!   `dataLogicalOperator`, `and`).
//! * Expression filters (`filterExpr`): every field's path must exist (else the event is
//!   dropped), then the expression is evaluated over the fields (govaluate; here the model's
//!   small evaluator, with `==`, `!=`, `&&`, `||`, `!` and quoted strings).
//! * Triggers (`pkg/sensors/listener.go`, `triggerOne`; `pkg/sensors/triggers/params.go`): a
//!   trigger whose `conditions` name an accepting dependency runs; each resource parameter is
//!   resolved with `ResolveParamValue` (`dataTemplate`, then `dataKey`, then `value`; nothing
//!   resolved fails the trigger) and written with sjson at `dest` (`append`/`prepend` keep the
//!   text there). `k8s` triggers hand their object to the API server; `http` triggers send the
//!   payload built from their `payload` parameters.
//! * A Sensor's pod mounts every Secret its triggers reference, none optional
//!   (`pkg/reconciler/sensor/resource.go`): one missing Secret stops every trigger of it
//!   ([`super::sim::sensor_secrets`] lists them; the simulation leaves such Sensors out).
//!
//! Simplified: gjson paths are keys, indexes, `#`, `#.key`, `#(key%"pattern")` (first match) and
//! `#(key=="v")`; no modifiers or multipaths. Go regexps run on the model's RE2 subset. Rate
//! limits are reported, not enforced (the simulation sends too few events to reach them).

use serde_json::{Map, Value, json};

use super::expr;
use super::sim::Trigger;
use super::subst::{Regex, resolve_data_param, sensor_parameter, sjson_path, sjson_set};

/// The event data the EventSource publishes for a GitHub delivery.
pub fn envelope(event: &str, delivery: &str, body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(map) = body.as_object_mut() {
        map.insert("X-GitHub-Event".into(), json!(event));
        map.insert("X-GitHub-Delivery".into(), json!(delivery));
    }
    json!({
        "headers": {"X-Github-Event": [event], "X-Github-Delivery": [delivery], "Content-Type": ["application/json"]},
        "body": body,
    })
}

/// A gjson value: `None` when the path does not exist.
pub fn gjson(data: &Value, path: &str) -> Option<Value> {
    let parts = split_path(path);
    get(data, &parts)
}

fn split_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut depth, mut chars) = (0, path.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth -= 1;
                current.push(c);
            }
            '.' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
}

fn get(value: &Value, parts: &[String]) -> Option<Value> {
    let Some((part, rest)) = parts.split_first() else { return Some(value.clone()) };
    if part == "#" {
        let items = value.as_array()?;
        if rest.is_empty() {
            return Some(json!(items.len()));
        }
        return Some(Value::Array(items.iter().filter_map(|item| get(item, rest)).collect()));
    }
    if let Some(query) = part.strip_prefix("#(").and_then(|q| q.strip_suffix(')')) {
        let items = value.as_array()?;
        let found = items.iter().find(|item| query_matches(item, query))?;
        return get(found, rest);
    }
    match value {
        Value::Object(map) => get(map.get(part)?, rest),
        Value::Array(items) => get(items.get(part.parse::<usize>().ok()?)?, rest),
        _ => None,
    }
}

fn query_matches(item: &Value, query: &str) -> bool {
    // The operator outside nested queries and quotes: `modified.#(=="x")` has its own.
    let (mut depth, mut quoted, mut found) = (0, false, None);
    let bytes = query.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            _ if depth == 0 && !quoted => {
                for op in ["==", "!=", "%"] {
                    if query[i..].starts_with(op) {
                        found = Some((i, op));
                        break;
                    }
                }
            }
            _ => {}
        }
        if found.is_some() {
            break;
        }
    }
    let Some((at, op)) = found else {
        // `#(key)`: the element has the key (or a nested query finds something).
        return gjson(item, query).is_some_and(|v| !v.is_null() && v != json!([]));
    };
    let (key, pattern) = (query[..at].trim(), query[at + op.len()..].trim());
    let pattern = pattern.strip_prefix('"').and_then(|p| p.strip_suffix('"')).unwrap_or(pattern);
    let actual = if key.is_empty() { Some(item.clone()) } else { gjson(item, key) };
    let Some(actual) = actual else { return false };
    let actual = text(&actual);
    match op {
        "==" => actual == pattern,
        "!=" => actual != pattern,
        _ => wildcard(pattern, &actual),
    }
}

/// gjson's `%` match: `*` any run, `?` one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(&p, &t)
}

/// gjson's `String()`: raw text for strings, JSON for the rest.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Why a dependency did not accept the event.
fn accepts(dependency: &Value, data: &Value) -> Result<bool, String> {
    for filter in dependency.pointer("/filters/data").and_then(Value::as_array).into_iter().flatten() {
        let path = filter["path"].as_str().unwrap_or("");
        let found = gjson(data, path).ok_or_else(|| format!("path '{path}' does not exist"))?;
        let values: Vec<&str> = filter["value"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let negate = filter["comparator"].as_str() == Some("!=");
        let ok = match filter["type"].as_str().unwrap_or("string") {
            "bool" => {
                let actual = found.as_bool().ok_or_else(|| format!("{path} is not a bool"))?;
                values.iter().any(|v| (v.parse::<bool>().ok() == Some(actual)) != negate)
            }
            "number" => {
                let actual = found.as_f64().ok_or_else(|| format!("{path} is not a number"))?;
                values.iter().any(|v| (v.parse::<f64>().ok() == Some(actual)) != negate)
            }
            _ => {
                let subject = text(&found);
                let mut ok = false;
                for value in &values {
                    let matched = Regex::new(value)?.find(&subject).is_some();
                    if matched != negate {
                        ok = true;
                    }
                }
                ok
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    for filter in dependency.pointer("/filters/exprs").and_then(Value::as_array).into_iter().flatten() {
        let mut vars = std::collections::BTreeMap::new();
        for field in filter["fields"].as_array().into_iter().flatten() {
            let path = field["path"].as_str().unwrap_or("");
            let found = gjson(data, path).ok_or_else(|| format!("path '{path}' does not exist"))?;
            vars.insert(text(&field["name"]), text(&found));
        }
        if !expr::with_vars(filter["expr"].as_str().unwrap_or("false"), &vars)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What one delivery does to one Sensor: the triggers it fires, or why it dropped the event.
pub fn sensor(sensor: &Value, data: &Value) -> Vec<Trigger> {
    let name = sensor.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let mut accepted = Vec::new();
    for dependency in sensor.pointer("/spec/dependencies").and_then(Value::as_array).into_iter().flatten() {
        match accepts(dependency, data) {
            Ok(true) => accepted.push(text(&dependency["name"])),
            Ok(false) => {}
            Err(reason) => {
                return vec![Trigger::Dropped { sensor: name, reason }];
            }
        }
    }
    let mut out = Vec::new();
    for trigger in sensor.pointer("/spec/triggers").and_then(Value::as_array).into_iter().flatten() {
        let template = &trigger["template"];
        let conditions = template["conditions"].as_str().unwrap_or("");
        if !accepted.iter().any(|d| d == conditions) {
            continue;
        }
        out.push(fire(&name, template, data).unwrap_or_else(|reason| Trigger::Failed { sensor: name.clone(), reason }));
    }
    out
}

fn parameter_value(param: &Value, data: &Value) -> Result<String, String> {
    let src = &param["src"];
    resolve_data_param(data, src["dataTemplate"].as_str(), src["dataKey"].as_str(), src["value"].as_str())
}

fn fire(sensor: &str, template: &Value, data: &Value) -> Result<Trigger, String> {
    if let Some(k8s) = template.get("k8s") {
        let mut object = k8s.pointer("/source/resource").cloned().ok_or("the k8s trigger has no resource")?;
        for param in k8s["parameters"].as_array().into_iter().flatten() {
            let value = parameter_value(param, data)?;
            let dest = param["dest"].as_str().unwrap_or("");
            sjson_path(dest)?;
            object = sensor_parameter(&object, dest, &value, param["operation"].as_str().unwrap_or(""));
        }
        let operation = k8s["operation"].as_str().unwrap_or("create").to_string();
        return Ok(Trigger::K8s { sensor: sensor.into(), operation, object });
    }
    if let Some(http) = template.get("http") {
        let mut payload = Value::Object(Map::new());
        for param in http["payload"].as_array().into_iter().flatten() {
            let value = parameter_value(param, data)?;
            sjson_set(&mut payload, &sjson_path(param["dest"].as_str().unwrap_or(""))?, Value::String(value))?;
        }
        return Ok(Trigger::Http {
            sensor: sensor.into(),
            url: text(&http["url"]),
            method: http["method"].as_str().unwrap_or("POST").to_string(),
            payload,
        });
    }
    Err("a trigger kind the model does not run".into())
}

/// Sends one delivery to every Sensor: the dispatch the simulation uses.
pub fn dispatch(sensors: &[Value], event: &str, delivery: &str, body: &Value) -> Vec<Trigger> {
    let data = envelope(event, delivery, body);
    sensors.iter().flat_map(|s| sensor(s, &data)).collect()
}

/// A trigger's rate limit: (unit, requests per unit).
pub fn rate_limit(trigger: &Value) -> Option<(String, u64)> {
    let limit = trigger.get("rateLimit")?;
    Some((text(&limit["unit"]), limit["requestsPerUnit"].as_u64()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gjson_paths_of_our_sensors() {
        let data =
            json!({"body": {"issue": {"labels": [{"name": "bug"}, {"name": "task-force"}, {"name": "task-7"}]}}});
        assert_eq!(
            gjson(&data, "body.issue.labels.#(name%\"task-*\").name"),
            Some(json!("task-force")),
            "the first match only"
        );
        assert_eq!(gjson(&data, "body.issue.labels.#.name"), Some(json!(["bug", "task-force", "task-7"])));
        assert_eq!(gjson(&data, "body.issue.labels.#"), Some(json!(3)));
        assert_eq!(gjson(&data, "body.issue.missing"), None);
        assert_eq!(gjson(&data, "body.issue.labels.2.name"), Some(json!("task-7")));
        let push = json!({"commits": [{"id": "a", "modified": ["x"]}, {"id": "b", "modified": ["requirements.yaml"]}]});
        assert_eq!(gjson(&push, "commits.#(modified.#(==\"requirements.yaml\")).id"), Some(json!("b")));
        assert_eq!(gjson(&push, "commits.#(added.#(==\"requirements.yaml\")).id"), None);
    }

    #[test]
    fn a_missing_path_drops_the_event() {
        let dependency = json!({"name": "d", "filters": {"data": [{"path": "body.check_run.app.slug", "type": "string", "value": ["^x$"], "comparator": "!="}]}});
        let data = envelope("check_run", "1", &json!({"check_run": {"app": {}}}));
        assert!(accepts(&dependency, &data).unwrap_err().contains("does not exist"));
    }
}
