//! The one reader of deployer.ini's text: lines in, sections of
//! `key`/value/line [`Entry`]s out, read the way Python's `ConfigParser`
//! (which read the original tool's file) reads them.
//!
//! - `[name]` starts a section; `[kind: name]` means `[kind:name]`, and a
//!   section name keeps its case (as in `ConfigParser`).
//! - `key = value` or `key: value`, split at the first `=` or `:`; keys are
//!   compared in lower case (`ConfigParser`'s `optionxform`), values are
//!   trimmed and taken as written: no quotes, escapes or interpolation.
//! - A line indented deeper than its key's line continues the value (joined
//!   with `\n`); a ` \` ending a line that is continued is dropped, as the
//!   files of earlier deployer versions wrote it.
//! - Whole lines starting with `#` or `;`, indented or not, are comments,
//!   also between the lines of a value; blank lines are skipped.
//! - A UTF-8 byte order mark at the very start is ignored; `\r\n` line ends
//!   are accepted.
//!
//! This module knows no section or key names (that is `schema`'s table)
//! and checks no values (`value`'s grammars): it only says what was
//! written, where.

/// One `key = value` setting, possibly continued on indented lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key in lower case: what lookups compare.
    pub key: String,
    /// The key as written, for messages.
    pub written: String,
    /// The value, trimmed; continuation lines are joined with `\n` (blank
    /// lines between them kept as empty lines, as `ConfigParser` does).
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
    /// The continuation lines, trimmed, with their line numbers.
    pub continued: Vec<(usize, String)>,
}

/// One `[section]` and its settings, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name between the brackets, spaces around a `:` removed.
    pub name: String,
    /// 1-based line of the header.
    pub line: usize,
    /// The settings, in file order; no two share a key.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The setting whose key is `key` (lower case).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// A whole file: settings before the first header, then the sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Settings before any section header.
    pub general: Vec<Entry>,
    /// The sections, in file order; no two share a name.
    pub sections: Vec<Section>,
}

impl Document {
    /// The section called `name`, exactly (section names keep their case).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

/// A line that cannot be read: where, what, and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// 1-based line at fault.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// What would be accepted.
    pub note: String,
}

fn fail(line: usize, message: impl Into<String>, note: impl Into<String>) -> ScanError {
    ScanError {
        line,
        message: message.into(),
        note: note.into(),
    }
}

/// What an indented line that continues a value (given trimmed) looks like
/// when it looks like a line of its own (a header or a setting deployer
/// knows); `None` when it may well be part of the value.
pub type Misplaced<'f> = &'f dyn Fn(&str) -> Option<String>;

