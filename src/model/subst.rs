//! A model of what happens to text after pressplay renders it:
//!
//! * how Argo Workflows v4.1.2 substitutes `{{...}}` tags, pass after pass, in the JSON text of a template
//!   (`util/template`, `ProcessArgs`, DAG/steps reference resolution, the pod pass over `ARGO_TEMPLATE`);
//! * how Argo Events v1.9.11 writes a Sensor trigger parameter (sjson) and evaluates a `dataTemplate`.
//!
//! The facts come from `../shared/research/argo-substitution.md` (sections 1, 2 and 4) and the Argo sources it
//! cites. The code is an independent implementation; `matches_the_python_model` below runs the Python model
//! next to that note on the same inputs and compares the results, when `../shared/` is there.
//!
//! Modelled exactly:
//! * fasttemplate's parsing: a tag runs from a `{{` to the first `}}` after it, with no escape and no nesting;
//!   a `{{` with no `}}` after it fails the pass; inserted text is not re-scanned within the same pass;
//! * simple tags: trimmed lookup, `strconv.Quote` escaping without the outer quotes (so `\a`, `\v`, `\xNN`
//!   and `\UXXXXXXXX` make the JSON invalid and fail the pass), the "nested tag" rule, unknown tags written
//!   back, strictness (`Replace(…, false)`, `ReplaceStrictAny` with `tasks`/`steps`, the
//!   `.outputs.artifacts.` exception);
//! * expression tags, as `expressionReplaceStrict` in v4 does them: `\u003c`/`\u003e`/`\u0026` undone, one
//!   JSON level unescaped, a parse error is a hard error even when unresolved tags are allowed; the
//!   identifiers (names and member paths, children first) are checked: a missing one that matches a strict
//!   prefix is an error ("X is missing"), any other missing one leaves the tag in place for a later pass, and
//!   with nothing missing a runtime error or a nil result is a hard error (the Python model leaves those in
//!   place); the result is escaped once with `encoding/json` rules (HTML-safe) for the JSON level it sits in;
//! * the passes for a Workflow created from a WorkflowTemplate: P0 (global arguments), P1/P1' (DAG or steps
//!   template), P2 (each task or step, strict for `tasks`/`steps`), P3/P3' (the leaf, argument values
//!   included), `setOwnerReference` (first YAML document only), P4 (the pod JSON with `ARGO_TEMPLATE`
//!   escaped twice but substituted once), then what kubectl and the kubelet do with the result;
//! * JSON is read with Go's rules (a repeated key keeps the last value, a lone surrogate escape becomes
//!   U+FFFD) and written with Go's struct field order for the types involved;
//! * Argo Events: sjson paths (`.` separated, `\` escapes, `:` forces a key, numeric parts index arrays or pad
//!   them with nulls, `-1` appends, missing parents are built), the exact bytes sjson writes, append and
//!   prepend, `ResolveParamValue`'s fallbacks from `dataTemplate` to `dataKey` to `value`.
//!
//! Simplified, on purpose:
//! * expr: only literals, `+`, dotted names, `a['b']`, and calls to `toJson`, `asInt`, `asFloat` and
//!   `sprig.{b64enc,b64dec,upper,lower,trim,trimPrefix,trimSuffix,replace,repeat,getHostByName}`. For other
//!   syntax that is balanced, identifiers are read off the tokens: if one is missing the tag stays, otherwise
//!   the pass returns an "outside the modelled subset" error (Argo would evaluate it there). Unbalanced syntax
//!   is a parse error. `getHostByName` returns `127.0.0.1` instead of making a DNS lookup in the controller.
//! * `b64dec` decodes invalid UTF-8 lossily (Go keeps the bytes; `encoding/json` then writes U+FFFD).
//! * Go's `unicode.IsPrint` is approximated: controls, non-ASCII spaces, line and paragraph separators, format
//!   characters, private use, noncharacters and the unassigned planes 4 to 14 are non-printable; other
//!   unassigned code points count as printable. Only astral characters change the outcome (`\U` is not JSON).
//! * Not modelled: validation (V), `podSpecPatch`, loops, `when`/`depends` (every task runs, in order), task
//!   outputs (a `{{tasks.*}}` tag fails P2), retries beyond dropping `pod.name`, artifacts, the 128 KiB offload.
//! * P0 substitutes only `entrypoint`, `arguments` and `workflowTemplateRef`; the real exec spec has more fields
//!   after `arguments`, which only matters for which `}}` an unclosed `{{` pairs with.
//! * YAML is read with serde-saphyr (YAML 1.2), not go-yaml v2 (YAML 1.1): NEL, DEL and C1 controls and
//!   `yes`/`no` scalars are read differently. `setOwnerReference` re-emits the object as JSON with sorted keys
//!   where Argo emits YAML with sorted keys.
//! * The Go template evaluator covers field chains, string and number literals, pipelines, parentheses and a
//!   few sprig functions (`b64enc`, `b64dec`, `regexFind`, `regexMatch`, `trimPrefix`, `trimSuffix`, `trim`,
//!   `lower`, `upper`, `default`, `toJson`, `quote`, `index`, `sha256sum`, `trunc`, `int64`), `range` and `if` blocks with
//!   `break` (no `else`, no variables). Regexes are a backtracking
//!   subset of RE2: literals, `.`, classes, `\d\w\s` (and negations), `^`, `$`, groups with `|`, `(?:`, and
//!   greedy or lazy `*`, `+`, `?`, `{n,m}`. It is leftmost-first like Go; matching is recursive, so keep the
//!   patterns that can match long runs to single-character repeats (those are iterative).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

/// Names and values for one substitution pass (`workflow.parameters.x` → text).
pub type Vars = BTreeMap<String, String>;

/// `{{workflow.name}}` in the modelled Workflow.
pub const WORKFLOW_NAME: &str = "wf-1";
/// `{{workflow.namespace}}` in the modelled Workflow.
pub const WORKFLOW_NAMESPACE: &str = "argo";
/// `{{pod.name}}` of every modelled pod.
pub const POD_NAME: &str = "wf-1-create-1234";
/// The uid written into owner references.
pub const WORKFLOW_UID: &str = "00000000-0000-4000-8000-000000000001";

// ------------------------------------------------------------------------------------------------------------
// Go's escaping

/// `strconv.Quote(s)` without its outer quotes: what a simple tag writes into the text.
pub fn go_quote_inner(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        let code = c as u32;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            _ if code < 0x20 || code == 0x7f => write!(out, "\\x{code:02x}").unwrap(),
            _ if go_is_print(c) => out.push(c),
            _ if code < 0x10000 => write!(out, "\\u{code:04x}").unwrap(),
            _ => write!(out, "\\U{code:08x}").unwrap(),
        }
    }
    out
}

/// An approximation of Go's `strconv.IsPrint` (see the module comment).
pub fn go_is_print(c: char) -> bool {
    const NOT_PRINTABLE: &[(u32, u32)] = &[
        // spaces other than U+0020, line and paragraph separators
        (0xa0, 0xa0),
        (0x1680, 0x1680),
        (0x2000, 0x200a),
        (0x2028, 0x2029),
        (0x202f, 0x202f),
        (0x205f, 0x205f),
        (0x3000, 0x3000),
        // format characters
        (0xad, 0xad),
        (0x600, 0x605),
        (0x61c, 0x61c),
        (0x6dd, 0x6dd),
        (0x70f, 0x70f),
        (0x890, 0x891),
        (0x8e2, 0x8e2),
        (0x180e, 0x180e),
        (0x200b, 0x200f),
        (0x202a, 0x202e),
        (0x2060, 0x2064),
        (0x2066, 0x206f),
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0x110bd, 0x110bd),
        (0x110cd, 0x110cd),
        (0x13430, 0x1343f),
        (0x1bca0, 0x1bca3),
        (0x1d173, 0x1d17a),
        (0xe0001, 0xe0001),
        (0xe0020, 0xe007f),
        // private use
        (0xe000, 0xf8ff),
        (0xf0000, 0x10ffff),
        // noncharacters and unassigned planes
        (0xfdd0, 0xfdef),
        (0x40000, 0xe0000),
        (0xe0002, 0xe001f),
        (0xe0080, 0xe00ff),
        (0xe01f0, 0xeffff),
    ];
    let code = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || code & 0xfffe == 0xfffe {
        return false;
    }
    !NOT_PRINTABLE.iter().any(|&(low, high)| (low..=high).contains(&code))
}

/// `encoding/json`'s encoding of a string, quotes included (HTML-safe, U+2028/U+2029 escaped, DEL raw).
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => write!(out, "\\u{:04x}", c as u32).unwrap(),
            _ if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How Go formats a float64 in JSON (`encoding/json`).
pub fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap();
        match exponent.strip_prefix('-') {
            Some(digits) => format!("{mantissa}e-{digits}"),
            None => format!("{mantissa}e+{exponent}"),
        }
    } else {
        format!("{f}")
    }
}

/// Go's `%v` (and text/template's printing) of a float64.
pub fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sign = if f < 0.0 { "-" } else { "" };
    let text = format!("{:e}", f.abs());
    let (mantissa, exponent) = text.split_once('e').unwrap();
    let exponent: i32 = exponent.parse().unwrap();
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..6).contains(&exponent) {
        let rest = if digits.len() > 1 { format!(".{}", &digits[1..]) } else { String::new() };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{}{rest}e{exp_sign}{:02}", &digits[..1], exponent.abs())
    } else if exponent >= 0 {
        let point = exponent as usize + 1;
        if digits.len() <= point {
            format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exponent - 1) as usize))
    }
}

/// `encoding/json`'s text for a value whose objects are structs: keys stay in the order they have.
pub fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_go_json(value, false, &mut out);
    out
}

/// `encoding/json`'s text for a value whose objects are Go maps: keys sorted.
pub fn go_json_sorted(value: &Value) -> String {
    let mut out = String::new();
    write_go_json(value, true, &mut out);
    out
}

