//! The Argo Events side of the model (v1.9.11): what GitHub sends to the hook the EventSource
//! registers, the event data the EventSource publishes, which Sensor dependencies accept it,
//! and what their triggers do.
//!
//! Rules, each after a file of `argoproj/argo-events` at tag v1.9.11:
//! * **Hook** (`pkg/eventsources/sources/github/start.go`, `StartListening`): the EventSource
//!   creates one hook per listed repository (or organization) with the listed `events`; GitHub
//!   sends a delivery only for those (`*`: all; `ping` always). `HandleRoute` accepts any signed
//!   POST (`gh.ValidatePayload`) no larger than `maxPayloadSize` (`http.MaxBytesReader`).
//! * **Envelope** (`start.go`, `parseValidateRequest` and `HandleRoute`): the body is decoded
//!   into a Go map, gets the keys `X-GitHub-Event` and `X-GitHub-Delivery`, and is encoded
//!   again, so its keys are sorted at every level and `<`, `>`, `&` are escaped; the event data
//!   is `{"headers": {...}, "body": ...}` with Go-canonical header names (`X-Github-Event`).
//! * **Routing** (`pkg/sensors/listener.go`, `listenEvents`): a dependency sees the events of
//!   its `eventSourceName` and `eventName` only.
//! * **Filters** (`pkg/sensors/dependencies/filter.go`, `filterEvent`, `filterData`,
//!   `filterExpr`): `exprs` and `data` both pass, or with `filtersLogicalOperator: or` either.
//!   A data filter's path that does not exist is an error, and with the `and` operators an
//!   error drops the event (`listener.go` logs "discarded due to filtering error"). `string`
//!   values are Go regexps matched anywhere in gjson's `String()` of the value (the filter
//!   passes when one value matches, or with `!=` when one does not); `bool` compares gjson's
//!   `Bool()` and ignores the comparator; `number` compares `Float()` with `=`, `!=`, `<`,
//!   `<=`, `>`, `>=`; a `template` is applied to the text first. An expression filter needs
//!   every field's path to exist, then evaluates the expression over the fields.
//!   `dataLogicalOperator` / `exprLogicalOperator: or` pass when any one filter passes.
//! * **Conditions** (`listener.go`, `getDependencyExpression`): a trigger's `conditions` is a
//!   `&&`/`||` expression of dependency names; without one, every dependency must be met.
//! * **Parameters** (`pkg/sensors/triggers/params.go`, `ApplyTemplateParameters`,
//!   `ApplyParams`, `ResolveParamValue`, `ConstructPayload`): a parameter's value is its
//!   `dataTemplate` (an error, `""` or `<no value>` fall through), then its `dataKey`, then its
//!   default `value`; none of them is an error that fails the trigger; a parameter of a
//!   dependency that brought no event and has no default is skipped. `append`/`prepend` join
//!   the text at `dest`; sjson writes the value at `dest` as a string.
//! * **k8s triggers** (`pkg/sensors/triggers/standard-k8s/standard-k8s.go`, `Execute`): the
//!   namespace defaults to the Sensor's; `create` adds the labels `events.argoproj.io/sensor`
//!   and `events.argoproj.io/trigger`; `patch` (default `application/merge-patch+json`) and
//!   `update` create the object when it does not exist, `delete` ignores a missing one. The
//!   object store the lead's controller model keeps applies these.
//! * **http triggers** (`pkg/sensors/triggers/http/http.go`, `ApplyResourceParameters`,
//!   `Execute`): `parameters` rewrite the trigger spec, `payload` parameters build the JSON
//!   body, the method defaults to POST; `secureHeaders` and `basicAuth` are read from the
//!   Secrets mounted in the Sensor pod.
//! * **Secrets** (`pkg/reconciler/sensor/resource.go`, `buildDeployment`, and
//!   `pkg/shared/util/util.go`, `VolumesFromSecretsOrConfigMaps`): every `SecretKeySelector`
//!   in the Sensor spec becomes a Secret volume of the Sensor pod without `optional`, so one
//!   missing Secret keeps the pod from starting and stops every trigger of the Sensor
//!   ([`secrets_referenced`]).
//! * **Rate limits** (`listener.go`, `initRateLimiter`): `requestsPerUnit` per `Second`
//!   (the default), `Minute` or `Hour` ([`rate_limit`]).
//!
//! Simplified, on purpose:
//! * Each delivery is judged alone: a trigger whose conditions need two dependencies never
//!   fires (the real Sensor keeps the first event until the second comes). Our Sensors have one
//!   dependency each.
//! * Expression fields reach the evaluator as text (govaluate gets typed values); the
//!   evaluator is the model's (`expr.rs`): `==`, `!=`, `<`, `>`, `&&`, `||`, `!`, quotes.
//! * `context`, `time` and `script` filters, `transform`, `contextKey`, `useRawData`, trigger
//!   sources other than an inline `resource`, and trigger kinds other than `k8s` and `http` are
//!   reported as outside the model (an error), never silently passed.
//! * The `events.argoproj.io/action-timestamp` label of created objects is left out (it is a
//!   clock reading); retries, `atLeastOnce` and the `policy` of a trigger are not run, and rate
//!   limits are reported, not enforced.
//! * gjson paths: see [`super::gjson`]; Go regexps: the RE2 subset of [`super::subst::Regex`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::expr;
use super::gjson;
use super::sim::Trigger;
use super::subst::{
    Regex, go_json_sorted, go_template, parse_json, resolve_data_param, sensor_parameter, sjson_path, sjson_set,
};

