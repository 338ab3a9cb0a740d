//! The small expression languages the controller evaluates after substitution: `when`, `depends`
//! and an `http` template's `successCondition`.
//!
//! * `when` (`workflow/controller/operator.go`, `shouldExecute`): after every `{{...}}` is replaced,
//!   the text is an expression in which bare words are strings (`pending == pending`); numbers
//!   compare as numbers. A text that does not parse is an error of the node.
//! * `depends` (`workflow/controller/dag.go`, `evaluateDependsLogic`): `&&`, `||`, `!` and
//!   parentheses over `task.Result`; a bare `task` means
//!   `(task.Succeeded || task.Skipped || task.Daemoned)`.
//! * `successCondition` of an `http` template (`workflow/executor/http/http.go`): expr over
//!   `response.statusCode`, `response.body`, with `contains`.
//!
//! Simplified: one evaluator for all three (the real ones are govaluate-like and expr-lang); only
//! the operators our templates use (`== != < <= > >= && || ! contains` and parentheses).

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(&'static str),
    Open,
    Close,
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if let Some(op) = ["==", "!=", "<=", ">=", "&&", "||"].iter().find(|op| **op == two) {
            tokens.push(Token::Op(op));
            i += 2;
            continue;
        }
        match c {
            '(' => tokens.push(Token::Open),
            ')' => tokens.push(Token::Close),
            '<' => tokens.push(Token::Op("<")),
            '>' => tokens.push(Token::Op(">")),
            '!' => tokens.push(Token::Op("!")),
            '\'' | '"' => {
                let end =
                    chars[i + 1..].iter().position(|d| *d == c).ok_or_else(|| format!("unclosed quote in {text:?}"))?;
                tokens.push(Token::Quoted(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
                continue;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"()<>!=&|'\"".contains(chars[i]) {
                    i += 1;
                }
                if start == i {
                    return Err(format!("unexpected {c:?} in {text:?}"));
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(if word == "contains" { Token::Op("contains") } else { Token::Word(word) });
                continue;
            }
        }
        i += 1;
    }
    Ok(tokens)
}

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Bool(bool),
    Text(String),
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    vars: &'a BTreeMap<String, String>,
    bare: &'a dyn Fn(&str) -> Option<bool>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Val, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Op("||")) {
            self.at += 1;
            let right = self.and()?;
            left = Val::Bool(truthy(&left)? || truthy(&right)?);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Val, String> {
        let mut left = self.compare()?;
        while self.peek() == Some(&Token::Op("&&")) {
            self.at += 1;
            let right = self.compare()?;
            left = Val::Bool(truthy(&left)? && truthy(&right)?);
        }
        Ok(left)
    }

    fn compare(&mut self) -> Result<Val, String> {
        let left = self.unary()?;
        let Some(Token::Op(op)) = self.peek().cloned() else { return Ok(left) };
        if !["==", "!=", "<", ">", "<=", ">=", "contains"].contains(&op) {
            return Ok(left);
        }
        self.at += 1;
        let right = self.unary()?;
        let (a, b) = (text(&left), text(&right));
        let numbers = (a.parse::<f64>(), b.parse::<f64>());
        Ok(Val::Bool(match (op, numbers) {
            ("contains", _) => a.contains(&b),
            ("==", (Ok(x), Ok(y))) => (x - y).abs() < f64::EPSILON,
            ("!=", (Ok(x), Ok(y))) => (x - y).abs() >= f64::EPSILON,
            ("==", _) => a == b,
            ("!=", _) => a != b,
            (_, (Ok(x), Ok(y))) => match op {
                "<" => x < y,
                ">" => x > y,
                "<=" => x <= y,
                _ => x >= y,
            },
            _ => return Err(format!("cannot compare {a:?} {op} {b:?}")),
        }))
    }

    fn unary(&mut self) -> Result<Val, String> {
        match self.peek().cloned() {
            Some(Token::Op("!")) => {
                self.at += 1;
                let value = self.unary()?;
                Ok(Val::Bool(!truthy(&value)?))
            }
            Some(Token::Open) => {
                self.at += 1;
                let value = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err("missing )".into());
                }
                self.at += 1;
                Ok(value)
            }
            Some(Token::Quoted(s)) => {
                self.at += 1;
                Ok(Val::Text(s))
            }
            Some(Token::Word(w)) => {
                self.at += 1;
                if let Some(value) = self.vars.get(&w) {
                    return Ok(Val::Text(value.clone()));
                }
                if let Some(b) = (self.bare)(&w) {
                    return Ok(Val::Bool(b));
                }
                Ok(match w.as_str() {
                    "true" => Val::Bool(true),
                    "false" => Val::Bool(false),
                    _ => Val::Text(w),
                })
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

fn text(v: &Val) -> String {
    match v {
        Val::Bool(b) => b.to_string(),
        Val::Text(s) => s.clone(),
    }
}

fn truthy(v: &Val) -> Result<bool, String> {
    match v {
        Val::Bool(b) => Ok(*b),
        Val::Text(s) if s == "true" => Ok(true),
        Val::Text(s) if s == "false" => Ok(false),
        Val::Text(s) => Err(format!("{s:?} is not a boolean")),
    }
}

fn evaluate(text: &str, vars: &BTreeMap<String, String>, bare: &dyn Fn(&str) -> Option<bool>) -> Result<bool, String> {
    let mut parser = Parser { tokens: lex(text)?, at: 0, vars, bare };
    let value = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err(format!("unexpected text after the expression in {text:?}"));
    }
    truthy(&value)
}

/// A `when` after substitution. A tag left unresolved is an error, as in Argo.
pub fn when(text: &str) -> Result<bool, String> {
    if text.contains("{{") {
        return Err(format!("failed to resolve {text}"));
    }
    evaluate(text, &BTreeMap::new(), &|_| None)
}

/// A `depends` expression, given each task's phase (None while it has no node).
pub fn depends(text: &str, phase_of: &dyn Fn(&str) -> Option<String>) -> Result<bool, String> {
    let bare = |word: &str| -> Option<bool> {
        let (task, result) = match word.rsplit_once('.') {
            Some((task, result)) if phase_of(task).is_some() || RESULTS.contains(&result) => (task, Some(result)),
            _ => (word, None),
        };
        let phase = phase_of(task).unwrap_or_default();
        Some(match result {
            None => ["Succeeded", "Skipped", "Daemoned"].contains(&phase.as_str()),
            Some("Succeeded") => phase == "Succeeded",
            Some("Failed") => phase == "Failed",
            Some("Errored") => phase == "Error",
            Some("Skipped") => phase == "Skipped",
            Some("Omitted") => phase == "Omitted",
            Some("Daemoned") => false,
            Some("AnySucceeded" | "AllFailed") => phase == "Succeeded",
            Some(_) => false,
        })
    };
    evaluate(text, &BTreeMap::new(), &bare)
}

const RESULTS: &[&str] =
    &["Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed"];

/// The task names a `depends` expression mentions.
pub fn depends_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for token in lex(text).unwrap_or_default() {
        if let Token::Word(word) = token {
            let name = match word.rsplit_once('.') {
                Some((task, result)) if RESULTS.contains(&result) => task.to_string(),
                _ => word,
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// An expression over named values (an Argo Events `exprs` filter's fields).
pub fn with_vars(text: &str, vars: &BTreeMap<String, String>) -> Result<bool, String> {
    evaluate(text, vars, &|_| None)
}

/// An `http` template's `successCondition`, with `response.statusCode` and `response.body`.
pub fn http_success(condition: &str, status: u16, body: &str) -> Result<bool, String> {
    let vars = BTreeMap::from([
        ("response.statusCode".to_string(), status.to_string()),
        ("response.body".to_string(), body.to_string()),
    ]);
    evaluate(condition, &vars, &|_| None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_reads_bare_words_as_strings() {
        assert!(when("pending == pending").unwrap());
        assert!(!when("true != true").unwrap());
        assert!(when("Failed != Succeeded && 0 < 2").unwrap());
        assert!(!when("Failed != Succeeded && 2 < 2").unwrap());
        assert!(when("{{inputs.parameters.x}} == a").is_err());
    }

    #[test]
    fn depends_follows_argo() {
        let phases = |task: &str| match task {
            "a" => Some("Succeeded".to_string()),
            "b" => Some("Failed".to_string()),
            "c" => Some("Skipped".to_string()),
            _ => None,
        };
        assert!(depends("a.Succeeded && c", &phases).unwrap());
        assert!(!depends("a.Succeeded && b.Succeeded", &phases).unwrap());
        assert!(depends("b.Failed || !a", &phases).unwrap());
        assert_eq!(depends_names("t-1.Succeeded && (t-2 || t-3.Failed)"), ["t-1", "t-2", "t-3"]);
    }

    #[test]
    fn http_conditions() {
        assert!(http_success("response.statusCode == 200 && response.body contains 'ok'", 200, "all ok").unwrap());
        assert!(!http_success("response.statusCode == 200 && response.body contains 'ok'", 503, "ok").unwrap());
    }
}