pub fn write_go_json(value: &Value, sort_keys: bool, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => out.push_str(&go_json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(&go_json_string(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, sort_keys, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&go_json_string(key));
                out.push(':');
                write_go_json(item, sort_keys, out);
            }
            out.push('}');
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// Reading JSON with Go's rules

/// Parses JSON as Go's `encoding/json` does: strict grammar, a repeated key keeps its last value, and a lone
/// surrogate escape becomes U+FFFD (serde_json rejects those).
pub fn parse_json(text: &str) -> Result<Value, String> {
    let mut parser = JsonParser { text, bytes: text.as_bytes(), at: 0 };
    parser.skip_space();
    let value = parser.value(0)?;
    parser.skip_space();
    if parser.at != parser.bytes.len() {
        return Err(parser.error("invalid character after top-level value"));
    }
    Ok(value)
}

/// Reads a stream of JSON values, as kubectl does with a manifest that starts with `{`.
pub fn parse_json_stream(text: &str) -> Result<Vec<Value>, String> {
    let mut parser = JsonParser { text, bytes: text.as_bytes(), at: 0 };
    let mut values = Vec::new();
    loop {
        parser.skip_space();
        if parser.at == parser.bytes.len() {
            return Ok(values);
        }
        values.push(parser.value(0)?);
    }
}

pub struct JsonParser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} (offset {})", self.at)
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 10_000 {
            return Err(self.error("exceeded max depth"));
        }
        match self.bytes.get(self.at) {
            Some(b'{') => {
                self.at += 1;
                let mut map = Map::new();
                self.skip_space();
                if self.eat(b'}') {
                    return Ok(Value::Object(map));
                }
                loop {
                    self.skip_space();
                    if self.bytes.get(self.at) != Some(&b'"') {
                        return Err(self.error("looking for beginning of object key string"));
                    }
                    let key = self.string()?;
                    self.skip_space();
                    if !self.eat(b':') {
                        return Err(self.error("after object key"));
                    }
                    self.skip_space();
                    let item = self.value(depth + 1)?;
                    map.insert(key, item);
                    self.skip_space();
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b'}') {
                        return Ok(Value::Object(map));
                    }
                    return Err(self.error("after object key:value pair"));
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.eat(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    self.skip_space();
                    items.push(self.value(depth + 1)?);
                    self.skip_space();
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b']') {
                        return Ok(Value::Array(items));
                    }
                    return Err(self.error("after array element"));
                }
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("invalid character looking for beginning of value")),
            None => Err(self.error("unexpected end of JSON input")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        self.eat(b'-');
        if self.eat(b'0') {
            // a leading zero stands alone
        } else if self.digits() == 0 {
            return Err(self.error("invalid number"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.error("invalid number"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        serde_json::from_str(&self.text[start..self.at]).map_err(|e| self.error(&e.to_string()))
    }

    fn hex4(&mut self) -> Option<u32> {
        let hex = self.text.get(self.at..self.at + 4)?;
        let code = u32::from_str_radix(hex, 16).ok().filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?;
        self.at += 4;
        Some(code)
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(&b) = self.bytes.get(self.at) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            out.push_str(&self.text[start..self.at]);
            match self.bytes.get(self.at) {
                None => return Err(self.error("unexpected end of JSON input")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escape = self.bytes.get(self.at).copied();
                    self.at += 1;
                    match escape {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let code = self.hex4().ok_or_else(|| self.error("invalid \\u escape"))?;
                            out.push(self.finish_unicode_escape(code));
                        }
                        _ => return Err(self.error("invalid character in string escape code")),
                    }
                }
                Some(_) => return Err(self.error("invalid character in string literal")),
            }
        }
    }

    /// Combines a surrogate pair; anything else that is a surrogate becomes U+FFFD, as in Go.
    fn finish_unicode_escape(&mut self, code: u32) -> char {
        if (0xd800..0xdc00).contains(&code) && self.bytes[self.at..].starts_with(b"\\u") {
            let saved = self.at;
            self.at += 2;
            if let Some(low) = self.hex4().filter(|low| (0xdc00..0xe000).contains(low)) {
                return char::from_u32(0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00)).unwrap();
            }
            self.at = saved;
        }
        char::from_u32(code).unwrap_or('\u{fffd}')
    }
}

/// Undoes one level of JSON string escaping, as `json.Unmarshal` of `"` + text + `"` does.
pub fn json_unescape(text: &str) -> Result<String, String> {
    let quoted = format!("\"{text}\"");
    let mut parser = JsonParser { text: &quoted, bytes: quoted.as_bytes(), at: 0 };
    let out = parser.string()?;
    if parser.at != quoted.len() {
        return Err("invalid character after top-level value".into());
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------------------------
// One substitution pass

/// How a pass treats a tag it cannot resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// `Replace(…, true)`: written back unchanged.
    Lenient,
    /// `Replace(…, false)`: every unresolved tag is an error.
    All,
    /// `ReplaceStrictAny(…, prefixes)`: an error when the name starts with one of the prefixes.
    Prefixes(&'static [&'static str]),
}

/// The prefixes DAG and steps reference resolution (P2) insists on.
pub const TASKS_AND_STEPS: Strictness = Strictness::Prefixes(&["tasks", "steps"]);

impl Strictness {
    fn is_strict_for(self, name: &str) -> bool {
        match self {
            Strictness::Lenient => false,
            Strictness::All => true,
            Strictness::Prefixes(prefixes) => prefixes
                .iter()
                .any(|p| name.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))),
        }
    }
}

pub enum Piece<'a> {
    Text(&'a str),
    Tag(&'a str),
}

/// Cuts text the way fasttemplate does: each `{{` pairs with the first `}}` after it.
pub fn cut_tags(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!(
                "Cannot find end tag=\"}}}}\" in the template={:?} starting from {:?}",
                shorten(text),
                shorten(after)
            ));
        };
        pieces.push(Piece::Tag(&after[..end]));
        rest = &after[end + 2..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The tags a pass over `text` would see, without their braces (an expression keeps its leading `=`).
/// An error means the pass would fail on an unclosed `{{`.
pub fn find_tags(text: &str) -> Result<Vec<String>, String> {
    Ok(cut_tags(text)?
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Tag(tag) => Some(tag.to_string()),
            Piece::Text(_) => None,
        })
        .collect())
}

/// One fasttemplate pass over `text` with unresolved tags allowed (`template.Replace(…, true)`).
///
/// In JSON context the text must be valid JSON before and after the pass, as `Replace` checks. Simple tags
/// are always escaped with `strconv.Quote` (Argo does so even for plain strings such as a `configMapKeyRef`).
pub fn substitute(text: &str, vars: &Vars, json_context: bool) -> Result<String, String> {
    substitute_with(text, vars, json_context, Strictness::Lenient)
}

/// One fasttemplate pass with the given strictness.
pub fn substitute_with(text: &str, vars: &Vars, json_context: bool, strictness: Strictness) -> Result<String, String> {
    if json_context && parse_json(text).is_err() {
        return Err("cannot do template replacements with invalid JSON".into());
    }
    let mut out = String::with_capacity(text.len());
    let mut env = None;
    for piece in cut_tags(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Tag(tag) => match tag.strip_prefix('=') {
                Some(expression) => {
                    let env = env.get_or_insert_with(|| expression_env(vars));
                    out.push_str(&expression_tag(expression, env, strictness)?);
                }
                None => out.push_str(&simple_tag(tag, vars, strictness)?),
            },
        }
    }
    if json_context && parse_json(&out).is_err() {
        return Err("cannot finish template replacement because the result was invalid JSON".into());
    }
    Ok(out)
}

pub fn simple_tag(tag: &str, vars: &Vars, strictness: Strictness) -> Result<String, String> {
    let name = tag.trim();
    if let Some(value) = vars.get(name) {
        return Ok(go_quote_inner(value));
    }
    if let Some(index) = tag.rfind("{{")
        && index > 0
        && let Some(value) = vars.get(&tag[index + 2..])
    {
        return Ok(format!("{{{{{}{}", &tag[..index], go_quote_inner(value)));
    }
    let artifact_exception = strictness != Strictness::All && tag.contains(".outputs.artifacts.");
    if strictness.is_strict_for(name) && !artifact_exception {
        return Err(format!("failed to resolve {{{{{tag}}}}}"));
    }
    Ok(format!("{{{{{tag}}}}}"))
}

// ------------------------------------------------------------------------------------------------------------
// Expression tags (a subset of expr-lang)

#[derive(Clone, Debug)]
pub enum ExprValue {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Map(BTreeMap<String, ExprValue>),
    Func(&'static str),
}

pub enum ExprError {
    /// An identifier is not in the environment (carries the dotted name).
    Missing(String),
    Runtime(String),
}

pub enum ParseError {
    Syntax(String),
    /// Balanced syntax that this model does not evaluate.
    Unsupported(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Punct(char),
    /// An expr operator outside the modelled subset.
    Operator(String),
}

#[derive(Debug)]
pub enum Expr {
    Literal(ExprValue),
    Name(String),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Expr>),
    Add(Box<Expr>, Box<Expr>),
}

/// The sprig functions the model evaluates.
pub const SPRIG_FUNCTIONS: &[&str] = &[
    "sprig.b64enc",
    "sprig.b64dec",
    "sprig.upper",
    "sprig.lower",
    "sprig.trim",
    "sprig.trimPrefix",
    "sprig.trimSuffix",
    "sprig.replace",
    "sprig.repeat",
    "sprig.trunc",
    "sprig.getHostByName",
];

/// The environment `util/expr/env.GetFuncMap` builds: dotted names expanded into nested maps (a name that also
/// has children keeps only the children), plus the functions.
pub fn expression_env(vars: &Vars) -> BTreeMap<String, ExprValue> {
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort_by_key(|name| std::cmp::Reverse(name.matches('.').count()));
    let mut root = BTreeMap::new();
    for name in names {
        let parts: Vec<&str> = name.split('.').collect();
        let (last, parents) = parts.split_last().unwrap();
        let mut current = &mut root;
        for part in parents {
            let slot = current.entry(part.to_string()).or_insert_with(|| ExprValue::Map(BTreeMap::new()));
            if !matches!(slot, ExprValue::Map(_)) {
                *slot = ExprValue::Map(BTreeMap::new());
            }
            let ExprValue::Map(next) = slot else { unreachable!() };
            current = next;
        }
        if !matches!(current.get(*last), Some(ExprValue::Map(_))) {
            current.insert(last.to_string(), ExprValue::Str(vars[name].clone()));
        }
    }
    let sprig =
        SPRIG_FUNCTIONS.iter().map(|full| (full.trim_start_matches("sprig.").to_string(), ExprValue::Func(full)));
    root.insert("sprig".into(), ExprValue::Map(sprig.collect()));
    for function in ["toJson", "asInt", "asFloat", "jsonpath"] {
        root.insert(function.into(), ExprValue::Func(function));
    }
    root
}

/// `expressionReplaceStrict`: unescape one JSON level, parse (a failure is always an error), collect the
/// identifiers; a missing one that matches a strict prefix is an error, any other missing one leaves the tag
/// for a later pass; with nothing missing the expression must evaluate to a non-nil value.
pub fn expression_tag(raw: &str, env: &BTreeMap<String, ExprValue>, strictness: Strictness) -> Result<String, String> {
    let fixed = raw.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&");
    let source = json_unescape(&fixed).map_err(|e| format!("failed to unmarshall JSON expression: {e}"))?;
    let source = source.trim();
    let parsed = parse_expression(source);
    let identifiers = match &parsed {
        Ok(expr) => {
            let mut identifiers = Vec::new();
            collect_identifiers(expr, &mut identifiers);
            identifiers
        }
        Err(ParseError::Unsupported(_)) => identifiers_from_tokens(&lex_expression(source).unwrap_or_default()),
        Err(ParseError::Syntax(e)) => return Err(format!("failed to evaluate expression: {e}")),
    };
    let missing: Vec<&String> = identifiers.iter().filter(|id| !env_has(env, id)).collect();
    if let Some(id) = missing.iter().find(|id| strictness.is_strict_for(id)) {
        return Err(format!("failed to evaluate expression: {id} is missing"));
    }
    if !missing.is_empty() {
        // `expressionReplaceCore(…, allowUnresolved=true)`: in the modelled subset a missing name always
        // fails to compile or run, so the tag is written back for a later pass.
        return Ok(format!("{{{{={fixed}}}}}"));
    }
    let expr = parsed.map_err(|e| match e {
        ParseError::Syntax(e) | ParseError::Unsupported(e) => {
            format!("expression {source:?} is outside the modelled subset, and Argo would evaluate it here: {e}")
        }
    })?;
    let value = evaluate(&expr, env).map_err(|e| match e {
        ExprError::Missing(name) => format!("failed to evaluate expression: cannot fetch {name}"),
        ExprError::Runtime(e) => format!("failed to evaluate expression: {e}"),
    })?;
    if matches!(value, ExprValue::Nil) {
        return Err(format!("failed to evaluate expression {fixed:?}"));
    }
    let text = expr_to_json(&value).map_err(|e| format!("failed to marshal evaluated expression: {e}"))?;
    Ok(match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.to_string(),
        None => go_quote_inner(&text),
    })
}