/// One GitHub webhook delivery: the `X-GitHub-Event` and `X-GitHub-Delivery` headers and the
/// JSON body.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The event type (`issue_comment`, `pull_request`...).
    pub event: String,
    /// The delivery id (a UUID).
    pub id: String,
    /// The payload.
    pub body: Value,
}

/// What a trigger asks of the cluster or of an HTTP server.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A `k8s` trigger: `create`, `update`, `patch` or `delete` of `object`.
    K8s {
        /// The operation (`create` when the trigger gives none).
        operation: String,
        /// For `patch`: the patch type (`application/merge-patch+json` by default).
        patch_strategy: Option<String>,
        /// The object after the parameters, with its namespace and the trigger's labels.
        object: Value,
    },
    /// An `http` trigger: the request it makes.
    Http {
        /// The URL.
        url: String,
        /// The method.
        method: String,
        /// Plain headers.
        headers: BTreeMap<String, String>,
        /// Headers read from Secrets: header name → (Secret, key).
        secure_headers: BTreeMap<String, (String, String)>,
        /// The JSON body built from the `payload` parameters.
        payload: Value,
    },
}

/// A trigger whose conditions the delivery met, and what it did.
#[derive(Clone, Debug)]
pub struct Fired {
    /// The Sensor.
    pub sensor: String,
    /// The trigger's `template.name`.
    pub trigger: String,
    /// What it does, or why it fails (a parameter that did not resolve, say).
    pub action: Result<Action, String>,
}

/// A dependency that did not accept the delivery.
#[derive(Clone, Debug)]
pub struct Dropped {
    /// The Sensor.
    pub sensor: String,
    /// The dependency.
    pub dependency: String,
    /// Why (a filter that did not pass, or the error that made the Sensor discard it).
    pub reason: String,
    /// The filters could not be evaluated (a path that does not exist, say): Argo Events logs
    /// a warning and discards the event. Otherwise a filter simply said no.
    pub error: bool,
}

/// Everything one delivery does.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Why no EventSource received it (GitHub has no hook for that event or repository); empty
    /// when one did.
    pub not_sent: Vec<String>,
    /// The triggers that fired, in Sensor and trigger order.
    pub fired: Vec<Fired>,
    /// The dependencies that saw the event and did not accept it.
    pub dropped: Vec<Dropped>,
}

/// The event data the GitHub EventSource publishes for a delivery.
pub fn envelope(delivery: &Delivery) -> Value {
    let mut body = delivery.body.clone();
    if let Some(map) = body.as_object_mut() {
        map.insert("X-GitHub-Event".into(), json!(delivery.event));
        map.insert("X-GitHub-Delivery".into(), json!(delivery.id));
    }
    // Decoded into a Go map and encoded again: keys sorted at every level.
    let body = parse_json(&go_json_sorted(&body)).unwrap_or(body);
    json!({
        "body": body,
        "headers": {
            "Accept": ["*/*"],
            "Content-Type": ["application/json"],
            "User-Agent": ["GitHub-Hookshot/model"],
            "X-Github-Delivery": [delivery.id],
            "X-Github-Event": [delivery.event],
        },
    })
}

/// Whether GitHub sends the delivery to one `spec.github.<name>` entry of an EventSource:
/// `Err` says why not.
pub fn hook_receives(entry: &Value, delivery: &Delivery) -> Result<(), String> {
    let events: Vec<&str> = entry["events"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if delivery.event != "ping" && !events.iter().any(|e| *e == "*" || *e == delivery.event) {
        return Err(format!("the hook is not subscribed to `{}`", delivery.event));
    }
    let full_name = delivery.body.pointer("/repository/full_name").and_then(Value::as_str).unwrap_or("");
    let owner = delivery.body.pointer("/organization/login").and_then(Value::as_str);
    let on_repository = entry["repositories"].as_array().into_iter().flatten().any(|r| {
        r["names"].as_array().into_iter().flatten().any(|name| {
            Some(full_name) == name.as_str().map(|n| format!("{}/{n}", r["owner"].as_str().unwrap_or(""))).as_deref()
        })
    });
    let on_organization =
        entry["organizations"].as_array().into_iter().flatten().any(|o| o.as_str() == owner && owner.is_some());
    if !on_repository && !on_organization {
        return Err(format!("no hook on `{full_name}`"));
    }
    let limit = entry.pointer("/webhook/maxPayloadSize").and_then(Value::as_u64).unwrap_or(1_048_576);
    let size = go_json_sorted(&delivery.body).len() as u64;
    if size > limit {
        return Err(format!("the payload ({size} bytes) is larger than maxPayloadSize ({limit})"));
    }
    Ok(())
}

/// Runs one delivery through the rendered documents: the EventSources (when `docs` has none,
/// every Sensor dependency receives it) and every Sensor.
pub fn deliver(docs: &[Value], delivery: &Delivery) -> Outcome {
    let mut outcome = Outcome::default();
    let sources: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "EventSource").collect();
    let mut routes = BTreeSet::new();
    for source in &sources {
        let name = text(&source["metadata"]["name"]);
        for (event_name, entry) in source.pointer("/spec/github").and_then(Value::as_object).into_iter().flatten() {
            match hook_receives(entry, delivery) {
                Ok(()) => {
                    routes.insert((name.clone(), event_name.clone()));
                }
                Err(reason) => outcome.not_sent.push(format!("{name}/{event_name}: {reason}")),
            }
        }
    }
    if !sources.is_empty() && !routes.is_empty() {
        outcome.not_sent.clear();
    }
    let data = envelope(delivery);
    for sensor in docs.iter().filter(|d| d["kind"] == "Sensor") {
        let subscribed = |dependency: &Value| {
            sources.is_empty()
                || routes.contains(&(text(&dependency["eventSourceName"]), text(&dependency["eventName"])))
        };
        run_sensor(sensor, &data, &subscribed, &mut outcome);
    }
    outcome
}

