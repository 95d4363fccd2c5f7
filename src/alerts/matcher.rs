//! Alertmanager's matchers, as `[alerts] matchers` and `alert_matchers`
//! write them: `severity=~"critical|page", service="fastpath"`, with the
//! four operators `=`, `!=`, `=~`, `!~`, quoted or unquoted values, and
//! optional surrounding braces (`{severity="page"}`), as `amtool` and
//! Alertmanager's API take them. Pure: parsing and the canonical text that
//! goes to Alertmanager's `filter` parameter.
//!
//! A regular expression is fully anchored, as in Alertmanager: `=~"crit"`
//! matches the value `crit` only, not `critical`. Its syntax is checked
//! here (RE2's, as Rust's `regex-syntax` reads it, which refuses what RE2
//! refuses: look-around, back-references), so a mistyped one is an error
//! in the configuration, not at deploy time.

use std::fmt;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`: equal.
    Equal,
    /// `!=`: not equal.
    NotEqual,
    /// `=~`: matches the (anchored) regular expression.
    Regex,
    /// `!~`: does not match it.
    NotRegex,
}

impl Op {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Equal => "=",
            Op::NotEqual => "!=",
            Op::Regex => "=~",
            Op::NotRegex => "!~",
        }
    }
}

/// One matcher: a label name, an operator, a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// The label's name.
    pub name: String,
    /// The comparison.
    pub op: Op,
    /// The value (unquoted, escapes resolved), or the regular expression.
    pub value: String,
}

/// The canonical form, always quoted: `severity=~"critical|page"`. This
/// is the text sent as Alertmanager's `filter`, which reads it back as the
/// same matcher.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// Why a list of matchers was refused: the matcher at fault (as written)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMatcher {
    /// The matcher as written (trimmed), or the whole text.
    pub matcher: String,
    /// What is wrong.
    pub reason: String,
}

/// What a matcher list may hold, for the `note:` of an error.
pub const ACCEPTED: &str = "accepted: Alertmanager's matchers separated by commas, each \
     `label=value`, `label!=value`, `label=~regex` or `label!~regex`, the value quoted \
     (`\"...\"`, with `\\\"` and `\\\\` inside) or not, e.g. \
     `severity=~\"critical|page\", service=\"fastpath\"`; label names are letters, digits, \
     `_` and `:`, not starting with a digit";

/// Parse a comma-separated list of matchers (optionally in braces). An
/// empty list (or `{}`) is an error: leave the key out instead.
pub fn parse_list(text: &str) -> Result<Vec<Matcher>, BadMatcher> {
    let whole = text.trim();
    let inner = match whole.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}').ok_or_else(|| BadMatcher {
            matcher: whole.to_string(),
            reason: "it opens with `{` but does not end with `}`".into(),
        })?,
        None => whole,
    };
    let pieces = split_commas(inner).map_err(|piece| BadMatcher {
        matcher: piece,
        reason: "a quoted value is not closed with `\"`".into(),
    })?;
    if pieces.iter().all(|p| p.trim().is_empty()) {
        return Err(BadMatcher {
            matcher: whole.to_string(),
            reason: "there is no matcher".into(),
        });
    }
    pieces.iter().map(|p| parse_one(p)).collect()
}

/// Split at the commas outside quotes; a piece whose quote is not closed
/// comes back as the error.
fn split_commas(text: &str) -> Result<Vec<&str>, String> {
    let mut pieces = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(text[start..].trim().to_string());
    }
    pieces.push(&text[start..]);
    Ok(pieces)
}

/// One matcher, `name OP value`, spaces allowed around each part.
fn parse_one(piece: &str) -> Result<Matcher, BadMatcher> {
    let written = piece.trim();
    let bad = |reason: &str| BadMatcher {
        matcher: written.to_string(),
        reason: reason.to_string(),
    };
    if written.is_empty() {
        return Err(bad(
            "an empty matcher (two commas in a row, or one at an end)",
        ));
    }
    let name_end = written
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(written.len());
    let name = &written[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad("it does not start with a label name"));
    }
    let rest = written[name_end..].trim_start();
    let (op, rest) = [
        ("=~", Op::Regex),
        ("!~", Op::NotRegex),
        ("!=", Op::NotEqual),
        ("=", Op::Equal),
    ]
    .iter()
    .find_map(|(text, op)| rest.strip_prefix(text).map(|r| (*op, r)))
    .ok_or_else(|| bad("the label name is not followed by `=`, `!=`, `=~` or `!~`"))?;
    let raw = rest.trim();
    let value = match raw.strip_prefix('"') {
        Some(quoted) => unquote(quoted).map_err(|reason| bad(&reason))?,
        None if raw.contains('"') => {
            return Err(bad(
                "an unquoted value holds a `\"`; quote the whole value: `\"...\"`",
            ))
        }
        None => raw.to_string(),
    };
    if matches!(op, Op::Regex | Op::NotRegex) {
        check_regex(&value).map_err(|reason| bad(&reason))?;
    }
    Ok(Matcher {
        name: name.to_string(),
        op,
        value,
    })
}