/// expr's identifiers in `ast.Walk` order (children first): names, and dotted paths of member chains.
pub fn collect_identifiers(expr: &Expr, out: &mut Vec<String>) {
    fn push(id: String, out: &mut Vec<String>) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    match expr {
        Expr::Literal(_) => {}
        Expr::Name(name) => push(name.clone(), out),
        Expr::Member(base, _) => {
            collect_identifiers(base, out);
            if let Some(path) = dotted_name(expr) {
                push(path, out);
            }
        }
        Expr::Index(base, index) => {
            collect_identifiers(base, out);
            collect_identifiers(index, out);
            if let (Some(path), Expr::Literal(ExprValue::Str(key))) = (dotted_name(base), index.as_ref()) {
                push(format!("{path}.{key}"), out);
            }
        }
        Expr::Call(function, args) => {
            collect_identifiers(function, out);
            for arg in args {
                collect_identifiers(arg, out);
            }
        }
        Expr::Add(left, right) => {
            collect_identifiers(left, out);
            collect_identifiers(right, out);
        }
    }
}

/// An approximation for syntax outside the subset: each name and each `.name` chain after it.
pub fn identifiers_from_tokens(tokens: &[Token]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let after_dot = i > 0 && (tokens[i - 1] == Token::Punct('.') || tokens[i - 1] == Token::Operator("?.".into()));
        match &tokens[i] {
            Token::Ident(name)
                if !after_dot
                    && !["true", "false", "nil"].contains(&name.as_str())
                    && !WORD_OPERATORS.contains(&name.as_str()) =>
            {
                let mut path = name.clone();
                out.push(path.clone());
                while let (Some(Token::Punct('.')), Some(Token::Ident(next))) = (tokens.get(i + 1), tokens.get(i + 2)) {
                    path = format!("{path}.{next}");
                    out.push(path.clone());
                    i += 2;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.dedup();
    out
}

/// `hasVarInEnv` over the expanded environment.
pub fn env_has(env: &BTreeMap<String, ExprValue>, id: &str) -> bool {
    let mut current = env;
    let parts: Vec<&str> = id.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        match current.get(*part) {
            Some(_) if i + 1 == parts.len() => return true,
            Some(ExprValue::Map(next)) => current = next,
            _ => return false,
        }
    }
    false
}

pub fn expr_to_json(value: &ExprValue) -> Result<String, String> {
    Ok(match value {
        ExprValue::Nil => "null".into(),
        ExprValue::Bool(b) => b.to_string(),
        ExprValue::Int(i) => i.to_string(),
        ExprValue::Float(f) => go_json_float(*f),
        ExprValue::Str(s) => go_json_string(s),
        ExprValue::Map(map) => {
            let mut out = String::from("{");
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write!(out, "{}:{}", go_json_string(key), expr_to_json(item)?).unwrap();
            }
            out.push('}');
            out
        }
        ExprValue::Func(name) => return Err(format!("json: unsupported type: func ({name})")),
    })
}

pub const WORD_OPERATORS: &[&str] = &["in", "not", "and", "or", "matches", "contains", "startsWith", "endsWith", "let"];

pub fn lex_expression(source: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '_') {
                i += 1;
            }
            let mut float = false;
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                float = true;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                float = true;
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            tokens.push(if float {
                Token::Float(text.parse().map_err(|_| format!("invalid float literal {text}"))?)
            } else {
                Token::Int(text.parse().map_err(|_| format!("invalid integer literal {text}"))?)
            });
        } else if c == '"' || c == '\'' {
            let (text, next) = lex_quoted(&chars, i)?;
            tokens.push(Token::Str(text));
            i = next;
        } else if c == '`' {
            let end = chars[i + 1..].iter().position(|x| *x == '`').ok_or("literal not terminated")?;
            tokens.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else {
            let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
            let operator = ["...", "**", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", ".."]
                .into_iter()
                .find(|op| rest.starts_with(op));
            if let Some(op) = operator {
                tokens.push(Token::Operator(op.into()));
                i += op.chars().count();
            } else if ".(),+[]".contains(c) {
                tokens.push(Token::Punct(c));
                i += 1;
            } else if "-*/%<>!?:|{}#^~".contains(c) {
                tokens.push(Token::Operator(c.to_string()));
                i += 1;
            } else {
                return Err(format!("unrecognized character: U+{:04X} '{c}'", c as u32));
            }
        }
    }
    Ok(tokens)
}

/// A quoted expr string literal with Go-style escapes; returns the text and the index after it.
pub fn lex_quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    let hex = |from: usize, len: usize| -> Result<u32, String> {
        let digits: String = chars.get(from..from + len).ok_or("invalid escape")?.iter().collect();
        u32::from_str_radix(&digits, 16).map_err(|_| "invalid char escape".to_string())
    };
    loop {
        let Some(&c) = chars.get(i) else { return Err("literal not terminated".into()) };
        i += 1;
        if c == quote {
            return Ok((out, i));
        }
        if c == '\n' {
            return Err("literal not terminated".into());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&escape) = chars.get(i) else { return Err("literal not terminated".into()) };
        i += 1;
        match escape {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' | '\'' | '"' => out.push(escape),
            'x' | 'u' | 'U' => {
                let len = match escape {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let code = hex(i, len)?;
                i += len;
                out.push(char::from_u32(code).ok_or("invalid char escape")?);
            }
            '0'..='7' => {
                let digits: String = chars.get(i - 1..i + 2).ok_or("invalid char escape")?.iter().collect();
                let code = u32::from_str_radix(&digits, 8).map_err(|_| "invalid char escape".to_string())?;
                i += 2;
                out.push(char::from_u32(code).ok_or("invalid char escape")?);
            }
            _ => return Err("invalid char escape".into()),
        }
    }
}

pub fn parse_expression(source: &str) -> Result<Expr, ParseError> {
    let tokens = lex_expression(source).map_err(ParseError::Syntax)?;
    let mut depth = 0i64;
    let mut balanced = true;
    for token in &tokens {
        match token {
            Token::Punct('(' | '[') => depth += 1,
            Token::Punct(')' | ']') => depth -= 1,
            Token::Operator(o) if o == "{" => depth += 1,
            Token::Operator(o) if o == "}" => depth -= 1,
            _ => {}
        }
        balanced &= depth >= 0;
    }
    balanced &= depth == 0;
    let mut parser = ExprParser { tokens: &tokens, at: 0 };
    let result = parser.expression().and_then(|expr| match parser.tokens.get(parser.at) {
        None => Ok(expr),
        Some(token) => Err(format!("unexpected token {token:?}")),
    });
    result.map_err(|message| {
        let stuck_on = tokens.get(parser.at);
        let unsupported = matches!(stuck_on, Some(Token::Operator(_)))
            || matches!(stuck_on, Some(Token::Ident(word)) if WORD_OPERATORS.contains(&word.as_str()))
            || matches!(stuck_on, Some(Token::Punct('[')));
        if balanced && unsupported { ParseError::Unsupported(message) } else { ParseError::Syntax(message) }
    })
}

pub struct ExprParser<'a> {
    tokens: &'a [Token],
    at: usize,
}

impl ExprParser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.peek() {
            Some(Token::Punct(p)) if *p == c => {
                self.at += 1;
                Ok(())
            }
            other => Err(format!("expected {c:?}, found {other:?}")),
        }
    }

    fn expression(&mut self) -> Result<Expr, String> {
        let mut left = self.postfix()?;
        while let Some(Token::Punct('+')) = self.peek() {
            self.at += 1;
            let right = self.postfix()?;
            left = Expr::Add(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        loop {
            match self.peek() {
                Some(Token::Punct('.')) => {
                    self.at += 1;
                    match self.peek() {
                        Some(Token::Ident(name)) => {
                            expr = Expr::Member(Box::new(expr), name.clone());
                            self.at += 1;
                        }
                        other => return Err(format!("expected a name after '.', found {other:?}")),
                    }
                }
                Some(Token::Punct('[')) => {
                    self.at += 1;
                    let index = self.expression()?;
                    self.expect(']')?;
                    expr = Expr::Index(Box::new(expr), Box::new(index));
                }
                Some(Token::Punct('(')) => {
                    self.at += 1;
                    let mut args = Vec::new();
                    if let Some(Token::Punct(')')) = self.peek() {
                        self.at += 1;
                    } else {
                        loop {
                            args.push(self.expression()?);
                            match self.peek() {
                                Some(Token::Punct(',')) => self.at += 1,
                                Some(Token::Punct(')')) => {
                                    self.at += 1;
                                    break;
                                }
                                other => return Err(format!("expected ',' or ')', found {other:?}")),
                            }
                        }
                    }
                    expr = Expr::Call(Box::new(expr), args);
                }
                _ => return Ok(expr),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self.peek().cloned().ok_or("unexpected end of expression")?;
        let expr = match token {
            Token::Ident(name) => match name.as_str() {
                "true" => Expr::Literal(ExprValue::Bool(true)),
                "false" => Expr::Literal(ExprValue::Bool(false)),
                "nil" => Expr::Literal(ExprValue::Nil),
                _ if WORD_OPERATORS.contains(&name.as_str()) => return Err(format!("unexpected token {name}")),
                _ => Expr::Name(name),
            },
            Token::Str(s) => Expr::Literal(ExprValue::Str(s)),
            Token::Int(i) => Expr::Literal(ExprValue::Int(i)),
            Token::Float(f) => Expr::Literal(ExprValue::Float(f)),
            Token::Punct('(') => {
                self.at += 1;
                let inner = self.expression()?;
                self.expect(')')?;
                return Ok(inner);
            }
            other => return Err(format!("unexpected token {other:?}")),
        };
        self.at += 1;
        Ok(expr)
    }
}

/// The dotted name of a chain of names, if the expression is one.
pub fn dotted_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Name(name) => Some(name.clone()),
        Expr::Member(base, field) => Some(format!("{}.{field}", dotted_name(base)?)),
        _ => None,
    }
}

pub fn evaluate(expr: &Expr, env: &BTreeMap<String, ExprValue>) -> Result<ExprValue, ExprError> {
    if let Some(name) = dotted_name(expr) {
        let mut current = env;
        let parts: Vec<&str> = name.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            match current.get(*part) {
                Some(ExprValue::Map(next)) if i + 1 < parts.len() => current = next,
                Some(value) if i + 1 == parts.len() => return Ok(value.clone()),
                _ => return Err(ExprError::Missing(name)),
            }
        }
    }
    match expr {
        Expr::Literal(value) => Ok(value.clone()),
        Expr::Name(_) => unreachable!("names are resolved above"),
        Expr::Member(base, field) => match evaluate(base, env)? {
            ExprValue::Map(map) => map.get(field).cloned().ok_or(ExprError::Missing(field.clone())),
            other => Err(ExprError::Runtime(format!("cannot fetch {field} from {other:?}"))),
        },
        Expr::Index(base, index) => match (evaluate(base, env)?, evaluate(index, env)?) {
            (ExprValue::Map(map), ExprValue::Str(key)) => map.get(&key).cloned().ok_or_else(|| {
                ExprError::Missing(dotted_name(base).map_or(key.clone(), |base| format!("{base}.{key}")))
            }),
            (base, index) => Err(ExprError::Runtime(format!("cannot index {base:?} with {index:?}"))),
        },
        Expr::Call(function, args) => {
            let function = evaluate(function, env)?;
            let args = args.iter().map(|arg| evaluate(arg, env)).collect::<Result<Vec<_>, _>>()?;
            match function {
                ExprValue::Func(name) => call_function(name, &args).map_err(ExprError::Runtime),
                other => Err(ExprError::Runtime(format!("{other:?} is not a function"))),
            }
        }
        Expr::Add(left, right) => match (evaluate(left, env)?, evaluate(right, env)?) {
            (ExprValue::Str(a), ExprValue::Str(b)) => Ok(ExprValue::Str(a + &b)),
            (ExprValue::Int(a), ExprValue::Int(b)) => {
                a.checked_add(b).map(ExprValue::Int).ok_or(ExprError::Runtime("integer overflow".into()))
            }
            (ExprValue::Int(a), ExprValue::Float(b)) => Ok(ExprValue::Float(a as f64 + b)),
            (ExprValue::Float(a), ExprValue::Int(b)) => Ok(ExprValue::Float(a + b as f64)),
            (ExprValue::Float(a), ExprValue::Float(b)) => Ok(ExprValue::Float(a + b)),
            (a, b) => Err(ExprError::Runtime(format!("invalid operation: {a:?} + {b:?}"))),
        },
    }
}