/// Read `text` into sections and settings; the first malformed line is an
/// error, and so is a continuation line that `misplaced` recognises as a
/// line of its own (`ConfigParser` would silently add it to the value).
pub fn scan(text: &str, misplaced: Misplaced<'_>) -> Result<Document, ScanError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut doc = Document::default();
    // Indentation of the line that started the current setting; deeper
    // lines continue it.
    let mut indent_level = 0;
    // Whether the last line read started or continued a setting (after a
    // header, nothing can be continued).
    let mut in_entry = false;
    // Blank lines since the last line of the current setting: kept inside a
    // value (as `ConfigParser` does) when a continuation line follows.
    let mut blanks = 0;
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let t = raw.trim();
        if t.is_empty() {
            blanks += 1;
            continue;
        }
        if t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
        if in_entry && indent > indent_level {
            if let Some(what) = misplaced(t) {
                let entry = last_entry(&mut doc).expect("in_entry means there is one");
                return Err(fail(
                    line,
                    format!(
                        "line {line} is indented, so it continues the value of `{}` from \
                         line {}, but it looks like {what}",
                        entry.written, entry.line
                    ),
                    "a line indented deeper than the key above it continues that key's value \
                     (as in Python's ConfigParser); remove the indentation at the start of \
                     this line",
                ));
            }
            let entry = last_entry(&mut doc).expect("in_entry means there is one");
            if let Some(kept) = entry.value.strip_suffix('\\') {
                entry.value = kept.trim_end().to_string();
            }
            for _ in 0..=blanks {
                entry.value.push('\n');
            }
            blanks = 0;
            entry.value.push_str(t);
            entry.continued.push((line, t.to_string()));
            continue;
        }
        if in_entry {
            check_no_dangling_backslash(&doc, Some(line))?;
        }
        blanks = 0;
        indent_level = indent;
        if let Some(header) = t.strip_prefix('[') {
            in_entry = false;
            let name = section_name(header, t, line)?;
            if let Some(first) = doc.section(&name) {
                return Err(fail(
                    line,
                    format!(
                        "section `[{name}]` appears twice, on lines {} and {line}",
                        first.line
                    ),
                    "merge the two sections into one",
                ));
            }
            doc.sections.push(Section {
                name,
                line,
                entries: Vec::new(),
            });
            continue;
        }
        let entry = setting(t, line)?;
        if let Some(section) = doc.sections.last_mut() {
            if let Some(first) = section.get(&entry.key) {
                return Err(fail(
                    line,
                    format!(
                        "key `{}` appears twice in `[{}]`, on lines {} and {line}",
                        entry.key, section.name, first.line
                    ),
                    "keep one of them; a long list may go on in indented lines below its key",
                ));
            }
            section.entries.push(entry);
        } else {
            doc.general.push(entry);
        }
        in_entry = true;
    }
    if in_entry {
        check_no_dangling_backslash(&doc, None)?;
    }
    Ok(doc)
}

/// The setting read last, which indented lines continue.
fn last_entry(doc: &mut Document) -> Option<&mut Entry> {
    match doc.sections.last_mut() {
        Some(section) => section.entries.last_mut(),
        None => doc.general.last_mut(),
    }
}

/// A value may end a line with `\` only when an indented line continues it:
/// earlier deployer versions also joined an unindented next line, which
/// `ConfigParser` (and now deployer) reads as a setting of its own.
fn check_no_dangling_backslash(doc: &Document, next_line: Option<usize>) -> Result<(), ScanError> {
    let entry = match doc.sections.last() {
        Some(section) => section.entries.last(),
        None => doc.general.last(),
    };
    let Some(entry) = entry else { return Ok(()) };
    if !entry.value.ends_with('\\') {
        return Ok(());
    }
    let last = entry.continued.last().map_or(entry.line, |(l, _)| *l);
    Err(fail(
        last,
        match next_line {
            Some(next) => format!(
                "the value of `{}` ends with `\\`, but line {next} does not continue it",
                entry.written
            ),
            None => format!(
                "the value of `{}` ends with `\\`, but the file ends there",
                entry.written
            ),
        },
        "a value goes on in lines indented deeper than its key (no `\\` needed); \
         remove the `\\`, or indent the lines that continue the value",
    ))
}

/// The name in a header line `t` (`header` is `t` after its `[`).
fn section_name(header: &str, t: &str, line: usize) -> Result<String, ScanError> {
    let Some(end) = header.find(']') else {
        return Err(fail(
            line,
            format!("section header `{t}` has no closing `]`"),
            "a section header is a whole line like `[environment]` or `[stage:prod]`",
        ));
    };
    // `[stage: prod]` means `[stage:prod]`.
    let name = match header[..end].split_once(':') {
        Some((kind, rest)) => format!("{}:{}", kind.trim(), rest.trim()),
        None => header[..end].trim().to_string(),
    };
    let after = header[end + 1..].trim();
    if !after.is_empty() {
        return Err(fail(
            line,
            format!("unexpected `{after}` after the section header `[{name}]`"),
            "comments must be on a line of their own, starting with `#` or `;`",
        ));
    }
    if name.is_empty() {
        return Err(fail(
            line,
            "empty section header `[]`",
            "name the section, like `[environment]` or `[stage:prod]`",
        ));
    }
    Ok(name)
}

