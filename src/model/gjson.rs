//! gjson paths, as Argo Events v1.9.11 reads event data with them (`tidwall/gjson`, the version
//! its `go.mod` pins): Sensor `filters.data[].path`, `filters.exprs[].fields[].path`, a trigger
//! parameter's `dataKey`, and the current value an `append`/`prepend` parameter extends.
//!
//! Modelled (gjson's `Get`, `Result.Exists`, `Result.String`, `Result.Bool`, `Result.Float`):
//! * keys separated by `.`, with `\` escaping the next character; `*` and `?` in a key are
//!   wildcards matching the first key (in the object's order) that fits;
//! * a number indexes an array (and is a key in an object);
//! * `#` is an array's length, and `#.rest` the array of `rest` of each element that has it;
//! * queries `#(key op value)` (first match) and `#(key op value)#` (every match), with the ops
//!   `==`, `!=`, `<`, `<=`, `>`, `>=`, `%` (wildcard match) and `!%`; a string literal compares
//!   only with string elements and a number only with numbers (`queryMatches`); `#(key)` asks
//!   that `key` exist; the key is itself a path, so queries nest (`#(modified.#(=="x"))`).
//!
//! Not modelled, and an error rather than a silent miss: modifiers (`@this`), pipes (`|`),
//! multipaths (`[a,b]`, `{a,b}`), `~` boolean coercion in queries and the JSON Lines `..`
//! prefix.

use serde_json::{Value, json};

use super::subst::{gjson_string, go_json};

/// The value at `path`: `Ok(None)` when the path does not exist (gjson's `!Exists()`).
pub fn get(data: &Value, path: &str) -> Result<Option<Value>, String> {
    let parts = split(path)?;
    walk(data, &parts)
}

/// gjson's `Result.String()`: a string's text, `""` for null, numbers and booleans as JSON
/// writes them, arrays and objects as their raw (compact) JSON.
pub fn string(value: &Value) -> String {
    match value {
        Value::Array(_) | Value::Object(_) => go_json(value),
        other => gjson_string(other),
    }
}