/// Go's `base64.StdEncoding.DecodeString` (which skips `\r` and `\n`); sprig's `b64dec` returns the error text.
pub fn sprig_b64dec(text: &str) -> String {
    let cleaned: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    match BASE64.decode(cleaned.as_bytes()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(base64::DecodeError::InvalidByte(offset, _) | base64::DecodeError::InvalidLastSymbol(offset, _)) => {
            format!("illegal base64 data at input byte {offset}")
        }
        Err(_) => format!("illegal base64 data at input byte {}", cleaned.len()),
    }
}

pub fn call_function(name: &str, args: &[ExprValue]) -> Result<ExprValue, String> {
    use ExprValue::{Int, Str};
    let text = |s: &str| Ok(Str(s.to_string()));
    match (name, args) {
        ("toJson", [value]) => expr_to_json(value).map(Str),
        ("asInt", [Str(s)]) => s.trim().parse().map(Int).map_err(|e| format!("asInt: {e}")),
        ("asFloat", [Str(s)]) => s.trim().parse().map(ExprValue::Float).map_err(|e| format!("asFloat: {e}")),
        ("sprig.b64enc", [Str(s)]) => text(&BASE64.encode(s.as_bytes())),
        ("sprig.b64dec", [Str(s)]) => text(&sprig_b64dec(s)),
        ("sprig.upper", [Str(s)]) => text(&s.to_uppercase()),
        ("sprig.lower", [Str(s)]) => text(&s.to_lowercase()),
        ("sprig.trim", [Str(s)]) => text(s.trim()),
        ("sprig.trimPrefix", [Str(prefix), Str(s)]) => text(s.strip_prefix(prefix.as_str()).unwrap_or(s)),
        ("sprig.trimSuffix", [Str(suffix), Str(s)]) => text(s.strip_suffix(suffix.as_str()).unwrap_or(s)),
        ("sprig.replace", [Str(old), Str(new), Str(s)]) => text(&s.replace(old.as_str(), new)),
        ("sprig.repeat", [Int(count), Str(s)]) => text(&s.repeat((*count).max(0) as usize)),
        // sprig's `trunc`: the first n characters (a negative n keeps the last -n).
        ("sprig.trunc", [Int(n), Str(s)]) => {
            let chars: Vec<char> = s.chars().collect();
            let keep = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX).min(chars.len());
            let kept: String =
                if *n >= 0 { chars[..keep].iter().collect() } else { chars[chars.len() - keep..].iter().collect() };
            text(&kept)
        }
        ("sprig.getHostByName", [Str(_)]) => text("127.0.0.1"),
        _ => Err(format!("{name} is not modelled for arguments {args:?}")),
    }
}

// ------------------------------------------------------------------------------------------------------------
// Go field order for the Argo types the passes marshal

pub const TEMPLATE_FIELDS: &[&str] = &[
    "name",
    "inputs",
    "outputs",
    "nodeSelector",
    "affinity",
    "metadata",
    "daemon",
    "steps",
    "container",
    "containerSet",
    "script",
    "resource",
    "dag",
    "suspend",
    "volumes",
    "initContainers",
    "sidecars",
    "archiveLocation",
    "activeDeadlineSeconds",
    "retryStrategy",
    "parallelism",
    "failFast",
    "tolerations",
    "schedulerName",
    "priorityClassName",
    "serviceAccountName",
    "automountServiceAccountToken",
    "executor",
    "hostAliases",
    "securityContext",
    "podSpecPatch",
    "metrics",
    "synchronization",
    "memoize",
    "timeout",
    "data",
    "http",
    "plugin",
];
pub const DAG_TASK_FIELDS: &[&str] = &[
    "name",
    "template",
    "arguments",
    "templateRef",
    "dependencies",
    "withItems",
    "withParam",
    "withSequence",
    "when",
    "continueOn",
    "onExit",
    "depends",
    "hooks",
    "inline",
];
pub const STEP_FIELDS: &[&str] = &[
    "name",
    "template",
    "inline",
    "arguments",
    "templateRef",
    "withItems",
    "withParam",
    "withSequence",
    "when",
    "continueOn",
    "onExit",
    "hooks",
];
pub const PARAMETER_FIELDS: &[&str] = &["name", "default", "value", "valueFrom", "globalName", "enum", "description"];
pub const IO_FIELDS: &[&str] = &["parameters", "artifacts", "result", "exitCode"];
pub const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
    "source",
];
pub const ENV_FIELDS: &[&str] = &["name", "value", "valueFrom"];
pub const RESOURCE_FIELDS: &[&str] = &[
    "action",
    "mergeStrategy",
    "manifest",
    "manifestFrom",
    "setOwnerReference",
    "successCondition",
    "failureCondition",
    "flags",
];
pub const DAG_FIELDS: &[&str] = &["target", "tasks", "failFast"];

/// The object's known fields in Go's order, then the others in their own order (Go would drop those).
pub fn reorder(value: &Value, fields: &[&str]) -> Map<String, Value> {
    let Some(map) = value.as_object() else { return Map::new() };
    let mut out = Map::new();
    for field in fields {
        if let Some(item) = map.get(*field) {
            out.insert(field.to_string(), item.clone());
        }
    }
    for (key, item) in map {
        if !fields.contains(&key.as_str()) {
            out.insert(key.clone(), item.clone());
        }
    }
    out
}

/// A Go map field: keys sorted.
pub fn sorted_map(value: &Value) -> Value {
    match value.as_object() {
        Some(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        None => value.clone(),
    }
}

/// Argo's `AnyString`: numbers and booleans are written as strings.
pub fn any_string(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other.clone(),
    }
}

pub fn order_parameter(value: &Value) -> Value {
    let mut map = reorder(value, PARAMETER_FIELDS);
    for field in ["default", "value"] {
        if let Some(item) = map.get_mut(field) {
            *item = any_string(item);
        }
    }
    Value::Object(map)
}

/// `Inputs`, `Outputs` and `Arguments`.
pub fn order_io(value: &Value) -> Value {
    let mut map = reorder(value, IO_FIELDS);
    if let Some(Value::Array(params)) = map.get_mut("parameters") {
        for param in params {
            *param = order_parameter(param);
        }
    }
    Value::Object(map)
}

pub fn order_container(value: &Value, name: &str) -> Value {
    let mut map = reorder(value, CONTAINER_FIELDS);
    map.entry("name").or_insert_with(|| Value::String(name.into()));
    map.entry("resources").or_insert_with(|| json!({}));
    let mut map = reorder(&Value::Object(map), CONTAINER_FIELDS);
    if let Some(Value::Array(env)) = map.get_mut("env") {
        for var in env {
            *var = Value::Object(reorder(var, ENV_FIELDS));
        }
    }
    Value::Object(map)
}

pub fn order_task(value: &Value, fields: &[&str]) -> Value {
    let mut map = reorder(value, fields);
    let arguments = map.get("arguments").map_or_else(|| json!({}), order_io);
    map.insert("arguments".into(), arguments);
    Value::Object(reorder(&Value::Object(map), fields))
}

/// A template as `json.Marshal` writes it: Go field order, with the struct fields that are never omitted
/// (`inputs`, `outputs`, `metadata`, a container's `name` and `resources`, a task's `arguments`).
pub fn order_template(template: &Value) -> Value {
    let mut map = reorder(template, TEMPLATE_FIELDS);
    for field in ["inputs", "outputs"] {
        let io = map.get(field).map_or_else(|| json!({}), order_io);
        map.insert(field.into(), io);
    }
    let metadata = map.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut ordered_metadata = Map::new();
    for field in ["annotations", "labels"] {
        if let Some(item) = metadata.get(field) {
            ordered_metadata.insert(field.into(), sorted_map(item));
        }
    }
    map.insert("metadata".into(), Value::Object(ordered_metadata));
    for field in ["container", "script"] {
        if let Some(container) = map.get(field) {
            let ordered = order_container(container, "");
            map.insert(field.into(), ordered);
        }
    }
    if let Some(resource) = map.get("resource") {
        let ordered = Value::Object(reorder(resource, RESOURCE_FIELDS));
        map.insert("resource".into(), ordered);
    }
    if let Some(dag) = map.get("dag") {
        let mut dag = reorder(dag, DAG_FIELDS);
        if let Some(Value::Array(tasks)) = dag.get_mut("tasks") {
            for task in tasks {
                *task = order_task(task, DAG_TASK_FIELDS);
            }
        }
        map.insert("dag".into(), Value::Object(dag));
    }
    if let Some(Value::Array(groups)) = map.get_mut("steps") {
        for group in groups {
            if let Value::Array(steps) = group {
                for step in steps {
                    *step = order_task(step, STEP_FIELDS);
                }
            }
        }
    }
    Value::Object(reorder(&Value::Object(map), TEMPLATE_FIELDS))
}

// ------------------------------------------------------------------------------------------------------------
// The passes

/// One pod a Workflow ran, after the last substitution pass.
#[derive(Clone, Debug)]
pub struct Executed {
    /// The template's name.
    pub name: String,
    /// The template as the executor decodes it from `ARGO_TEMPLATE`; `resource.manifest` is what kubectl gets.
    pub template: Value,
    /// The pod's main container after the pod pass (its `env` before the kubelet expands it).
    pub main: Value,
}