/// A `key = value` or `key: value` line, already trimmed.
fn setting(t: &str, line: usize) -> Result<Entry, ScanError> {
    let Some(separator) = t.find(['=', ':']) else {
        return Err(fail(
            line,
            format!("`{t}` is neither a `[section]` header nor a `key = value` setting"),
            "write `key = value`; comments start with `#` or `;` at the start of a line",
        ));
    };
    let written = t[..separator].trim();
    if written.is_empty() {
        return Err(fail(
            line,
            format!(
                "the setting `{t}` has no key before `{}`",
                &t[separator..=separator]
            ),
            "write `key = value`",
        ));
    }
    Ok(Entry {
        key: written.to_lowercase(),
        written: written.to_string(),
        value: t[separator + 1..].trim().to_string(),
        line,
        continued: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;

    fn scan_plain(text: &str) -> Result<Document, ScanError> {
        scan(text, &|_| None)
    }

    fn entries(doc: &Document, section: &str) -> Vec<(String, String, usize)> {
        doc.section(section)
            .unwrap()
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone(), e.line))
            .collect()
    }

    fn owned(v: &[(&str, &str, usize)]) -> Vec<(String, String, usize)> {
        v.iter()
            .map(|(k, v, l)| (k.to_string(), v.to_string(), *l))
            .collect()
    }

    #[test]
    fn sections_keys_values_and_lines() {
        let doc = scan_plain("# top\nx = 1\n[a]\nk = v w\n\n; c\nk2: v2\n[b:c]\n").unwrap();
        assert_eq!(doc.general[0].key, "x");
        assert_eq!(doc.general[0].line, 2);
        assert_eq!(
            entries(&doc, "a"),
            owned(&[("k", "v w", 4), ("k2", "v2", 7)])
        );
        assert_eq!(doc.section("b:c").unwrap().line, 8);
        assert!(doc.section("b:c").unwrap().entries.is_empty());
    }

    #[test]
    fn first_separator_wins_and_values_are_taken_as_written() {
        let doc =
            scan_plain("[a]\nurl = http://x:1/?a=b\nk: v = w\nq = \"a\\tb\" %(x)s\n").unwrap();
        assert_eq!(
            entries(&doc, "a"),
            owned(&[
                ("url", "http://x:1/?a=b", 2),
                ("k", "v = w", 3),
                ("q", "\"a\\tb\" %(x)s", 4),
            ])
        );
    }

    #[test]
    fn indented_lines_continue_the_value() {
        let doc = scan_plain("[a]\nk = one\n  two\n\n  # a comment\n\tthree\nnext = x\n").unwrap();
        let k = doc.section("a").unwrap().get("k").unwrap();
        assert_eq!(k.value, "one\ntwo\n\nthree");
        assert_eq!(
            k.continued,
            [(3, "two".to_string()), (6, "three".to_string())]
        );
        assert_eq!(doc.section("a").unwrap().get("next").unwrap().line, 7);
    }

    #[test]
    fn continuation_is_relative_to_the_key_indentation() {
        // Keys indented alike are separate settings; deeper is continuation.
        let doc = scan_plain("[a]\n  k = 1\n  j = 2\n    more\n").unwrap();
        assert_eq!(
            entries(&doc, "a"),
            owned(&[("k", "1", 2), ("j", "2\nmore", 3)])
        );
        // A section header ends the value: an indented key after it is a key.
        let doc = scan_plain("[a]\nk = 1\n[b]\n   j = 2\n").unwrap();
        assert_eq!(entries(&doc, "b"), owned(&[("j", "2", 4)]));
    }

    #[test]
    fn a_backslash_before_a_continued_line_is_dropped() {
        let doc = scan_plain("[a]\nk = p1 \\\n  p2 \\\n  p3\n").unwrap();
        assert_eq!(
            doc.section("a").unwrap().get("k").unwrap().value,
            "p1\np2\np3"
        );
        let e = scan_plain("[a]\nk = p1 \\\np2 = x\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            e.message,
            "the value of `k` ends with `\\`, but line 3 does not continue it"
        );
        let e = scan_plain("[a]\nk = p1 \\").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn duplicates_are_refused_with_both_lines() {
        let e = scan_plain("[a]\n[b]\n[a]\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.message, "section `[a]` appears twice, on lines 1 and 3");
        let e = scan_plain("[a]\nk = 1\nk = 2\n").unwrap_err();
        assert_eq!(
            e.message,
            "key `k` appears twice in `[a]`, on lines 2 and 3"
        );
    }

    /// The settings of a scanned document as `ConfigParser` gives them:
    /// section -> key -> value.
    type Settings = BTreeMap<String, BTreeMap<String, String>>;

    /// What Python's `configparser` (defaults but no interpolation, which
    /// deployer does not do) makes of each text: its settings, or `None`
    /// when it refuses the text. `None` overall when python3 cannot run.
    fn python_configparser(corpus: &[&str]) -> Option<Vec<Option<Settings>>> {
        const SCRIPT: &str = r#"
import configparser, json, sys
out = []
for text in json.load(sys.stdin):
    text = text.encode().decode("utf-8-sig")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
        out.append({s: dict(parser[s]) for s in parser.sections()})
    except configparser.Error:
        out.append(None)
print(json.dumps(out))
"#;
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let input = serde_json::to_vec(corpus).unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "python3 failed: {output:?}");
        Some(serde_json::from_slice(&output.stdout).unwrap())
    }

    /// The oracle: on texts where deployer means to read exactly what
    /// `ConfigParser` reads, both agree on every section, key and value,
    /// and on which texts are refused.
    #[test]
    fn reads_like_python_configparser() {
        let corpus = [
            "[a]\nk = v\n",
            "\u{feff}[a]\nk = v\n",
            "[a]\r\nKey = V w\r\nOTHER: x\r\n",
            "[a]\nk: v = w\nurl = http://h:1/p?q=r\n",
            "[a]\nk = one\n  two\n\n  # comment\n\tthree\nj = x\n",
            "[a]\nk = one\n\n\nj = x\n",
            "[a]\nk =\n  one\n  two\n",
            "[a]\n  k = 1\n  j = 2\n    more\n[B]\n   x = y\n",
            "[a]\nk = v # not a comment\nj = w ; nor this\n",
            "# top\n; top\n[a]\n    # indented\n  ; indented\nk = v\n",
            "[a]\nk = v\n  [b]\n",
            "[a]\nk = \"quoted\" 'single' \\t %(x)s $HOME\n",
            "[a]\nk = v\n[A]\nk = w\n",
            "[a]\nk = 1\nK = 2\n",
            "[a]\n[a]\n",
            "[a]\nnovalue\n",
            "[a]\n= v\n",
            "[a]\nk =\n",
            // Indentation is counted in characters: a tab is one, like a space.
            "[a]\n\tk = 1\n  j = 2\n",
            "[a]\nk = v\n[b]\n  x = 1\n    y\n  z: 2\n",
            "[a]\nk = [2001:db8::1]:22\n  web2:2222\n",
            include_str!("../../deployer.ini.example"),
        ];
        let Some(python) = python_configparser(&corpus) else {
            crate::test_skip::skip("python3 cannot be run");
            return;
        };
        for (text, want) in corpus.iter().zip(python) {
            let got = scan_plain(text).ok().map(|doc| {
                doc.sections
                    .iter()
                    .map(|s| {
                        let keys = s.entries.iter().map(|e| (e.key.clone(), e.value.clone()));
                        (s.name.clone(), keys.collect())
                    })
                    .collect::<Settings>()
            });
            assert_eq!(got, want, "{text:?}");
        }
    }
}