fn run_sensor(sensor: &Value, data: &Value, subscribed: &dyn Fn(&Value) -> bool, outcome: &mut Outcome) {
    let name = text(&sensor["metadata"]["name"]);
    let dependencies: Vec<&Value> =
        sensor.pointer("/spec/dependencies").and_then(Value::as_array).into_iter().flatten().collect();
    let mut met = BTreeSet::new();
    for dependency in &dependencies {
        if !subscribed(dependency) {
            continue;
        }
        let dep_name = text(&dependency["name"]);
        let (pass, error) = filter_event(dependency, data);
        if pass {
            met.insert(dep_name);
        } else {
            let reason = error.clone().unwrap_or_else(|| "a filter did not pass".into());
            outcome.dropped.push(Dropped {
                sensor: name.clone(),
                dependency: dep_name,
                reason,
                error: error.is_some(),
            });
        }
    }
    if met.is_empty() {
        return;
    }
    let names: Vec<String> = dependencies.iter().map(|d| text(&d["name"])).collect();
    for trigger in sensor.pointer("/spec/triggers").and_then(Value::as_array).into_iter().flatten() {
        let template = &trigger["template"];
        let conditions = match template["conditions"].as_str().filter(|c| !c.trim().is_empty()) {
            Some(c) => c.to_string(),
            None => names.join("&&"),
        };
        let action = match conditions_met(&conditions, &met) {
            Ok(false) => continue,
            Ok(true) => fire(sensor, trigger, data, &met),
            Err(e) => Err(e),
        };
        outcome.fired.push(Fired { sensor: name.clone(), trigger: text(&template["name"]), action });
    }
}

/// `filterEvent` for one dependency: whether it passes, and the error Argo Events logs.
fn filter_event(dependency: &Value, data: &Value) -> (bool, Option<String>) {
    let filters = &dependency["filters"];
    if filters.is_null() {
        return (true, None);
    }
    for unmodelled in ["context", "time", "script"] {
        if !filters[unmodelled].is_null() {
            return (false, Some(format!("`{unmodelled}` filters are outside the model")));
        }
    }
    if !dependency["transform"].is_null() {
        return (false, Some("`transform` is outside the model".into()));
    }
    let or = dependency["filtersLogicalOperator"] == "or";
    let mut errors = Vec::new();
    let mut results = Vec::new();
    for (present, result) in [
        (!filters["exprs"].is_null(), filter_exprs(&filters["exprs"], filters["exprLogicalOperator"] == "or", data)),
        (!filters["data"].is_null(), filter_data(&filters["data"], filters["dataLogicalOperator"] == "or", data)),
    ] {
        match result {
            Ok(pass) => results.push(present && pass),
            Err(e) if !or => return (false, Some(e)),
            Err(e) => {
                errors.push(e);
                results.push(false);
            }
        }
    }
    let error = if errors.is_empty() { None } else { Some(errors.join(" / ")) };
    if or {
        return (results.iter().any(|r| *r), error);
    }
    // With `and`, an absent kind of filter passes.
    let pass = [&filters["exprs"], &filters["data"]].iter().zip(&results).all(|(f, r)| f.is_null() || *r);
    (pass, error)
}

/// `filterData`: `Err` is a filtering error (with `and`, it drops the event).
fn filter_data(filters: &Value, or: bool, data: &Value) -> Result<bool, String> {
    let filters = filters.as_array().map(Vec::as_slice).unwrap_or_default();
    if filters.is_empty() {
        return Ok(true);
    }
    let mut errors = Vec::new();
    for filter in filters {
        match one_data_filter(filter, data) {
            Ok(true) if or => return Ok(true),
            Ok(false) if !or => return Ok(false),
            Ok(_) => {}
            Err(e) if or => errors.push(e),
            Err(e) => return Err(format!("data filter error ({e})")),
        }
    }
    if !or {
        return Ok(true);
    }
    if errors.is_empty() { Ok(false) } else { Err(format!("data filter errors [{}]", errors.join(" / "))) }
}