impl Executed {
    /// The manifest the executor writes to `/tmp/manifest.yaml`, for a `resource` template.
    pub fn manifest(&self) -> Option<&str> {
        self.template.pointer("/resource/manifest")?.as_str()
    }

    /// The objects kubectl creates from the manifest.
    pub fn objects(&self) -> Result<Vec<Value>, String> {
        kubectl_objects(self.manifest().ok_or("not a resource template")?)
    }

    /// The main container's environment as the process sees it.
    pub fn env(&self) -> BTreeMap<String, String> {
        kubelet_env(&self.main["env"])
    }
}

/// The global variables of the modelled Workflow, given its parameters in order.
pub fn workflow_globals(params: &[(String, String)]) -> Vars {
    let mut vars = Vars::new();
    vars.insert("workflow.name".into(), WORKFLOW_NAME.into());
    vars.insert("workflow.namespace".into(), WORKFLOW_NAMESPACE.into());
    for (name, value) in params {
        vars.insert(format!("workflow.parameters.{name}"), value.clone());
    }
    let all = Value::Array(params.iter().map(|(name, value)| json!({"name": name, "value": value})).collect());
    vars.insert("workflow.parameters".into(), go_json(&all));
    vars.insert("workflow.parameters.json".into(), go_json(&all));
    vars
}

/// Runs a Workflow created with `workflowTemplateRef` to `workflow_template` and `args` as its
/// `spec.arguments.parameters`, from the entrypoint down to every pod.
pub fn run(workflow_template: &Value, args: &[(&str, &str)]) -> Result<Vec<Executed>, String> {
    run_with_library(workflow_template, &[], args)
}

/// As [`run`], resolving `templateRef`s against `library` (WorkflowTemplates, by `metadata.name`).
pub fn run_with_library(
    workflow_template: &Value,
    library: &[Value],
    args: &[(&str, &str)],
) -> Result<Vec<Executed>, String> {
    let spec = &workflow_template["spec"];
    let mut params: Vec<(String, String)> = Vec::new();
    for param in spec.pointer("/arguments/parameters").and_then(Value::as_array).into_iter().flatten() {
        let name = param["name"].as_str().ok_or("a workflow parameter has no name")?;
        let given = args.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
        let own = any_string(if param.get("value").is_some() { &param["value"] } else { &param["default"] });
        let value = given.or_else(|| own.as_str().map(str::to_string));
        params.push((name.to_string(), value.ok_or_else(|| format!("spec.arguments.{name}.value is required"))?));
    }
    for (name, value) in args {
        if !params.iter().any(|(n, _)| n == name) {
            params.push((name.to_string(), value.to_string()));
        }
    }
    let globals = workflow_globals(&params);
    let entrypoint = spec["entrypoint"].as_str().ok_or("the WorkflowTemplate has no entrypoint")?;

    // P0: the exec spec without its templates, arguments included, with the raw values in the map.
    let plist: Vec<Value> = params.iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
    let template_name = workflow_template.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("wt");
    let exec_spec = json!({
        "entrypoint": entrypoint,
        "arguments": {"parameters": plist},
        "workflowTemplateRef": {"name": template_name},
    });
    let exec_spec = parse_json(&substitute(&go_json(&exec_spec), &globals, true)?)?;
    let entry_args = argument_values(&exec_spec["arguments"]);

    let mut runner = Runner { library, globals, executed: Vec::new(), depth: 0 };
    runner.execute(workflow_template, entrypoint, &entry_args)?;
    Ok(runner.executed)
}

/// Runs every pass for `template` used from the only task of a WorkflowTemplate's entrypoint DAG. The task
/// passes `task_args` (typically `{{workflow.parameters.x}}`), the Workflow has `workflow_args`, and the result
/// is the template as the executor decodes it from `ARGO_TEMPLATE`.
pub fn run_dag_task(
    template: &Value,
    task_args: &[(&str, &str)],
    workflow_args: &[(&str, &str)],
) -> Result<Value, String> {
    let name = template["name"].as_str().ok_or("the template has no name")?;
    let to_params = |pairs: &[(&str, &str)]| -> Vec<Value> {
        pairs.iter().map(|(name, value)| json!({"name": name, "value": value})).collect()
    };
    let dag_name = if name == "main" { "main-dag" } else { "main" };
    let task = json!({"name": name, "template": name, "arguments": {"parameters": to_params(task_args)}});
    let workflow_template = json!({
        "metadata": {"name": "wt"},
        "spec": {
            "entrypoint": dag_name,
            "arguments": {"parameters": to_params(workflow_args)},
            "templates": [{"name": dag_name, "dag": {"tasks": [task]}}, template],
        },
    });
    let mut executed = run(&workflow_template, &[])?;
    match executed.len() {
        1 => Ok(executed.remove(0).template),
        n => Err(format!("expected one pod, the template ran {n}")),
    }
}

pub fn argument_values(arguments: &Value) -> Vars {
    let mut values = Vars::new();
    for param in arguments["parameters"].as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (param["name"].as_str(), any_string(&param["value"]).as_str()) {
            values.insert(name.to_string(), value.to_string());
        }
    }
    values
}

pub struct Runner<'a> {
    library: &'a [Value],
    globals: Vars,
    executed: Vec<Executed>,
    depth: usize,
}

impl<'a> Runner<'a> {
    fn find_template(owner: &'a Value, name: &str) -> Result<&'a Value, String> {
        owner["spec"]["templates"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["name"] == name)
            .ok_or_else(|| format!("template {name} not found"))
    }

    fn execute(&mut self, owner: &'a Value, name: &str, args: &Vars) -> Result<(), String> {
        self.depth += 1;
        if self.depth > 50 {
            return Err("templates nest more than 50 deep".into());
        }
        let template = Self::find_template(owner, name)?;
        let is_pod = ["container", "script", "resource"].iter().any(|k| template.get(*k).is_some());
        let mut locals = Vars::new();
        if is_pod && template.get("retryStrategy").is_none() {
            locals.insert("pod.name".into(), POD_NAME.into());
        }
        // P1/P1' for a DAG or steps template, P3/P3' for a leaf.
        let mut template = process_args(template, args, &self.globals, &locals)?;
        if is_pod {
            if template.pointer("/resource/setOwnerReference") == Some(&Value::Bool(true)) {
                apply_owner_reference(&mut template)?;
            }
            let (decoded, main) = pod_pass(&template, &self.globals)?;
            self.executed.push(Executed { name: name.to_string(), template: decoded, main });
        } else {
            let mut tasks = Vec::new();
            if let Some(dag_tasks) = template.pointer("/dag/tasks").and_then(Value::as_array) {
                tasks.extend(dag_tasks.iter().map(|t| (t.clone(), DAG_TASK_FIELDS)));
            }
            for group in template["steps"].as_array().into_iter().flatten() {
                tasks.extend(group.as_array().into_iter().flatten().map(|s| (s.clone(), STEP_FIELDS)));
            }
            for (task, fields) in tasks {
                // P2: reference resolution, strict for `tasks.` and `steps.`.
                let text = go_json(&order_task(&task, fields));
                let task = parse_json(&substitute_with(&text, &self.globals, true, TASKS_AND_STEPS)?)?;
                let task_args = argument_values(&task["arguments"]);
                let (target_owner, target) = match (task["template"].as_str(), task.get("templateRef")) {
                    (Some(target), _) => (owner, target.to_string()),
                    (None, Some(reference)) => {
                        let wanted = reference["name"].as_str().unwrap_or_default();
                        let found = std::iter::once(owner)
                            .chain(self.library.iter())
                            .find(|wt| wt.pointer("/metadata/name").and_then(Value::as_str) == Some(wanted))
                            .ok_or_else(|| format!("WorkflowTemplate {wanted} not found"))?;
                        (found, reference["template"].as_str().unwrap_or_default().to_string())
                    }
                    (None, None) => {
                        return Err(format!("task {} has no template (inline is not modelled)", task["name"]));
                    }
                };
                self.execute(target_owner, &target, &task_args)?;
            }
        }
        self.depth -= 1;
        Ok(())
    }
}

/// `common.ProcessArgs` → `SubstituteParams`: arguments become input values, then two passes over the whole
/// template text, the second with the inputs (after the first pass) in the map.
pub fn process_args(template: &Value, args: &Vars, globals: &Vars, locals: &Vars) -> Result<Value, String> {
    let mut template = order_template(template);
    if let Some(Value::Array(params)) = template.pointer_mut("/inputs/parameters") {
        for param in params {
            let name = param["name"].as_str().unwrap_or_default().to_string();
            let own = if param.get("value").is_some() { param["value"].clone() } else { param["default"].clone() };
            let value = args.get(&name).cloned().or_else(|| own.as_str().map(str::to_string));
            let value = value.ok_or_else(|| format!("inputs.parameters.{name} was not supplied"))?;
            param["value"] = Value::String(value);
            *param = order_parameter(param);
        }
    }
    let mut vars = globals.clone();
    vars.extend(locals.iter().map(|(k, v)| (k.clone(), v.clone())));
    let first = substitute(&go_json(&template), &vars, true)?;
    let after_first = parse_json(&first)?;
    let params = after_first.pointer("/inputs/parameters").cloned().unwrap_or_else(|| json!([]));
    for param in params.as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (param["name"].as_str(), param["value"].as_str()) {
            vars.insert(format!("inputs.parameters.{name}"), value.to_string());
        }
    }
    vars.insert("inputs.parameters".into(), go_json(&params));
    parse_json(&substitute(&first, &vars, true)?)
}

/// `executeResource` with `setOwnerReference: true`: the manifest is read as one YAML object (only the first
/// document survives), given an owner reference and written back (here as JSON with sorted keys).
pub fn apply_owner_reference(template: &mut Value) -> Result<(), String> {
    let manifest = template.pointer("/resource/manifest").and_then(Value::as_str).unwrap_or_default();
    let mut object: Value = serde_saphyr::from_str(first_yaml_document(manifest))
        .map_err(|e| format!("setOwnerReference: the manifest is not YAML: {e}"))?;
    let Some(map) = object.as_object_mut() else {
        return Err("setOwnerReference: the manifest is not an object".into());
    };
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    let owners = metadata.as_object_mut().unwrap().entry("ownerReferences").or_insert_with(|| json!([]));
    if !owners.is_array() {
        *owners = json!([]);
    }
    owners.as_array_mut().unwrap().push(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "blockOwnerDeletion": true,
        "controller": true,
        "kind": "Workflow",
        "name": WORKFLOW_NAME,
        "uid": WORKFLOW_UID,
    }));
    template["resource"]["manifest"] = Value::String(go_json_sorted(&object));
    Ok(())
}

/// The text of the first YAML document (a leading `---` is skipped; the next `---` or `...` ends it).
pub fn first_yaml_document(text: &str) -> &str {
    let mut start = 0;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_marker =
            |m: &str| bare == m || bare.starts_with(&format!("{m} ")) || bare.starts_with(&format!("{m}\t"));
        if is_marker("---") || is_marker("...") {
            if i == 0 || text[start..offset].trim().is_empty() {
                start = offset + line.len();
            } else {
                return &text[start..offset];
            }
        }
        offset += line.len();
    }
    &text[start..]
}