/// The value inside quotes (`quoted` starts after the opening one), its
/// escapes `\"`, `\\` and `\n` resolved; nothing may follow the closing
/// quote.
fn unquote(quoted: &str) -> Result<String, String> {
    let mut value = String::new();
    let mut chars = quoted.chars();
    loop {
        match chars.next() {
            None => return Err("a quoted value is not closed with `\"`".into()),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some('n') => value.push('\n'),
                Some(c) => {
                    return Err(format!(
                        "`\\{c}` in a quoted value: only `\\\"`, `\\\\` and `\\n` are escapes \
                         there (a regular expression's backslash is written `\\\\`)"
                    ))
                }
                None => return Err("a quoted value ends with a lone `\\`".into()),
            },
            Some(c) => value.push(c),
        }
    }
    let after: String = chars.collect();
    if !after.trim().is_empty() {
        return Err(format!(
            "`{}` follows the closing quote",
            crate::text::clipped_line(after.trim(), 40)
        ));
    }
    Ok(value)
}

/// A regular expression Alertmanager accepts: RE2 syntax, which
/// `regex-syntax` follows (checked anchored, as it will be used).
fn check_regex(pattern: &str) -> Result<(), String> {
    regex_syntax::Parser::new()
        .parse(&format!("^(?:{pattern})$"))
        .map(drop)
        .map_err(|e| {
            let first = e.to_string();
            let why = first
                .lines()
                .rev()
                .find(|l| l.starts_with("error:"))
                .unwrap_or("not a regular expression")
                .trim_start_matches("error:")
                .trim()
                .to_string();
            format!("`{pattern}` is not a valid regular expression: {why}")
        })
}

/// Matchers as one line, in their canonical form: `a="x", b=~"y|z"`.
pub fn describe(matchers: &[Matcher]) -> String {
    matchers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, op: Op, value: &str) -> Matcher {
        Matcher {
            name: name.into(),
            op,
            value: value.into(),
        }
    }

    #[test]
    fn the_four_operators_quoted_or_not() {
        assert_eq!(
            parse_list(r#"severity=~"critical|page", service="fastpath""#).unwrap(),
            vec![
                m("severity", Op::Regex, "critical|page"),
                m("service", Op::Equal, "fastpath")
            ]
        );
        assert_eq!(
            parse_list("a != b ,c!~x.*, d=").unwrap(),
            vec![
                m("a", Op::NotEqual, "b"),
                m("c", Op::NotRegex, "x.*"),
                m("d", Op::Equal, "")
            ]
        );
        assert_eq!(
            parse_list(r#"{ job="api",env:x=~"p.*" }"#).unwrap(),
            vec![m("job", Op::Equal, "api"), m("env:x", Op::Regex, "p.*")]
        );
    }

    #[test]
    fn commas_and_escapes_inside_quotes_are_the_value_s() {
        assert_eq!(
            parse_list(r#"summary="a, b", q="say \"hi\"\\", r=~"\\d+""#).unwrap(),
            vec![
                m("summary", Op::Equal, "a, b"),
                m("q", Op::Equal, "say \"hi\"\\"),
                m("r", Op::Regex, "\\d+")
            ]
        );
    }

    #[test]
    fn the_canonical_text_reads_back_as_the_same_matcher() {
        let parsed = parse_list(r#"a="x, \"y\"", b=~"p|q", c!=z, d!~"\\w+", e="line\n""#).unwrap();
        let text = describe(&parsed);
        assert_eq!(parse_list(&text).unwrap(), parsed);
        assert_eq!(parsed[4].to_string(), r#"e="line\n""#);
        assert_eq!(parsed[2].to_string(), r#"c!="z""#);
    }

    #[test]
    fn faults_name_the_matcher_at_fault() {
        let err = |t: &str| parse_list(t).unwrap_err();
        assert_eq!(err(r#"a="x", 9b="y""#).matcher, r#"9b="y""#);
        assert!(err(r#"a="x", 9b="y""#).reason.contains("label name"));
        assert!(err("severity~critical").reason.contains("`=`, `!=`"));
        assert_eq!(err(r#"a="x", b="unclosed"#).matcher, r#"b="unclosed"#);
        assert!(err(r#"a="x" y"#)
            .reason
            .contains("follows the closing quote"));
        assert!(err(r#"a=x"y""#).reason.contains("unquoted value"));
        assert!(err(r#"a=x"y"#).reason.contains("not closed"));
        assert!(err("a=x,,b=y").reason.contains("empty matcher"));
        assert!(err("a=x,").reason.contains("empty matcher"));
        assert!(err("{a=x").reason.contains("`}`"));
        assert!(err("{}").reason.contains("no matcher"));
        assert!(err("   ").reason.contains("no matcher"));
        assert!(err(r#"a="\d""#).reason.contains("escapes"));
    }

    #[test]
    fn regular_expressions_are_checked_as_re2_would() {
        let err = |t: &str| parse_list(t).unwrap_err().reason;
        assert!(err("sev=~\"(crit\"").contains("not a valid regular expression"));
        // RE2 has no look-around nor back-references
        assert!(err("sev=~\"(?=x)\"").contains("not a valid"));
        assert!(err(r#"sev!~"(a)\\1""#).contains("not a valid"));
        // `|` at the top level stays inside the anchors
        assert!(parse_list("sev=~a|b").is_ok());
        // an `=` value is no regular expression
        assert!(parse_list("sev=(crit").is_ok());
    }
}
