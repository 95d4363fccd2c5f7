//! Templates of a gate's `url` and `query`: text with `{host}`,
//! `{address}`, `{stage}`, `{package}` and `{version}`, parsed once when
//! the configuration is read (an unknown placeholder is an error then),
//! filled in per host with each value escaped for where it goes.
//!
//! A placeholder is `{` then a lower-case word then `}`; any other brace
//! is text, so PromQL's label matchers (`up{job="api"}`) need no escaping.

use std::fmt;

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &["host", "address", "stage", "package", "version"];

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(Slot),
}

/// A placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Host,
    Address,
    Stage,
    Package,
    Version,
}

/// How a value is escaped where it is put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inside a PromQL double-quoted string: `\`, `"` and a newline are
    /// written `\\`, `\"` and `\n`.
    PromQl,
    /// In a URL: every byte but the unreserved ones (letters, digits,
    /// `-`, `.`, `_`, `~`) percent-encoded.
    Url,
}

/// What the placeholders stand for, for one host of one attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    /// The host as named in deployer.ini.
    pub host: String,
    /// The address deployer connects to (the ssh config's `HostName`).
    pub address: String,
    /// The stage.
    pub stage: String,
    /// The package.
    pub package: String,
    /// The version deployed.
    pub version: String,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    written: String,
}

impl Template {
    /// Parse `text`; the error names the unknown placeholder.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let word_len = after
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
                .count();
            if word_len > 0 && after[word_len..].starts_with('}') {
                let word = &after[..word_len];
                let slot = match word {
                    "host" => Slot::Host,
                    "address" => Slot::Address,
                    "stage" => Slot::Stage,
                    "package" => Slot::Package,
                    "version" => Slot::Version,
                    _ => {
                        let known: Vec<String> =
                            PLACEHOLDERS.iter().map(|p| format!("`{{{p}}}`")).collect();
                        return Err(format!(
                            "unknown placeholder `{{{word}}}` (known: {})",
                            known.join(", ")
                        ));
                    }
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Slot(slot));
                rest = &after[word_len + 1..];
            } else {
                literal.push('{');
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template {
            pieces,
            written: text.to_string(),
        })
    }

    /// The text with every placeholder filled in, each value escaped.
    pub fn render(&self, values: &Values, escape: Escape) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot(slot) => {
                    let value = match slot {
                        Slot::Host => &values.host,
                        Slot::Address => &values.address,
                        Slot::Stage => &values.stage,
                        Slot::Package => &values.package,
                        Slot::Version => &values.version,
                    };
                    match escape {
                        Escape::PromQl => out.push_str(&promql_escaped(value)),
                        Escape::Url => out.push_str(&percent_encoded(value)),
                    }
                }
            }
        }
        out
    }

    /// Whether the template names the host (`{host}` or `{address}`).
    pub fn per_host(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Slot(Slot::Host | Slot::Address)))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.written
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// `value` made safe inside a PromQL double-quoted string.
pub fn promql_escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `value` percent-encoded for any part of a URL.
pub fn percent_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values {
            host: "web-1".into(),
            address: "10.0.0.7".into(),
            stage: "prod".into(),
            package: "fastpath".into(),
            version: "1.2~rc1+b2".into(),
        }
    }

    #[test]
    fn placeholders_are_filled_and_braces_of_promql_kept() {
        let t = Template::parse(
            r#"sum(rate(errors{host="{host}",stage="{stage}"}[1m])) / {package} {version} {address}"#,
        )
        .unwrap();
        assert_eq!(
            t.render(&values(), Escape::PromQl),
            r#"sum(rate(errors{host="web-1",stage="prod"}[1m])) / fastpath 1.2~rc1+b2 10.0.0.7"#
        );
        assert!(t.per_host());
        assert!(!Template::parse("up{}").unwrap().per_host());
        assert_eq!(
            Template::parse("a{} {x=\"1\"} {")
                .unwrap()
                .render(&values(), Escape::Url),
            "a{} {x=\"1\"} {"
        );
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        let e = Template::parse("http://{hots}/health").unwrap_err();
        assert!(e.contains("`{hots}`"), "{e}");
        assert!(e.contains("`{host}`"), "{e}");
        assert!(Template::parse("{Host}").is_ok(), "not a placeholder: text");
    }

    #[test]
    fn promql_values_are_escaped() {
        let v = Values {
            host: "a\"b\\c\nd".into(),
            ..values()
        };
        let t = Template::parse(r#"x{host="{host}"}"#).unwrap();
        assert_eq!(t.render(&v, Escape::PromQl), r#"x{host="a\"b\\c\nd"}"#);
    }

    #[test]
    fn url_values_are_percent_encoded() {
        let v = Values {
            host: "a b/c?d&e=f#g%".into(),
            version: "1:2.0~rc1+b1".into(),
            ..values()
        };
        let t = Template::parse("http://h/health?host={host}&v={version}").unwrap();
        assert_eq!(
            t.render(&v, Escape::Url),
            "http://h/health?host=a%20b%2Fc%3Fd%26e%3Df%23g%25&v=1%3A2.0~rc1%2Bb1"
        );
        assert_eq!(percent_encoded("é"), "%C3%A9");
    }
}