/// `workflowpod.go`: the template without `inputs.parameters` goes into `ARGO_TEMPLATE` (JSON inside a JSON
/// string), and the whole pod JSON goes through one lenient pass. Returns the template the executor decodes
/// and the main container.
pub fn pod_pass(template: &Value, globals: &Vars) -> Result<(Value, Value), String> {
    let mut simple = order_template(template);
    let artifacts = simple.pointer("/inputs/artifacts").cloned();
    simple["inputs"] = match artifacts {
        Some(artifacts) => json!({"artifacts": artifacts}),
        None => json!({}),
    };
    let mut main = order_container(template.get("container").or(template.get("script")).unwrap_or(&json!({})), "main");
    main["name"] = json!("main");
    let pod = json!({"spec": {"containers": [
        {"name": "wait", "env": [{"name": "ARGO_TEMPLATE", "value": go_json(&simple)}], "resources": {}},
        main,
    ]}});
    let mut vars = globals.clone();
    vars.insert("pod.name".into(), POD_NAME.into());
    for param in template.pointer("/inputs/parameters").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(name), Some(value)) = (param["name"].as_str(), param["value"].as_str()) {
            vars.insert(format!("inputs.parameters.{name}"), value.to_string());
        }
    }
    let pod = parse_json(&substitute(&go_json(&pod), &vars, true)?)?;
    let argo_template = pod.pointer("/spec/containers/0/env/0/value").and_then(Value::as_str).unwrap_or_default();
    let decoded = parse_json(argo_template).map_err(|e| format!("ARGO_TEMPLATE is no longer valid JSON: {e}"))?;
    Ok((decoded, pod["spec"]["containers"][1].clone()))
}

/// What kubectl creates from a manifest: a JSON stream if it starts with `{`, otherwise every YAML document.
pub fn kubectl_objects(manifest: &str) -> Result<Vec<Value>, String> {
    if manifest.trim_start().starts_with('{') {
        return parse_json_stream(manifest).map_err(|e| format!("kubectl: {e}"));
    }
    let documents: Vec<Value> = serde_saphyr::from_multiple(manifest).map_err(|e| format!("kubectl: {e}"))?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

/// The kubelet's expansion of a container's `env`: `$(NAME)` of an earlier variable is replaced, `$$` becomes
/// `$`, anything else stays.
pub fn kubelet_env(env: &Value) -> BTreeMap<String, String> {
    let mut done: BTreeMap<String, String> = BTreeMap::new();
    for var in env.as_array().into_iter().flatten() {
        let raw = var["value"].as_str().unwrap_or_default();
        let mut out = String::new();
        let mut rest = raw;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar..];
            if let Some(after_escape) = after.strip_prefix("$$") {
                out.push('$');
                rest = after_escape;
            } else if let Some(inner) = after.strip_prefix("$(")
                && let Some(close) = inner.find(')')
                && let Some(value) = done.get(&inner[..close])
            {
                out.push_str(value);
                rest = &inner[close + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        done.insert(var["name"].as_str().unwrap_or_default().to_string(), out);
    }
    done
}

// ------------------------------------------------------------------------------------------------------------
// Argo Events: sjson and gjson

#[derive(Clone, Debug)]
pub struct PathPart {
    key: String,
    /// Written as `:key`: always an object key.
    force: bool,
}

impl PathPart {
    /// sjson's `atoui`: digits only (an empty part counts as 0), never for a forced key.
    fn index(&self) -> Option<usize> {
        if self.force || !self.key.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(self.key.bytes().fold(0usize, |n, b| n.saturating_mul(10).saturating_add((b - b'0') as usize)))
    }

    fn appends(&self) -> bool {
        !self.force && self.key == "-1"
    }
}

/// sjson's `parsePath` for simple paths; `|`, `#`, `@`, `*` and `?` (unescaped) make a complex path.
pub fn sjson_path(path: &str) -> Result<Vec<PathPart>, String> {
    if path.is_empty() {
        return Err("path cannot be empty".into());
    }
    let mut parts = Vec::new();
    let mut rest = path;
    loop {
        let (force, body) = match rest.strip_prefix(':') {
            Some(body) => (true, body),
            None => (false, rest),
        };
        let mut key = String::new();
        let mut chars = body.char_indices();
        let mut next = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '.' => {
                    next = Some(&body[i + 1..]);
                    break;
                }
                '|' | '#' | '@' | '*' | '?' => return Err(format!("complex sjson path {path:?} is not modelled")),
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        key.push(escaped);
                    }
                }
                _ => key.push(c),
            }
        }
        parts.push(PathPart { key, force });
        match next {
            Some(remaining) => rest = remaining,
            None => return Ok(parts),
        }
    }
}

/// gjson's lookup along a simple path.
pub fn gjson_get<'v>(value: &'v Value, parts: &[PathPart]) -> Option<&'v Value> {
    parts.iter().try_fold(value, |current, part| match current {
        Value::Object(map) => map.get(&part.key),
        Value::Array(items) => items.get(part.index()?),
        _ => None,
    })
}

/// gjson's `Result.String()`.
pub fn gjson_string(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap();
            if f.fract() == 0.0 && f.abs() < 1e21 { format!("{f:.0}") } else { format!("{f}") }
        }
        other => go_json(other),
    }
}

/// sjson's build of a missing path below a new key or element.
pub fn sjson_build(parts: &[PathPart], leaf: Value) -> Value {
    match parts.split_first() {
        None => leaf,
        Some((part, rest)) => match part.index() {
            Some(n) => {
                let mut items = vec![Value::Null; n];
                items.push(sjson_build(rest, leaf));
                Value::Array(items)
            }
            None if part.appends() => Value::Array(vec![sjson_build(rest, leaf)]),
            None => {
                let mut map = Map::new();
                map.insert(part.key.clone(), sjson_build(rest, leaf));
                Value::Object(map)
            }
        },
    }
}

/// sjson's `Set` along a simple path.
pub fn sjson_set(node: &mut Value, parts: &[PathPart], leaf: Value) -> Result<(), String> {
    let Some((part, rest)) = parts.split_first() else {
        *node = leaf;
        return Ok(());
    };
    let existing = match node {
        Value::Object(map) => map.contains_key(&part.key),
        Value::Array(items) => part.index().is_some_and(|i| i < items.len()),
        _ => false,
    };
    if existing {
        let child = match node {
            Value::Object(map) => map.get_mut(&part.key).unwrap(),
            Value::Array(items) => &mut items[part.index().unwrap()],
            _ => unreachable!(),
        };
        return sjson_set(child, rest, leaf);
    }
    if !node.is_object() && !node.is_array() {
        *node = if part.index().is_some() { json!([]) } else { json!({}) };
    }
    match node {
        Value::Object(map) => {
            map.insert(part.key.clone(), sjson_build(rest, leaf));
        }
        Value::Array(items) => match part.index() {
            Some(n) => {
                items.resize(n, Value::Null);
                items.push(sjson_build(rest, leaf));
            }
            None if part.appends() => items.push(sjson_build(rest, leaf)),
            None => return Err(format!("cannot set array element for non-numeric key '{}'", part.key)),
        },
        _ => unreachable!(),
    }
    Ok(())
}

/// The bytes sjson writes for a string value: `json.Marshal` (HTML-safe) when the text has a quote, a
/// backslash, a control character or a non-ASCII byte; otherwise the bytes between plain quotes.
pub fn sjson_literal(value: &str) -> String {
    let must_marshal = value.bytes().any(|b| !(b' '..=0x7f).contains(&b) || b == b'"' || b == b'\\');
    if must_marshal { go_json_string(value) } else { format!("\"{value}\"") }
}

/// Argo Events' `ApplyParams` for one parameter whose value is a string: `append`/`prepend` join it with the
/// current value at `dest` (when there is one), then sjson writes it at `dest` as a JSON string.
/// Panics on an unsupported operation or a path sjson rejects, as a test helper.
pub fn sensor_parameter(resource: &Value, dest: &str, value: &str, operation: &str) -> Value {
    let parts = sjson_path(dest).unwrap_or_else(|e| panic!("dest {dest:?}: {e}"));
    let current = gjson_get(resource, &parts).map(gjson_string);
    let value = match (operation, current) {
        ("append", Some(current)) => current + value,
        ("prepend", Some(current)) => value.to_string() + &current,
        ("append" | "prepend" | "overwrite" | "", _) => value.to_string(),
        (other, _) => panic!("unsupported trigger parameter operation: {other}"),
    };
    let mut out = resource.clone();
    sjson_set(&mut out, &parts, Value::String(value)).unwrap_or_else(|e| panic!("dest {dest:?}: {e}"));
    out
}

/// `useRawData: true` with a non-string value: sjson's `SetRawBytes` inserts the JSON as it is.
pub fn sensor_parameter_raw(resource: &Value, dest: &str, raw_json: &str) -> Result<Value, String> {
    let parts = sjson_path(dest)?;
    let mut out = resource.clone();
    sjson_set(&mut out, &parts, parse_json(raw_json)?)?;
    Ok(out)
}

/// gjson's `dataKey` lookup as `getValueByKey` returns it: a string unescaped, `null`, objects and arrays as
/// their JSON, other scalars as text.
pub fn data_key_value(event_data: &Value, key: &str) -> Option<String> {
    let found = super::gjson::get(event_data, key).ok()??;
    Some(match &found {
        Value::Null => "null".into(),
        Value::Object(_) | Value::Array(_) => go_json(&found),
        other => gjson_string(other),
    })
}

/// `ResolveParamValue` for the data of an event that arrived: `dataTemplate` first (an error, `""` or
/// `<no value>` falls through), then `dataKey`, then the default `value`.
pub fn resolve_data_param(
    event_data: &Value,
    data_template: Option<&str>,
    data_key: Option<&str>,
    default: Option<&str>,
) -> Result<String, String> {
    if let Some(template) = data_template.filter(|t| !t.is_empty())
        && let Ok(out) = go_template(template, event_data)
        && !out.is_empty()
        && out != "<no value>"
    {
        return Ok(out);
    }
    if let Some(key) = data_key.filter(|k| !k.is_empty())
        && let Some(value) = data_key_value(event_data, key)
    {
        return Ok(value);
    }
    default.map(str::to_string).ok_or_else(|| "unable to resolve the parameter value".into())
}

// ------------------------------------------------------------------------------------------------------------
// A small Go text/template with sprig, for Sensor `dataTemplate`s

#[derive(Clone, Debug, PartialEq)]
pub enum GoToken {
    Field(Vec<String>),
    Dot,
    Str(String),
    Number(f64),
    Ident(String),
    Pipe,
    Open,
    Close,
}

/// Executes a `dataTemplate` with the event data as `.Input` (numbers are float64, as gjson's `Value()` gives).
pub fn go_template(template: &str, event_data: &Value) -> Result<String, String> {
    let root = json!({"Input": event_data});
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        let mut action = &rest[start + 2..];
        if let Some(trimmed) = action.strip_prefix("- ") {
            text = text.trim_end();
            action = trimmed;
        }
        pieces.push(GoPiece::Text(text.to_string()));
        let (tokens, after) = lex_go_action(action)?;
        rest = after;
        if !tokens.is_empty() {
            pieces.push(GoPiece::Action(tokens));
        }
    }
    pieces.push(GoPiece::Text(rest.to_string()));
    let mut at = 0;
    let nodes = go_parse(&pieces, &mut at, false)?;
    let mut out = String::new();
    go_exec(&nodes, &root, &mut out)?;
    Ok(out)
}

