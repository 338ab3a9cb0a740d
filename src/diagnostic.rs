//! Diagnostics written for the person who wrote the backlog: `file:line:col`, the offending line
//! with a caret, and an optional hint. Every layer that reports a user error produces a
//! [`Diagnostic`]; only this module turns them into text, so they all look the same.

use std::fmt::Write as _;

/// A place in an input file. Lines and columns are 1-based; `len` is in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes (0 means "point at one column").
    pub len: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Rendering goes on; the user should look.
    Warning,
    /// The input is rejected.
    Error,
}

/// One problem found in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Warning or error.
    pub severity: Severity,
    /// Lowercase message without a trailing period; user values in backticks.
    pub message: String,
    /// Where the problem is, when it has a place.
    pub span: Option<Span>,
    /// How to fix it, when we can say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(message: impl Into<String>, span: Option<Span>) -> Self {
        Self { severity: Severity::Error, message: message.into(), span, hint: None }
    }

    /// A warning at `span`.
    pub fn warning(message: impl Into<String>, span: Option<Span>) -> Self {
        Self { severity: Severity::Warning, message: message.into(), span, hint: None }
    }

    /// Adds a hint line.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// An input file's name (as the user gave it) and text, for rendering diagnostics.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as given on the command line, with `/` separators.
    pub name: String,
    /// The whole text.
    pub text: String,
    /// Byte offset of the start of each line, computed on first use.
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    /// A file with its name as the user gave it.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self { name: name.into(), text: text.into(), line_starts: std::sync::OnceLock::new() }
    }

    /// Finds the 1-based line and column of a byte offset.
    pub fn span_at(&self, offset: usize, len: usize) -> Span {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self
            .line_starts
            .get_or_init(|| std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect());
        let line_index = starts.partition_point(|&start| start <= offset) - 1;
        let column = self.text[starts[line_index]..offset].chars().count() + 1;
        Span { offset, len, line: line_index + 1, column }
    }

    /// Renders diagnostics in the order given, one block each, separated by blank lines.
    pub fn render(&self, diagnostics: &[Diagnostic]) -> String {
        let mut out = String::new();
        for (i, diagnostic) in diagnostics.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            self.render_one(diagnostic, &mut out);
        }
        out
    }

    fn render_one(&self, diagnostic: &Diagnostic, out: &mut String) {
        let label = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{label}: {}", diagnostic.message);
        match diagnostic.span {
            Some(span) => {
                let _ = writeln!(out, "  --> {}:{}:{}", self.name, span.line, span.column);
                if let Some(line_text) = self.text.lines().nth(span.line - 1) {
                    let line_text = line_text.trim_end_matches('\r');
                    let number = span.line.to_string();
                    let pad = " ".repeat(number.len());
                    let _ = writeln!(out, "{pad} |");
                    // Show a window of a long line (a minified JSON file is one line).
                    let column = span.column.saturating_sub(1);
                    let first = column.saturating_sub(60);
                    let shown: String = line_text.chars().skip(first).take(160).collect();
                    let before = if first > 0 { "…" } else { "" };
                    let after = if line_text.chars().count() > first + 160 { "…" } else { "" };
                    let _ = writeln!(out, "{number} | {before}{}{after}", printable(&shown));
                    let start = column - first + before.chars().count();
                    let rest: String = line_text.chars().skip(column).take(100).collect();
                    let width = self.text.get(span.offset..span.offset + span.len).map_or(1, |s| {
                        s.lines().next().unwrap_or("").chars().count().clamp(1, rest.chars().count().max(1))
                    });
                    let _ = writeln!(out, "{pad} | {}{}", " ".repeat(start), "^".repeat(width));
                }
            }
            None => {
                let _ = writeln!(out, "  --> {}", self.name);
            }
        }
        if let Some(hint) = &diagnostic.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
    }
}

/// Replaces control characters so that a diagnostic never moves the terminal's cursor.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c }).collect()
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, offset: usize, len: usize, expected: &str) {
        let file = SourceFile::new("in.yaml", text);
        let span = file.span_at(offset, len);
        let diagnostic = Diagnostic::error("something `x` is wrong", Some(span)).with_hint("do y");
        assert_eq!(file.render(&[diagnostic]), expected);
    }

    #[test]
    fn points_at_the_span_on_its_line() {
        check(
            "tasks:\n  - id: 17\n",
            15,
            2,
            "error: something `x` is wrong\n  --> in.yaml:2:9\n  |\n2 |   - id: 17\n  |         ^^\n  = hint: do y\n",
        );
    }

    #[test]
    fn counts_columns_in_characters() {
        let file = SourceFile::new("f", "é: [x]\n");
        assert_eq!(file.span_at(5, 1).column, 5);
    }
}
