//! `TaskId`: a task's identity as the user wrote it. `7` and `"7"` are the same id; everything
//! else is compared as text.

use std::cmp::Ordering;
use std::fmt;

/// The largest integer id a user may write. Larger numbers are reserved for the stable integers
/// that string ids are given (see `plan::names`).
pub const MAX_INTEGER_ID: i64 = 999_999_999_999;

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// A task id in canonical text form: an integer without sign or leading zeros, or a string of
/// letters, digits and `._:/+#@-` that starts with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskId(String);

impl TaskId {
    /// Builds an id from an integer the user wrote.
    /// Integers above [`MAX_INTEGER_ID`] are kept as text ids, as if they had been quoted.
    pub fn from_integer(value: i64) -> Result<Self, String> {
        if value < 0 {
            return Err(format!("task id `{value}` is negative"));
        }
        Ok(Self(value.to_string()))
    }

    /// Builds an id from text the user wrote. Returns the reason when the text is not an id.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("task id is empty".into());
        }
        if text.len() > MAX_ID_LEN {
            return Err(format!("task id is {} bytes long; the limit is {MAX_ID_LEN}", text.len()));
        }
        if let Some(bad) = text.chars().find(|c| !is_id_char(*c)) {
            return Err(format!("task id `{}` contains {}", text.escape_debug(), describe(bad)));
        }
        if !text.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(format!("task id `{text}` must start with a letter or a digit"));
        }
        if is_canonical_integer(text)
            && let Ok(value) = text.parse::<i64>()
        {
            return Self::from_integer(value);
        }
        Ok(Self(text.to_owned()))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an integer, when the user wrote one.
    pub fn as_integer(&self) -> Option<i64> {
        if is_canonical_integer(&self.0) { self.0.parse().ok() } else { None }
    }
}

/// Integers sort numerically and before strings, which sort as text: `2 < 10 < T1 < T10`.
impl Ord for TaskId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.as_integer(), other.as_integer()) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => natural_cmp(&self.0, &other.0),
        }
    }
}

impl PartialOrd for TaskId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hint shown when an id is rejected.
pub const ID_HINT: &str =
    "write an integer, or a string of letters, digits and `. _ - : / + # @` starting with a letter or digit";

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '+' | '#' | '@')
}

fn is_canonical_integer(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 12
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

/// Compares text with runs of digits compared as numbers, so `T2 < T10`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb)).then_with(|| da.cmp(&db));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits.iter().position(|&d| d != b'0').unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> TaskId {
        TaskId::parse(text).unwrap()
    }

    #[test]
    fn integer_text_is_the_integer() {
        assert_eq!(id("7"), TaskId::from_integer(7).unwrap());
        assert_eq!(id("7").as_integer(), Some(7));
        assert_eq!(id("07").as_integer(), None);
        assert_eq!(id("3.2").as_integer(), None);
    }

    #[test]
    fn rejects_what_cannot_be_an_id() {
        for bad in ["", "a b", "{{x}}", "-x", "a\"b", "é", &"x".repeat(200)] {
            assert!(TaskId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(TaskId::from_integer(-1).is_err());
        assert_eq!(TaskId::from_integer(MAX_INTEGER_ID + 1).unwrap().as_integer(), None, "kept as text");
        assert_eq!(TaskId::from_integer(MAX_INTEGER_ID + 1), TaskId::parse("1000000000000"));
    }

    #[test]
    fn orders_naturally() {
        let mut ids: Vec<TaskId> = ["T10", "b", "10", "T2", "2", "T1"].iter().map(|s| id(s)).collect();
        ids.sort();
        let texts: Vec<&str> = ids.iter().map(TaskId::as_str).collect();
        assert_eq!(texts, ["2", "10", "T1", "T2", "T10", "b"]);
    }
}