/// A piece of a Go template: text or one action's tokens.
pub enum GoPiece {
    /// Text between actions.
    Text(String),
    /// An action.
    Action(Vec<GoToken>),
}

/// The parsed template: text, actions, and the `range`/`if` blocks our Sensors use.
pub enum GoNode {
    /// Text.
    Text(String),
    /// A pipeline whose value is printed.
    Print(Vec<GoToken>),
    /// `range PIPELINE` … `end`: the body once per element, with the element as dot.
    Range(Vec<GoToken>, Vec<GoNode>),
    /// `if PIPELINE` … `end` (no `else`).
    If(Vec<GoToken>, Vec<GoNode>),
    /// `break` (leaves the innermost `range`).
    Break,
}

fn keyword(tokens: &[GoToken]) -> Option<&str> {
    match tokens.first() {
        Some(GoToken::Ident(word)) if ["range", "if", "end", "break", "else", "with"].contains(&word.as_str()) => {
            Some(word)
        }
        _ => None,
    }
}

fn go_parse(pieces: &[GoPiece], at: &mut usize, nested: bool) -> Result<Vec<GoNode>, String> {
    let mut nodes = Vec::new();
    while *at < pieces.len() {
        let piece = &pieces[*at];
        *at += 1;
        match piece {
            GoPiece::Text(text) => nodes.push(GoNode::Text(text.clone())),
            GoPiece::Action(tokens) => match keyword(tokens) {
                Some("end") if nested => return Ok(nodes),
                Some("end") => return Err("unexpected {{end}}".into()),
                Some("break") => nodes.push(GoNode::Break),
                Some(word @ ("range" | "if")) => {
                    let pipeline = tokens[1..].to_vec();
                    let body = go_parse(pieces, at, true)?;
                    nodes.push(if word == "range" {
                        GoNode::Range(pipeline, body)
                    } else {
                        GoNode::If(pipeline, body)
                    });
                }
                Some(other) => return Err(format!("{{{{{other}}}}} is outside the modelled subset")),
                None => nodes.push(GoNode::Print(tokens.clone())),
            },
        }
    }
    if nested { Err("unexpected EOF: a block has no {{end}}".into()) } else { Ok(nodes) }
}

/// Whether the body ended with `break`.
fn go_exec(nodes: &[GoNode], dot: &Value, out: &mut String) -> Result<bool, String> {
    let pipeline = |tokens: &[GoToken]| -> Result<Value, String> {
        let mut position = 0;
        let value = eval_pipeline(tokens, &mut position, dot)?;
        if position != tokens.len() {
            return Err(format!("unexpected {:?} in operand", tokens[position]));
        }
        Ok(value)
    };
    for node in nodes {
        match node {
            GoNode::Text(text) => out.push_str(text),
            GoNode::Print(tokens) => out.push_str(&go_print(&pipeline(tokens)?, true)),
            GoNode::Break => return Ok(true),
            GoNode::If(tokens, body) => {
                if !go_is_empty(&pipeline(tokens)?) && go_exec(body, dot, out)? {
                    return Ok(true);
                }
            }
            GoNode::Range(tokens, body) => {
                let items: Vec<Value> = match pipeline(tokens)? {
                    Value::Array(items) => items,
                    Value::Object(map) => map.into_values().collect(),
                    Value::Null => Vec::new(),
                    other => return Err(format!("range can't iterate over {other}")),
                };
                for item in &items {
                    if go_exec(body, item, out)? {
                        break;
                    }
                }
            }
        }
    }
    Ok(false)
}

/// Tokens of one action and the text after its `}}` (a ` -}}` trims the whitespace that follows).
pub fn lex_go_action(action: &str) -> Result<(Vec<GoToken>, &str), String> {
    if let Some(comment) = action.strip_prefix("/*") {
        let end = comment.find("*/}}").ok_or("unclosed comment")?;
        return Ok((Vec::new(), &comment[end + 4..]));
    }
    let chars: Vec<(usize, char)> = action.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let offset = |i: usize| chars.get(i).map_or(action.len(), |(o, _)| *o);
    loop {
        let Some(c) = at(i) else { return Err("unclosed action".into()) };
        if action[offset(i)..].starts_with("}}") {
            return Ok((tokens, &action[offset(i) + 2..]));
        }
        if action[offset(i)..].starts_with(" -}}") {
            return Ok((tokens, action[offset(i) + 4..].trim_start()));
        }
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            tokens.push(GoToken::Pipe);
            i += 1;
        } else if c == '(' {
            tokens.push(GoToken::Open);
            i += 1;
        } else if c == ')' {
            tokens.push(GoToken::Close);
            i += 1;
        } else if c == '.' {
            let mut fields = Vec::new();
            while at(i) == Some('.') && at(i + 1).is_some_and(|n| n.is_alphanumeric() || n == '_') {
                let start = i + 1;
                i = start;
                while at(i).is_some_and(|n| n.is_alphanumeric() || n == '_') {
                    i += 1;
                }
                fields.push(action[offset(start)..offset(i)].to_string());
            }
            if fields.is_empty() {
                tokens.push(GoToken::Dot);
                i += 1;
            } else {
                tokens.push(GoToken::Field(fields));
            }
        } else if c == '"' {
            let source: Vec<char> = chars.iter().map(|(_, c)| *c).collect();
            let (text, next) = lex_quoted(&source, i)?;
            tokens.push(GoToken::Str(text));
            i = next;
        } else if c == '`' {
            let start = i + 1;
            i = start;
            while at(i).is_some_and(|n| n != '`') {
                i += 1;
            }
            if at(i).is_none() {
                return Err("unterminated raw quoted string".into());
            }
            tokens.push(GoToken::Str(action[offset(start)..offset(i)].to_string()));
            i += 1;
        } else if c.is_ascii_digit() || c == '-' {
            let start = i;
            i += 1;
            while at(i).is_some_and(|n| n.is_ascii_alphanumeric() || n == '.' || n == '+' || n == '-') {
                i += 1;
            }
            let text = &action[offset(start)..offset(i)];
            tokens.push(GoToken::Number(text.parse().map_err(|_| format!("bad number syntax: {text}"))?));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while at(i).is_some_and(|n| n.is_alphanumeric() || n == '_') {
                i += 1;
            }
            tokens.push(GoToken::Ident(action[offset(start)..offset(i)].to_string()));
        } else {
            return Err(format!("unexpected {c:?} in command"));
        }
    }
}

/// `command ('|' command)*`; a piped value becomes the last argument of the next command.
pub fn eval_pipeline(tokens: &[GoToken], position: &mut usize, root: &Value) -> Result<Value, String> {
    let mut piped: Option<Value> = None;
    loop {
        let mut operands = Vec::new();
        while let Some(token) = tokens.get(*position) {
            match token {
                GoToken::Pipe | GoToken::Close => break,
                GoToken::Open => {
                    *position += 1;
                    let inner = eval_pipeline(tokens, position, root)?;
                    if tokens.get(*position) != Some(&GoToken::Close) {
                        return Err("unclosed left paren".into());
                    }
                    *position += 1;
                    operands.push(Operand::Value(inner));
                }
                GoToken::Ident(name) if operands.is_empty() => {
                    *position += 1;
                    operands.push(Operand::Function(name.clone()));
                }
                GoToken::Ident(name) => match name.as_str() {
                    "true" | "false" => {
                        *position += 1;
                        operands.push(Operand::Value(Value::Bool(name == "true")));
                    }
                    "nil" => {
                        *position += 1;
                        operands.push(Operand::Value(Value::Null));
                    }
                    _ => return Err(format!("function {name:?} used as an argument is not modelled")),
                },
                other => {
                    *position += 1;
                    operands.push(Operand::Value(go_operand(other, root)?));
                }
            }
        }
        let value = match operands.split_first() {
            None => return Err("missing value for command".into()),
            Some((Operand::Function(name), args)) => {
                let mut args: Vec<Value> = args
                    .iter()
                    .map(|a| match a {
                        Operand::Value(v) => v.clone(),
                        Operand::Function(_) => unreachable!(),
                    })
                    .collect();
                args.extend(piped.take());
                go_function(name, &args)?
            }
            Some((Operand::Value(value), [])) if piped.is_none() => value.clone(),
            Some(_) => return Err("can't give argument to non-function".into()),
        };
        if tokens.get(*position) == Some(&GoToken::Pipe) {
            *position += 1;
            piped = Some(value);
        } else {
            return Ok(value);
        }
    }
}

pub enum Operand {
    Function(String),
    Value(Value),
}

pub fn go_operand(token: &GoToken, root: &Value) -> Result<Value, String> {
    match token {
        GoToken::Dot => Ok(root.clone()),
        GoToken::Str(s) => Ok(Value::String(s.clone())),
        GoToken::Number(n) => Ok(json!(n)),
        GoToken::Field(fields) => {
            let mut current = root;
            for field in fields {
                current = match current {
                    Value::Object(map) => map.get(field).unwrap_or(&Value::Null),
                    Value::Null => return Err(format!("nil pointer evaluating interface {{}}.{field}")),
                    other => return Err(format!("can't evaluate field {field} in type {}", go_type(other))),
                };
            }
            Ok(current.clone())
        }
        other => Err(format!("unexpected {other:?}")),
    }
}

pub fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

pub fn go_string_arg<'v>(name: &str, value: &'v Value) -> Result<&'v str, String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Null => Err(format!("error calling {name}: invalid value; expected string")),
        other => Err(format!("wrong type for value; expected string; got {}", go_type(other))),
    }
}

/// Go's truthiness, as sprig's `default` uses it.
pub fn go_is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