/// gjson's `Result.Bool()`: `true`; a string `strconv.ParseBool` accepts as true; a non-zero
/// number. Everything else is false.
pub fn truth(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => parse_go_bool(s) == Some(true),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

/// gjson's `Result.Float()`: a number; `true` is 1; a string `strconv.ParseFloat` reads; else 0.
pub fn float(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::Bool(true) => 1.0,
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[derive(Debug, PartialEq)]
enum Part {
    Key(String),
    Count,
    Query { query: String, all: bool },
}

/// Splits a path at the dots outside queries and string literals.
fn split(path: &str) -> Result<Vec<Part>, String> {
    if path.starts_with(['@', '[', '{']) || path.starts_with("..") {
        return Err(format!("gjson path {path:?}: modifiers and multipaths are not modelled"));
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut raw = String::new();
    let (mut depth, mut quoted) = (0usize, false);
    let mut chars = path.chars();
    let mut push = |current: &mut String, raw: &mut String| -> Result<(), String> {
        let part = if raw == "#" {
            Part::Count
        } else if let Some(inner) = raw.strip_prefix("#(") {
            let (query, all) = match inner.strip_suffix(")#") {
                Some(q) => (q, true),
                None => (inner.strip_suffix(')').ok_or_else(|| format!("gjson path {path:?}: unclosed query"))?, false),
            };
            Part::Query { query: query.to_string(), all }
        } else {
            Part::Key(std::mem::take(current))
        };
        current.clear();
        raw.clear();
        parts.push(part);
        Ok(())
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next().unwrap_or('\\');
                raw.push(c);
                raw.push(next);
                current.push(next);
                continue;
            }
            '"' if depth > 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            '|' if depth == 0 => return Err(format!("gjson path {path:?}: pipes are not modelled")),
            '.' if depth == 0 => {
                push(&mut current, &mut raw)?;
                continue;
            }
            _ => {}
        }
        raw.push(c);
        current.push(c);
    }
    push(&mut current, &mut raw)?;
    Ok(parts)
}

fn walk(value: &Value, parts: &[Part]) -> Result<Option<Value>, String> {
    let Some((part, rest)) = parts.split_first() else { return Ok(Some(value.clone())) };
    match part {
        Part::Count => {
            let Some(items) = value.as_array() else { return Ok(None) };
            if rest.is_empty() {
                return Ok(Some(json!(items.len())));
            }
            let mut out = Vec::new();
            for item in items {
                if let Some(found) = walk(item, rest)? {
                    out.push(found);
                }
            }
            Ok(Some(Value::Array(out)))
        }
        Part::Query { query, all } => {
            let Some(items) = value.as_array() else { return Ok(None) };
            let mut matches = Vec::new();
            for item in items {
                if query_matches(item, query)? {
                    if !all {
                        return walk(item, rest);
                    }
                    if let Some(found) = walk(item, rest)? {
                        matches.push(found);
                    }
                }
            }
            Ok(if *all { Some(Value::Array(matches)) } else { None })
        }
        Part::Key(key) => {
            let child = match value {
                Value::Object(map) if key.contains(['*', '?']) => {
                    map.iter().find(|(k, _)| wildcard(key, k)).map(|(_, v)| v)
                }
                Value::Object(map) => map.get(key),
                Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match child {
                Some(child) => walk(child, rest),
                None => Ok(None),
            }
        }
    }
}

const OPS: [&str; 8] = ["!%", "==", "!=", "<=", ">=", "%", "<", ">"];

fn query_matches(item: &Value, query: &str) -> Result<bool, String> {
    // The operator outside nested queries and string literals.
    let (mut depth, mut quoted, mut found) = (0usize, false, None);
    let mut i = 0;
    while i < query.len() && found.is_none() {
        let rest = &query[i..];
        let c = rest.chars().next().unwrap_or(' ');
        match c {
            '\\' => i += 1,
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            _ if depth == 0 && !quoted => found = OPS.iter().find(|op| rest.starts_with(**op)).map(|op| (i, *op)),
            _ => {}
        }
        i += c.len_utf8();
    }
    let Some((at, op)) = found else {
        return Ok(get(item, query.trim())?.is_some());
    };
    let key = query[..at].trim();
    let literal = query[at + op.len()..].trim();
    let actual = if key.is_empty() { Some(item.clone()) } else { get(item, key)? };
    let Some(actual) = actual else { return Ok(false) };
    if literal.starts_with('~') {
        return Err(format!("gjson query {query:?}: `~` is not modelled"));
    }
    match (&actual, literal.strip_prefix('"').and_then(|l| l.strip_suffix('"'))) {
        (Value::String(text), Some(quoted)) => {
            let expected = unescape(quoted);
            Ok(match op {
                "==" => *text == expected,
                "!=" => *text != expected,
                "<" => *text < expected,
                "<=" => *text <= expected,
                ">" => *text > expected,
                ">=" => *text >= expected,
                "%" => wildcard(&expected, text),
                _ => !wildcard(&expected, text),
            })
        }
        (Value::Number(n), None) => {
            let (a, b) = (n.as_f64().unwrap_or(0.0), literal.parse::<f64>().unwrap_or(0.0));
            Ok(match op {
                "==" => a == b,
                "!=" => a != b,
                "<" => a < b,
                "<=" => a <= b,
                ">" => a > b,
                ">=" => a >= b,
                _ => false,
            })
        }
        (Value::Bool(b), None) => Ok(match op {
            "==" => literal == b.to_string(),
            "!=" => literal != b.to_string(),
            _ => false,
        }),
        _ => Ok(false),
    }
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
    }
    out
}

/// gjson's `match.Match`: `*` any run of characters, `?` one, `\` escapes.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some(('\\', rest)) if !rest.is_empty() => t.first() == Some(&rest[0]) && go(&rest[1..], &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(data: &Value, path: &str) -> Option<Value> {
        get(data, path).unwrap()
    }

    #[test]
    fn keys_indexes_counts_and_escapes() {
        let data = json!({"a": {"b.c": 1, "list": [10, 20], "X-GitHub-Event": "push"}, "n": null});
        assert_eq!(at(&data, "a.b\\.c"), Some(json!(1)));
        assert_eq!(at(&data, "a.list.1"), Some(json!(20)));
        assert_eq!(at(&data, "a.list.2"), None);
        assert_eq!(at(&data, "a.list.#"), Some(json!(2)));
        assert_eq!(at(&data, "a.X-GitHub-Event"), Some(json!("push")));
        assert_eq!(at(&data, "a.X-*"), Some(json!("push")), "a wildcard key");
        assert_eq!(at(&data, "n"), Some(Value::Null), "null exists");
        assert_eq!(at(&data, "a.missing"), None);
        assert_eq!(at(&data, "a.list.x"), None);
    }

    #[test]
    fn queries_take_the_first_match_or_all() {
        let labels = json!([{"name": "bug"}, {"name": "task-force"}, {"name": "task-7"}, {"id": 3}]);
        let data = json!({"labels": labels});
        assert_eq!(at(&data, "labels.#(name%\"task-*\").name"), Some(json!("task-force")), "first match only");
        assert_eq!(at(&data, "labels.#(name%\"task-*\")#.name"), Some(json!(["task-force", "task-7"])));
        assert_eq!(at(&data, "labels.#(name!%\"task-*\").name"), Some(json!("bug")));
        assert_eq!(
            at(&data, "labels.#.name"),
            Some(json!(["bug", "task-force", "task-7"])),
            "elements without it skipped"
        );
        assert_eq!(at(&data, "labels.#(id==3).id"), Some(json!(3)));
        assert_eq!(at(&data, "labels.#(id==\"3\")"), None, "a string literal never equals a number");
        assert_eq!(at(&data, "labels.#(id)").map(|v| v["id"].clone()), Some(json!(3)));
        assert_eq!(at(&data, "labels.#(name==\"nope\")"), None);
        assert_eq!(at(&data, "labels.#(name==\"nope\")#"), Some(json!([])), "`#` form always exists");
    }

    #[test]
    fn nested_queries_as_the_push_sensors_use_them() {
        let push = json!({"commits": [
            {"id": "a", "modified": ["x"], "added": []},
            {"id": "b", "modified": ["requirements.yaml"], "added": []},
        ]});
        assert_eq!(at(&push, "commits.#(modified.#(==\"requirements.yaml\")).id"), Some(json!("b")));
        assert_eq!(at(&push, "commits.#(added.#(==\"requirements.yaml\")).id"), None);
    }

    #[test]
    fn text_and_coercions_follow_gjson() {
        assert_eq!(string(&json!(["a", "b\"c"])), "[\"a\",\"b\\\"c\"]");
        assert_eq!(string(&json!({"k": "<x>"})), "{\"k\":\"\\u003cx\\u003e\"}", "Go's HTML-safe JSON");
        assert_eq!(string(&Value::Null), "");
        assert_eq!(string(&json!(1007)), "1007");
        assert!(truth(&json!("True")) && truth(&json!(2)) && !truth(&json!("yes")) && !truth(&Value::Null));
        assert_eq!(float(&json!("2.5")), 2.5);
        assert_eq!(float(&json!(true)), 1.0);
        assert_eq!(float(&json!({"a": 1})), 0.0);
    }

    #[test]
    fn outside_the_model_is_an_error_not_a_miss() {
        let data = json!({"a": [1]});
        assert!(get(&data, "a|@reverse").is_err());
        assert!(get(&data, "[a,b]").is_err());
        assert!(get(&data, "@this").is_err());
    }
}