fn one_data_filter(filter: &Value, data: &Value) -> Result<bool, String> {
    let path = filter["path"].as_str().unwrap_or("");
    let mut found = gjson::get(data, path)?.ok_or_else(|| format!("path '{path}' does not exist"))?;
    let values: Vec<&str> = filter["value"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if values.is_empty() {
        return Err("no values specified".into());
    }
    if let Some(template) = filter["template"].as_str().filter(|t| !t.is_empty()) {
        let out = go_template(template, &Value::String(gjson::string(&found)))?;
        if out.is_empty() || out == "<no value>" {
            return Err(format!("template '{template}' evaluated to empty string or no value"));
        }
        found = Value::String(out);
    }
    let comparator = filter["comparator"].as_str().unwrap_or("");
    match filter["type"].as_str().unwrap_or("") {
        "bool" => {
            let actual = gjson::truth(&found);
            for value in &values {
                let expected = gjson::parse_go_bool(value).ok_or_else(|| format!("invalid syntax: {value:?}"))?;
                if expected == actual {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        "number" => {
            let actual = gjson::float(&found);
            for value in &values {
                let expected: f64 = value.trim().parse().map_err(|_| format!("invalid syntax: {value:?}"))?;
                let pass = match comparator {
                    ">=" => actual >= expected,
                    ">" => actual > expected,
                    "<" => actual < expected,
                    "<=" => actual <= expected,
                    "!=" => actual != expected,
                    "=" | "" => actual == expected,
                    _ => false,
                };
                if pass {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        "string" => {
            let subject = gjson::string(&found);
            for value in &values {
                let matched = Regex::new(value)?.find(&subject).is_some();
                let pass = match comparator {
                    "=" | "" => matched,
                    "!=" => !matched,
                    _ => false,
                };
                if pass {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        other => Err(format!("unsupported JSON type '{other}'")),
    }
}

/// `filterExpr`.
fn filter_exprs(filters: &Value, or: bool, data: &Value) -> Result<bool, String> {
    let Some(filters) = filters.as_array() else { return Ok(true) };
    let mut errors = Vec::new();
    'filters: for filter in filters {
        let mut vars = BTreeMap::new();
        for field in filter["fields"].as_array().into_iter().flatten() {
            let path = field["path"].as_str().unwrap_or("");
            match gjson::get(data, path)? {
                Some(found) => {
                    vars.insert(text(&field["name"]), gjson::string(&found));
                }
                None if or => {
                    errors.push(format!("path '{path}' does not exist"));
                    continue 'filters;
                }
                None => return Err(format!("expr filter error (path '{path}' does not exist)")),
            }
        }
        if vars.is_empty() {
            continue;
        }
        match expr::with_vars(filter["expr"].as_str().unwrap_or(""), &vars) {
            Ok(true) if or => return Ok(true),
            Ok(false) if !or => return Ok(false),
            Ok(_) => {}
            Err(e) if or => errors.push(e),
            Err(e) => return Err(format!("expr filter error ({e})")),
        }
    }
    if !or {
        return Ok(true);
    }
    if errors.is_empty() { Ok(false) } else { Err(format!("expr filter errors [{}]", errors.join(" / "))) }
}

/// A trigger's `conditions`: dependency names joined by `&&` and `||`, with parentheses.
fn conditions_met(conditions: &str, met: &BTreeSet<String>) -> Result<bool, String> {
    let spaced = conditions.replace("&&", " && ").replace("||", " || ").replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    fn or(tokens: &[&str], at: &mut usize, met: &BTreeSet<String>) -> Result<bool, String> {
        let mut value = and(tokens, at, met)?;
        while tokens.get(*at) == Some(&"||") {
            *at += 1;
            value |= and(tokens, at, met)?;
        }
        Ok(value)
    }
    fn and(tokens: &[&str], at: &mut usize, met: &BTreeSet<String>) -> Result<bool, String> {
        let mut value = atom(tokens, at, met)?;
        while tokens.get(*at) == Some(&"&&") {
            *at += 1;
            value &= atom(tokens, at, met)?;
        }
        Ok(value)
    }
    fn atom(tokens: &[&str], at: &mut usize, met: &BTreeSet<String>) -> Result<bool, String> {
        let token = tokens.get(*at).ok_or("conditions end too early")?;
        *at += 1;
        if *token == "(" {
            let value = or(tokens, at, met)?;
            if tokens.get(*at) != Some(&")") {
                return Err("unbalanced parentheses in conditions".into());
            }
            *at += 1;
            return Ok(value);
        }
        // `getDependencyExpression` compares names with `-` read as `_`.
        let wanted = token.replace('-', "_");
        Ok(met.iter().any(|name| name.replace('-', "_") == wanted))
    }
    let mut at = 0;
    let value = or(&tokens, &mut at, met)?;
    if at != tokens.len() {
        return Err(format!("cannot read conditions {conditions:?}"));
    }
    Ok(value)
}

/// `ResolveParamValue` for one parameter: `Ok(None)` when its dependency brought no event and
/// it has no default (the parameter is skipped).
fn parameter_value(src: &Value, data: &Value, met: &BTreeSet<String>) -> Result<Option<String>, String> {
    let default = src["value"].as_str();
    if !met.contains(&text(&src["dependencyName"])) {
        return Ok(default.map(str::to_string));
    }
    if !src["contextKey"].is_null() || !src["contextTemplate"].is_null() {
        return Err("`contextKey` and `contextTemplate` are outside the model".into());
    }
    if src["useRawData"] == true {
        return Err("`useRawData` is outside the model".into());
    }
    let (template, key) = (src["dataTemplate"].as_str(), src["dataKey"].as_str());
    if template.is_none() && key.is_none() {
        return default
            .map(|d| Some(d.to_string()))
            .ok_or_else(|| "the whole event as a value is outside the model".into());
    }
    resolve_data_param(data, template, key, default)
        .map(Some)
        .map_err(|_| format!("unable to resolve '{}' parameter value", text(&src["dependencyName"])))
}

/// `ApplyParams`: each parameter written at its `dest`.
fn apply_params(mut object: Value, params: &Value, data: &Value, met: &BTreeSet<String>) -> Result<Value, String> {
    for param in params.as_array().into_iter().flatten() {
        let Some(value) = parameter_value(&param["src"], data, met)? else { continue };
        let dest = param["dest"].as_str().unwrap_or("");
        sjson_path(dest)?;
        let operation = param["operation"].as_str().unwrap_or("");
        if !["", "overwrite", "append", "prepend"].contains(&operation) {
            return Err(format!("unsupported trigger parameter operation: {operation}"));
        }
        object = sensor_parameter(&object, dest, &value, operation);
    }
    Ok(object)
}

fn fire(sensor: &Value, trigger: &Value, data: &Value, met: &BTreeSet<String>) -> Result<Action, String> {
    let template = apply_params(trigger["template"].clone(), &trigger["parameters"], data, met)?;
    if let Some(k8s) = template.get("k8s") {
        let resource = k8s
            .pointer("/source/resource")
            .cloned()
            .ok_or("a k8s trigger source other than `resource` is outside the model")?;
        let mut object = apply_params(resource, &k8s["parameters"], data, met)?;
        let operation = k8s["operation"].as_str().filter(|o| !o.is_empty()).unwrap_or("create").to_string();
        if !["create", "update", "patch", "delete"].contains(&operation.as_str()) {
            return Err(format!("unknown operation type {operation}"));
        }
        let meta = object
            .as_object_mut()
            .ok_or("the resource is not an object")?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        if meta["namespace"].as_str().is_none_or(str::is_empty) {
            meta["namespace"] = sensor["metadata"]["namespace"].clone();
        }
        if operation == "create" {
            let labels =
                meta.as_object_mut().ok_or("metadata is not an object")?.entry("labels").or_insert_with(|| json!({}));
            labels["events.argoproj.io/sensor"] = sensor["metadata"]["name"].clone();
            labels["events.argoproj.io/trigger"] = template["name"].clone();
        }
        let patch_strategy = (operation == "patch").then(|| {
            k8s["patchStrategy"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("application/merge-patch+json")
                .to_string()
        });
        return Ok(Action::K8s { operation, patch_strategy, object });
    }
    if let Some(http) = template.get("http") {
        let http = apply_params(http.clone(), &http["parameters"], data, met)?;
        let mut payload = Value::Object(Map::new());
        for param in http["payload"].as_array().into_iter().flatten() {
            let Some(value) = parameter_value(&param["src"], data, met)? else { continue };
            let dest = param["dest"].as_str().unwrap_or("");
            if dest.is_empty() {
                return Err("a payload parameter without `dest` (the whole body) is outside the model".into());
            }
            sjson_set(&mut payload, &sjson_path(dest)?, Value::String(value))?;
        }
        let headers = http["headers"].as_object().into_iter().flatten().map(|(k, v)| (k.clone(), text(v))).collect();
        let mut secure_headers = BTreeMap::new();
        for header in http["secureHeaders"].as_array().into_iter().flatten() {
            let secret = &header["valueFrom"]["secretKeyRef"];
            if secret.is_null() {
                return Err("a secure header from a ConfigMap is outside the model".into());
            }
            secure_headers.insert(text(&header["name"]), (text(&secret["name"]), text(&secret["key"])));
        }
        for (part, header) in [("username", "Authorization (user)"), ("password", "Authorization (password)")] {
            let secret = &http["basicAuth"][part];
            if !secret.is_null() {
                secure_headers.insert(header.to_string(), (text(&secret["name"]), text(&secret["key"])));
            }
        }
        return Ok(Action::Http {
            url: text(&http["url"]),
            method: http["method"].as_str().filter(|m| !m.is_empty()).unwrap_or("POST").to_string(),
            headers,
            secure_headers,
            payload,
        });
    }
    Err("a trigger kind other than k8s and http is outside the model".into())
}

/// Sends one delivery to Sensors, for `pressplay simulate` (`sim::Dispatch`): the triggers that
/// fired, and the Sensors that discarded the event with an error. Every dependency receives it
/// unless `sensors` also holds the EventSource.
pub fn dispatch(sensors: &[Value], event: &str, delivery: &str, body: &Value) -> Vec<Trigger> {
    let delivery = Delivery { event: event.into(), id: delivery.into(), body: body.clone() };
    let outcome = deliver(sensors, &delivery);
    let mut out: Vec<Trigger> = outcome
        .dropped
        .into_iter()
        .filter(|d| d.error)
        .map(|d| Trigger::Dropped { sensor: d.sensor, reason: format!("{}: {}", d.dependency, d.reason) })
        .collect();
    for fired in outcome.fired {
        let sensor = fired.sensor;
        out.push(match fired.action {
            Ok(Action::K8s { operation, object, .. }) => Trigger::K8s { sensor, operation, object },
            Ok(Action::Http { url, method, payload, .. }) => Trigger::Http { sensor, url, method, payload },
            Err(reason) => Trigger::Failed { sensor, reason: format!("{}: {reason}", fired.trigger) },
        });
    }
    out
}

/// The `SecretKeySelector` fields of the Sensor CRD (`pkg/apis/events/v1alpha1`).
const SECRET_SELECTORS: &[&str] = &[
    "accessKey",
    "accessSecret",
    "accessToken",
    "apiKey",
    "apiToken",
    "authAthenzSecret",
    "authSecret",
    "authToken",
    "authTokenSecret",
    "caCertSecret",
    "certSecret",
    "clientCertSecret",
    "clientKeySecret",
    "connectionString",
    "credential",
    "credentialSecret",
    "krbCCacheSecret",
    "krbKeytabSecret",
    "nkey",
    "oauthToken",
    "password",
    "passwordSecret",
    "privateKey",
    "secretKey",
    "secretKeyRef",
    "sessionToken",
    "sharedAccessKey",
    "sharedAccessKeyName",
    "slackToken",
    "smtpPassword",
    "sshKeySecret",
    "tlsTrustCertsSecret",
    "token",
    "urlSecret",
    "userSecret",
    "username",
];

/// Every Secret the Sensor's pod mounts, none optional: the `SecretKeySelector`s of its spec
/// (`VolumesFromSecretsOrConfigMaps` walks the typed spec; the body of a k8s trigger's
/// `resource` is opaque to it, so a Secret named inside a created object does not count).
pub fn secrets_referenced(sensor: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "resource" {
                        continue;
                    }
                    if SECRET_SELECTORS.contains(&key.as_str())
                        && let (Some(name), true) = (child["name"].as_str(), child.get("key").is_some())
                    {
                        out.insert(name.to_string());
                    }
                    walk(child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(&sensor["spec"], &mut out);
    out.into_iter().collect()
}

/// A trigger's rate limit: (`Second`, `Minute` or `Hour`; requests per unit).
pub fn rate_limit(trigger: &Value) -> Option<(String, u64)> {
    let limit = trigger.get("rateLimit")?;
    let unit = limit["unit"].as_str().filter(|u| ["Minute", "Hour"].contains(u)).unwrap_or("Second");
    Some((unit.to_string(), limit["requestsPerUnit"].as_u64()?))
}

fn text(value: &Value) -> String {
    gjson::string(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(event: &str, body: Value) -> Delivery {
        Delivery { event: event.into(), id: "d-1".into(), body }
    }

    fn dep(filters: Value) -> Value {
        json!({"name": "d", "eventSourceName": "es", "eventName": "gh", "filters": filters})
    }

    fn data_filter(path: &str, kind: &str, values: &[&str], comparator: &str) -> Value {
        json!({"path": path, "type": kind, "value": values, "comparator": comparator})
    }

    fn passes(filters: Value, body: Value) -> (bool, Option<String>) {
        filter_event(&dep(filters), &envelope(&delivery("push", body)))
    }

    #[test]
    fn the_envelope_sorts_keys_and_adds_the_headers_to_the_body() {
        let data = envelope(&delivery("issues", json!({"z": 1, "a": {"y": "<b>", "b": 2}})));
        assert_eq!(data["body"]["X-GitHub-Event"], "issues");
        assert_eq!(data["body"]["X-GitHub-Delivery"], "d-1");
        assert_eq!(data["headers"]["X-Github-Event"], json!(["issues"]), "Go-canonical header names");
        assert_eq!(
            gjson::string(&data["body"]),
            r#"{"X-GitHub-Delivery":"d-1","X-GitHub-Event":"issues","a":{"b":2,"y":"\u003cb\u003e"},"z":1}"#
        );
    }

    #[test]
    fn github_sends_only_what_the_hook_subscribes_to() {
        let entry = json!({"repositories": [{"owner": "acme", "names": ["shop"]}], "events": ["push"]});
        let repo = |name: &str| json!({"repository": {"full_name": name}});
        assert!(hook_receives(&entry, &delivery("push", repo("acme/shop"))).is_ok());
        assert!(hook_receives(&entry, &delivery("ping", repo("acme/shop"))).is_ok(), "ping always");
        assert!(hook_receives(&entry, &delivery("issues", repo("acme/shop"))).unwrap_err().contains("not subscribed"));
        assert!(hook_receives(&entry, &delivery("push", repo("acme/other"))).unwrap_err().contains("no hook"));
        let small = json!({"repositories": [{"owner": "acme", "names": ["shop"]}], "events": ["*"], "webhook": {"maxPayloadSize": 10}});
        assert!(hook_receives(&small, &delivery("push", repo("acme/shop"))).unwrap_err().contains("maxPayloadSize"));
    }

    #[test]
    fn a_missing_path_is_an_error_that_drops_the_event() {
        let filters = json!({"data": [data_filter("body.check_run.app.slug", "string", &["^x$"], "!=")]});
        let (pass, error) = passes(filters, json!({"check_run": {"app": {}}}));
        assert!(!pass);
        assert!(error.unwrap().contains("path 'body.check_run.app.slug' does not exist"));
        let exprs = json!({"exprs": [{"expr": "a != \"x\"", "fields": [{"name": "a", "path": "body.workflow_run.actor.login"}]}]});
        let (pass, error) = passes(exprs, json!({"workflow_run": {}}));
        assert!(!pass && error.unwrap().contains("does not exist"));
        // With `or`, the error is reported and another filter may still pass.
        let or = json!({"data": [data_filter("body.missing", "string", &["^x$"], ""), data_filter("body.a", "string", &["^1$"], "")], "dataLogicalOperator": "or"});
        let (pass, error) = passes(or, json!({"a": "1"}));
        assert!(pass);
        assert!(error.is_none(), "an or-filter that passes returns at once");
    }

    #[test]
    fn string_filters_are_go_regexps_on_the_text() {
        let play = "^\\s*/play\\s*$";
        for (comment, matched) in [("/play", true), ("/play\r\n", true), ("/play\nmore", false), ("x /play", false)] {
            let body = json!({"c": comment});
            assert_eq!(
                passes(json!({"data": [data_filter("body.c", "string", &[play], "")]}), body.clone()).0,
                matched,
                "{comment:?}"
            );
            assert_eq!(
                passes(json!({"data": [data_filter("body.c", "string", &[play], "!=")]}), body).0,
                !matched,
                "{comment:?} negated"
            );
        }
        // `.` does not match a newline, `$` is the end of the text.
        assert!(!passes(json!({"data": [data_filter("body.c", "string", &["^a.b$"], "")]}), json!({"c": "a\nb"})).0);
        assert!(!passes(json!({"data": [data_filter("body.c", "string", &["^a$"], "")]}), json!({"c": "a\n"})).0);
        // Unanchored values match anywhere; with several values one match suffices.
        assert!(passes(json!({"data": [data_filter("body.c", "string", &["^z$", "b"], "")]}), json!({"c": "abc"})).0);
        // Arrays and objects are matched as their JSON text.
        let labels = json!({"labels": [{"name": "task-force"}, {"name": "task-7"}]});
        assert!(passes(json!({"data": [data_filter("body.labels.#.name", "string", &["^\\[(.*,)?\"task-[0-9]+\"(,.*)?\\]$"], "")]}), labels).0);
        // A regexp that does not compile is an error.
        assert!(passes(json!({"data": [data_filter("body.c", "string", &["("], "")]}), json!({"c": "x"})).1.is_some());
    }

    #[test]
    fn bool_and_number_filters_coerce_as_gjson() {
        let merged = |v: Value, c: &str| {
            passes(json!({"data": [data_filter("body.m", "bool", &["true"], c)]}), json!({"m": v})).0
        };
        assert!(merged(json!(true), ""));
        assert!(!merged(json!(false), ""));
        assert!(merged(json!("true"), ""), "a string that ParseBool reads");
        assert!(merged(json!(true), "!="), "bool filters ignore the comparator");
        assert!(!merged(Value::Null, ""));
        let number = |v: Value, c: &str| {
            passes(json!({"data": [data_filter("body.n", "number", &["10"], c)]}), json!({"n": v})).0
        };
        assert!(number(json!(10), "") && number(json!("10"), "="));
        assert!(number(json!(11), ">") && !number(json!(10), ">") && number(json!(10), ">="));
        assert!(number(json!(9), "!=") && !number(json!(10), "!="));
        assert!(passes(json!({"data": [data_filter("body.n", "number", &["x"], "")]}), json!({"n": 1})).1.is_some());
        assert!(
            passes(json!({"data": [data_filter("body.n", "number", &[], "")]}), json!({"n": 1}))
                .1
                .unwrap()
                .contains("no values")
        );
    }

    #[test]
    fn a_data_filter_template_applies_to_the_text_first() {
        let filter =
            json!({"path": "body.b", "type": "string", "value": ["^TASK/7$"], "template": "{{ .Input | upper }}"});
        assert!(passes(json!({"data": [filter]}), json!({"b": "task/7"})).0);
    }

    #[test]
    fn exprs_and_the_filters_logical_operator() {
        let exprs = json!([{"expr": "login != \"bot\"", "fields": [{"name": "login", "path": "body.sender.login"}]}]);
        let data = json!([data_filter("body.a", "string", &["^1$"], "")]);
        let body = |login: &str, a: &str| json!({"sender": {"login": login}, "a": a});
        assert!(passes(json!({"exprs": exprs, "data": data}), body("me", "1")).0);
        assert!(!passes(json!({"exprs": exprs, "data": data}), body("bot", "1")).0);
        assert!(!passes(json!({"exprs": exprs, "data": data}), body("me", "2")).0);
        let or = |b: Value| {
            let dependency =
                json!({"name": "d", "filters": {"exprs": exprs, "data": data}, "filtersLogicalOperator": "or"});
            filter_event(&dependency, &envelope(&delivery("push", b))).0
        };
        assert!(or(body("bot", "1")) && or(body("me", "2")) && !or(body("bot", "2")));
    }

    #[test]
    fn conditions_are_dependency_expressions() {
        let met: BTreeSet<String> = ["a-1".to_string(), "b".to_string()].into();
        assert!(conditions_met("a-1", &met).unwrap());
        assert!(conditions_met("a_1 && b", &met).unwrap(), "`-` reads as `_`");
        assert!(!conditions_met("a-1 && c", &met).unwrap());
        assert!(conditions_met("c || (a-1 && b)", &met).unwrap());
        assert!(conditions_met("(a-1", &met).is_err());
    }

    fn sensor(triggers: Value) -> Value {
        json!({"kind": "Sensor", "metadata": {"name": "s", "namespace": "ns"}, "spec": {
            "dependencies": [{"name": "d", "eventSourceName": "es", "eventName": "gh",
                              "filters": {"data": [data_filter("body.X-GitHub-Event", "string", &["^push$"], "")]}}],
            "triggers": triggers,
        }})
    }

    #[test]
    fn k8s_triggers_resolve_parameters_and_label_what_they_create() {
        let trigger = json!({"template": {"name": "t", "conditions": "d", "k8s": {
            "operation": "create",
            "source": {"resource": {"kind": "Workflow", "metadata": {"name": "run-"}, "spec": {"x": ""}}},
            "parameters": [
                {"src": {"dependencyName": "d", "dataKey": "body.ref"}, "dest": "metadata.name", "operation": "append"},
                {"src": {"dependencyName": "d", "dataKey": "body.missing", "value": "fallback"}, "dest": "spec.x"},
                {"src": {"dependencyName": "other"}, "dest": "spec.skipped"},
            ],
        }}});
        let outcome = deliver(&[sensor(json!([trigger]))], &delivery("push", json!({"ref": "main"})));
        let Ok(Action::K8s { operation, patch_strategy, object }) = &outcome.fired[0].action else {
            panic!("{outcome:?}")
        };
        assert_eq!((operation.as_str(), patch_strategy), ("create", &None));
        assert_eq!(object["metadata"]["name"], "run-main");
        assert_eq!(object["metadata"]["namespace"], "ns", "the Sensor's namespace");
        assert_eq!(object["metadata"]["labels"]["events.argoproj.io/trigger"], "t");
        assert_eq!(object["spec"], json!({"x": "fallback"}), "a default, and no write for a dependency without event");

        let unresolved = json!({"template": {"name": "t", "k8s": {"operation": "patch",
            "source": {"resource": {"kind": "ConfigMap", "metadata": {"name": "c"}}},
            "parameters": [{"src": {"dependencyName": "d", "dataKey": "body.missing"}, "dest": "data.x"}]}}});
        let outcome = deliver(&[sensor(json!([unresolved]))], &delivery("push", json!({})));
        assert!(outcome.fired[0].action.as_ref().unwrap_err().contains("unable to resolve"));
        let patch = json!({"template": {"name": "t", "k8s": {"operation": "patch", "source": {"resource": {"kind": "ConfigMap", "metadata": {"name": "c"}}}}}});
        let outcome = deliver(&[sensor(json!([patch]))], &delivery("push", json!({})));
        let Ok(Action::K8s { patch_strategy, .. }) = &outcome.fired[0].action else { panic!() };
        assert_eq!(patch_strategy.as_deref(), Some("application/merge-patch+json"));
    }

    #[test]
    fn http_triggers_build_the_payload_and_name_their_secrets() {
        let trigger = json!({"template": {"name": "wake", "http": {
            "url": "https://argo/api/v1/workflows/ns/run/resume", "method": "PUT",
            "headers": {"Content-Type": "application/json"},
            "secureHeaders": [{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "waker", "key": "authorization"}}}],
            "tls": {"caCertSecret": {"name": "ca", "key": "ca.crt"}},
            "payload": [{"src": {"dependencyName": "d", "dataTemplate": "n={{ .Input.body.n }}"}, "dest": "nodeFieldSelector"}],
        }}, "rateLimit": {"unit": "Minute", "requestsPerUnit": 60}});
        let s = sensor(json!([trigger]));
        let outcome = deliver(std::slice::from_ref(&s), &delivery("push", json!({"n": 7})));
        let Ok(Action::Http { url, method, headers, secure_headers, payload }) = &outcome.fired[0].action else {
            panic!()
        };
        assert!(url.ends_with("/run/resume"));
        assert_eq!(method, "PUT");
        assert_eq!(headers["Content-Type"], "application/json");
        assert_eq!(secure_headers["Authorization"], ("waker".to_string(), "authorization".to_string()));
        assert_eq!(payload, &json!({"nodeFieldSelector": "n=7"}));
        assert_eq!(secrets_referenced(&s), ["ca", "waker"]);
        assert_eq!(rate_limit(&s["spec"]["triggers"][0]), Some(("Minute".into(), 60)));
        assert_eq!(rate_limit(&json!({"rateLimit": {"requestsPerUnit": 2}})), Some(("Second".into(), 2)));
    }

    #[test]
    fn a_secret_inside_a_created_object_is_not_mounted() {
        let s = sensor(json!([{"template": {"name": "t", "k8s": {"source": {"resource": {"spec": {"env": [
            {"valueFrom": {"secretKeyRef": {"name": "app", "key": "k"}}}]}}}}}}]));
        assert!(secrets_referenced(&s).is_empty());
    }

    #[test]
    fn dependencies_see_only_their_event_source() {
        let es = json!({"kind": "EventSource", "metadata": {"name": "es"}, "spec": {"github": {"gh": {
            "repositories": [{"owner": "acme", "names": ["shop"]}], "events": ["push"]}}}});
        let trigger = json!({"template": {"name": "t", "k8s": {"source": {"resource": {"kind": "ConfigMap", "metadata": {"name": "c"}}}}}});
        let mut other = sensor(json!([trigger]));
        other["spec"]["dependencies"][0]["eventName"] = json!("elsewhere");
        let docs = [es, sensor(json!([trigger])), other];
        let ours = deliver(&docs, &delivery("push", json!({"repository": {"full_name": "acme/shop"}})));
        assert!(ours.not_sent.is_empty());
        assert_eq!(ours.fired.len(), 1, "the Sensor on another event name hears nothing");
        let theirs = deliver(&docs, &delivery("push", json!({"repository": {"full_name": "acme/else"}})));
        assert!(theirs.fired.is_empty() && theirs.dropped.is_empty());
        assert_eq!(theirs.not_sent, ["es/gh: no hook on `acme/else`"]);
    }
}