pub fn go_function(name: &str, args: &[Value]) -> Result<Value, String> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("wrong number of args for {name}: want {n} got {}", args.len()))
        }
    };
    let text = |s: String| Ok(Value::String(s));
    match name {
        "b64enc" => {
            arity(1)?;
            text(BASE64.encode(go_string_arg(name, &args[0])?))
        }
        "b64dec" => {
            arity(1)?;
            text(sprig_b64dec(go_string_arg(name, &args[0])?))
        }
        "regexFind" | "regexMatch" => {
            arity(2)?;
            let regex = Regex::new(go_string_arg(name, &args[0])?)?;
            let subject = go_string_arg(name, &args[1])?;
            let found = regex.find(subject);
            if name == "regexMatch" {
                Ok(Value::Bool(found.is_some()))
            } else {
                text(found.unwrap_or_default().to_string())
            }
        }
        "trimPrefix" | "trimSuffix" => {
            arity(2)?;
            let affix = go_string_arg(name, &args[0])?;
            let subject = go_string_arg(name, &args[1])?;
            let trimmed = if name == "trimPrefix" { subject.strip_prefix(affix) } else { subject.strip_suffix(affix) };
            text(trimmed.unwrap_or(subject).to_string())
        }
        "trim" | "lower" | "upper" | "quote" => {
            arity(1)?;
            let s = go_string_arg(name, &args[0])?;
            text(match name {
                "trim" => s.trim().to_string(),
                "lower" => s.to_lowercase(),
                "upper" => s.to_uppercase(),
                _ => format!("\"{}\"", go_quote_inner(s)),
            })
        }
        "default" => {
            arity(2)?;
            Ok(if go_is_empty(&args[1]) { args[0].clone() } else { args[1].clone() })
        }
        "toJson" => {
            arity(1)?;
            text(go_json_sorted(&args[0]))
        }
        "index" => {
            arity(2)?;
            match (&args[0], &args[1]) {
                (Value::Object(map), Value::String(key)) => Ok(map.get(key).cloned().unwrap_or(Value::Null)),
                (Value::Array(items), Value::Number(n)) => {
                    items.get(n.as_f64().unwrap_or(-1.0) as usize).cloned().ok_or_else(|| "index out of range".into())
                }
                (Value::Null, _) => Err("index of untyped nil".into()),
                (other, _) => Err(format!("can't index item of type {}", go_type(other))),
            }
        }
        "sha256sum" => {
            arity(1)?;
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(go_string_arg(name, &args[0])?.as_bytes());
            text(digest.iter().map(|b| format!("{b:02x}")).collect())
        }
        "trunc" => {
            arity(2)?;
            let n = args[0].as_f64().ok_or("trunc wants a number")? as i64;
            let s: Vec<char> = go_string_arg(name, &args[1])?.chars().collect();
            let keep = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX).min(s.len());
            text(if n >= 0 { s[..keep].iter().collect() } else { s[s.len() - keep..].iter().collect() })
        }
        "int64" | "int" => {
            // sprig's `toInt64` (`cast.ToInt64`): floats truncate, strings parse, the rest is 0.
            arity(1)?;
            let n = match &args[0] {
                Value::Number(n) => n.as_f64().unwrap_or_default().trunc() as i64,
                Value::String(s) => s.trim().parse::<i64>().unwrap_or(0),
                Value::Bool(b) => i64::from(*b),
                _ => 0,
            };
            Ok(Value::from(n))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// How text/template prints a value (`fmt.Print` rules; a top-level nil prints as `<no value>`).
pub fn go_print(value: &Value, top: bool) -> String {
    match value {
        Value::Null if top => "<no value>".into(),
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_format_float(n.as_f64().unwrap_or_default()),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(|item| go_print(item, false)).collect::<Vec<_>>().join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k}:{}", go_print(v, false))).collect();
            format!("map[{}]", body.join(" "))
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// A backtracking subset of RE2 for `regexFind`

#[derive(Clone, Debug)]
pub enum Node {
    Char(char),
    Any,
    Class(Vec<(char, char)>, bool),
    Start,
    End,
    Concat(Vec<Node>),
    Alternation(Vec<Node>),
    Repeat { node: Box<Node>, min: usize, max: Option<usize>, greedy: bool },
}

/// A compiled pattern (see the module comment for the subset).
pub struct Regex {
    root: Node,
}

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut at = 0;
        let root = parse_alternation(&chars, &mut at)?;
        if at != chars.len() {
            return Err(format!("error parsing regexp: unexpected ) in {pattern:?}"));
        }
        Ok(Regex { root })
    }

    /// The leftmost-first match, as Go's `FindString` (sprig `regexFind`).
    pub fn find<'s>(&self, subject: &'s str) -> Option<&'s str> {
        let chars: Vec<char> = subject.chars().collect();
        let offsets: Vec<usize> = subject.char_indices().map(|(o, _)| o).chain([subject.len()]).collect();
        (0..=chars.len()).find_map(|start| {
            match_node(&self.root, &chars, start, &|end| Some(end)).map(|end| &subject[offsets[start]..offsets[end]])
        })
    }
}

pub fn parse_alternation(chars: &[char], at: &mut usize) -> Result<Node, String> {
    let mut options = vec![parse_concat(chars, at)?];
    while chars.get(*at) == Some(&'|') {
        *at += 1;
        options.push(parse_concat(chars, at)?);
    }
    Ok(if options.len() == 1 { options.pop().unwrap() } else { Node::Alternation(options) })
}

pub fn parse_concat(chars: &[char], at: &mut usize) -> Result<Node, String> {
    let mut items = Vec::new();
    while let Some(&c) = chars.get(*at) {
        if c == '|' || c == ')' {
            break;
        }
        let atom = parse_atom(chars, at)?;
        items.push(parse_quantifier(chars, at, atom)?);
    }
    Ok(Node::Concat(items))
}

pub fn parse_quantifier(chars: &[char], at: &mut usize, atom: Node) -> Result<Node, String> {
    let (min, max) = match chars.get(*at) {
        Some('*') => (0, None),
        Some('+') => (1, None),
        Some('?') => (0, Some(1)),
        Some('{') => {
            let close = chars[*at..].iter().position(|c| *c == '}').ok_or("missing closing }")? + *at;
            let body: String = chars[*at + 1..close].iter().collect();
            let parse = |s: &str| s.parse::<usize>().map_err(|_| format!("invalid repeat count {{{body}}}"));
            let bounds = match body.split_once(',') {
                None => (parse(&body)?, Some(parse(&body)?)),
                Some((low, "")) => (parse(low)?, None),
                Some((low, high)) => (parse(low)?, Some(parse(high)?)),
            };
            *at = close;
            bounds
        }
        _ => return Ok(atom),
    };
    *at += 1;
    let greedy = if chars.get(*at) == Some(&'?') {
        *at += 1;
        false
    } else {
        true
    };
    if matches!(chars.get(*at), Some('*' | '+' | '?')) {
        return Err("invalid nested repetition operator".into());
    }
    Ok(Node::Repeat { node: Box::new(atom), min, max, greedy })
}

pub fn class_escape(c: char) -> Option<(Vec<(char, char)>, bool)> {
    let digits = vec![('0', '9')];
    let word = vec![('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
    let space = vec![('\t', '\n'), ('\u{c}', '\r'), (' ', ' ')];
    match c {
        'd' => Some((digits, false)),
        'D' => Some((digits, true)),
        'w' => Some((word, false)),
        'W' => Some((word, true)),
        's' => Some((space, false)),
        'S' => Some((space, true)),
        _ => None,
    }
}

pub fn literal_escape(c: char) -> Result<char, String> {
    match c {
        'n' => Ok('\n'),
        't' => Ok('\t'),
        'r' => Ok('\r'),
        'f' => Ok('\u{c}'),
        'v' => Ok('\u{b}'),
        _ if c.is_ascii_punctuation() => Ok(c),
        _ => Err(format!("escape \\{c} is not modelled")),
    }
}

pub fn parse_atom(chars: &[char], at: &mut usize) -> Result<Node, String> {
    let c = chars[*at];
    *at += 1;
    match c {
        '.' => Ok(Node::Any),
        '^' => Ok(Node::Start),
        '$' => Ok(Node::End),
        '(' => {
            if chars.get(*at) == Some(&'?') {
                if chars.get(*at + 1) == Some(&':') {
                    *at += 2;
                } else {
                    return Err("flags and named groups are not modelled".into());
                }
            }
            let inner = parse_alternation(chars, at)?;
            if chars.get(*at) != Some(&')') {
                return Err("missing closing )".into());
            }
            *at += 1;
            Ok(inner)
        }
        '[' => {
            let negated = chars.get(*at) == Some(&'^');
            if negated {
                *at += 1;
            }
            let mut ranges = Vec::new();
            let mut first = true;
            loop {
                let Some(&c) = chars.get(*at) else { return Err("missing closing ]".into()) };
                *at += 1;
                if c == ']' && !first {
                    break;
                }
                first = false;
                let low = if c == '\\' {
                    let escaped = *chars.get(*at).ok_or("trailing backslash")?;
                    *at += 1;
                    if let Some((class, false)) = class_escape(escaped) {
                        ranges.extend(class);
                        continue;
                    }
                    literal_escape(escaped)?
                } else {
                    c
                };
                if chars.get(*at) == Some(&'-') && chars.get(*at + 1).is_some_and(|n| *n != ']') {
                    let mut high = chars[*at + 1];
                    *at += 2;
                    if high == '\\' {
                        high = literal_escape(*chars.get(*at).ok_or("trailing backslash")?)?;
                        *at += 1;
                    }
                    if high < low {
                        return Err(format!("invalid character class range {low}-{high}"));
                    }
                    ranges.push((low, high));
                } else {
                    ranges.push((low, low));
                }
            }
            Ok(Node::Class(ranges, negated))
        }
        '\\' => {
            let escaped = *chars.get(*at).ok_or("trailing backslash")?;
            *at += 1;
            match class_escape(escaped) {
                Some((ranges, negated)) => Ok(Node::Class(ranges, negated)),
                None => Ok(Node::Char(literal_escape(escaped)?)),
            }
        }
        '*' | '+' | '?' => Err("missing argument to repetition operator".into()),
        _ => Ok(Node::Char(c)),
    }
}

pub fn single_char_matches(node: &Node, c: char) -> bool {
    match node {
        Node::Char(x) => *x == c,
        Node::Any => c != '\n',
        Node::Class(ranges, negated) => ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated,
        _ => false,
    }
}

type Continuation<'k> = &'k dyn Fn(usize) -> Option<usize>;

pub fn match_node(node: &Node, s: &[char], i: usize, then: Continuation<'_>) -> Option<usize> {
    match node {
        Node::Char(_) | Node::Any | Node::Class(..) => {
            if i < s.len() && single_char_matches(node, s[i]) {
                then(i + 1)
            } else {
                None
            }
        }
        Node::Start => (i == 0).then(|| then(i)).flatten(),
        Node::End => (i == s.len()).then(|| then(i)).flatten(),
        Node::Concat(items) => match_sequence(items, s, i, then),
        Node::Alternation(options) => options.iter().find_map(|option| match_node(option, s, i, then)),
        Node::Repeat { node: inner, min, max, greedy } => {
            if matches!(**inner, Node::Char(_) | Node::Any | Node::Class(..)) {
                // Iterative: count how far the character can repeat, then try each length.
                let limit = max.unwrap_or(usize::MAX);
                let mut n = 0;
                while n < limit && i + n < s.len() && single_char_matches(inner, s[i + n]) {
                    n += 1;
                }
                if n < *min {
                    return None;
                }
                if *greedy { (*min..=n).rev().find_map(|k| then(i + k)) } else { (*min..=n).find_map(|k| then(i + k)) }
            } else {
                match_repeat(inner, *min, *max, *greedy, 0, s, i, then)
            }
        }
    }
}

pub fn match_sequence(items: &[Node], s: &[char], i: usize, then: Continuation<'_>) -> Option<usize> {
    match items.split_first() {
        None => then(i),
        Some((first, rest)) => match_node(first, s, i, &|j| match_sequence(rest, s, j, then)),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn match_repeat(
    inner: &Node,
    min: usize,
    max: Option<usize>,
    greedy: bool,
    count: usize,
    s: &[char],
    i: usize,
    then: Continuation<'_>,
) -> Option<usize> {
    let more = || {
        if max.is_some_and(|m| count >= m) {
            return None;
        }
        match_node(inner, s, i, &|j| {
            if j == i && count >= min { None } else { match_repeat(inner, min, max, greedy, count + 1, s, j, then) }
        })
    };
    let stop = || if count >= min { then(i) } else { None };
    if greedy { more().or_else(stop) } else { stop().or_else(more) }
}

// ------------------------------------------------------------------------------------------------------------
