//! Debian changelogs (`debian/changelog`, installed as
//! `usr/share/doc/PKG/changelog.Debian.gz`): parsed following dpkg's rules
//! (deb-changelog(5), `Dpkg::Changelog::Debian`), the entries between two
//! versions selected, and the review of what a deploy sends out (or takes
//! back) rendered for people and for scripts.
//!
//! Tolerant by contract: nothing here fails. An entry with a missing
//! trailer or an odd line is kept with a note; a text without a single
//! entry is a note. Pure: takes text, returns values. Fetching the
//! changelog from a host is the caller's job; [`fetch_command`] only builds
//! the command.

use std::fmt::Write as _;

use crate::command::RemoteCommand;
use crate::version::Version;

/// One entry of a changelog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The source package named in the heading.
    pub source: String,
    /// The version, as written in the heading.
    #[serde(rename = "version")]
    pub version_text: String,
    /// The version, when it is a valid Debian version.
    #[serde(skip)]
    pub version: Option<Version>,
    /// The distributions of the heading (`unstable`, `bookworm-security`).
    pub distributions: Vec<String>,
    /// The urgency, its first word lower-cased (as dpkg reports it).
    pub urgency: Option<String>,
    /// Who signed the entry, `Name <email>`, from the trailer.
    pub author: Option<String>,
    /// The date of the trailer, as written.
    pub date: Option<String>,
    /// The change lines as written, blank lines between them kept, leading
    /// and trailing blank lines dropped.
    pub changes: Vec<String>,
    /// What was odd about this entry (a missing trailer, a bad line).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Entry {
    fn new(source: &str, version: &str) -> Entry {
        Entry {
            source: source.to_string(),
            version_text: version.to_string(),
            version: version.parse().ok(),
            distributions: Vec::new(),
            urgency: None,
            author: None,
            date: None,
            changes: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The first `n` change lines that say something, trimmed.
    pub fn first_lines(&self, n: usize) -> Vec<&str> {
        self.changes
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .take(n)
            .collect()
    }
}

/// A parsed changelog: its entries in file order (newest first, as
/// written), and notes about lines that do not follow the format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changelog {
    /// The entries, in file order.
    pub entries: Vec<Entry>,
    /// Problems that belong to no entry (or the whole text), with line
    /// numbers.
    pub notes: Vec<String>,
}

/// Where the parser is, as dpkg names it in its messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    FirstHeading,
    StartChanges,
    ChangesOrTrailer,
    NextOrEof,
}

impl Expect {
    fn name(self) -> &'static str {
        match self {
            Expect::FirstHeading => "first heading",
            Expect::StartChanges => "start of change data",
            Expect::ChangesOrTrailer => "more change data or trailer",
            Expect::NextOrEof => "next heading or end of file",
        }
    }
}

/// The most notes kept per changelog: a file that is not a changelog at
/// all would otherwise give one per line.
const NOTES_MAX: usize = 20;

/// Parse a changelog's text. Lines are handled as dpkg-parsechangelog
/// handles them: headings start entries, indented lines are changes, the
/// ` -- ` trailer ends an entry; Emacs/Vim trailers and the old changelog
/// formats end the parse; comments and RCS keywords are skipped.
pub fn parse(text: &str) -> Changelog {
    let mut log = Changelog::default();
    let mut expect = Expect::FirstHeading;
    let mut entry: Option<Entry> = None;
    let mut blanks = 0usize;
    let mut unknown = 0usize;
    let note = |log: &mut Changelog, entry: &mut Option<Entry>, n: usize, what: String| {
        let text = format!("line {n}: {what}");
        match entry {
            Some(e) if e.notes.len() < NOTES_MAX => e.notes.push(text),
            Some(_) => {}
            None if log.notes.len() < NOTES_MAX => log.notes.push(text),
            None => {}
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(h) = parse_header(line) {
            if expect != Expect::FirstHeading && expect != Expect::NextOrEof {
                note(
                    &mut log,
                    &mut entry,
                    n,
                    format!("found a heading where {} was expected", expect.name()),
                );
            }
            log.entries.extend(entry.take());
            let (e, problems) = h;
            entry = Some(e);
            for p in problems {
                note(&mut log, &mut entry, n, p);
            }
            expect = Expect::StartChanges;
            blanks = 0;
        } else if is_end_marker(line) {
            break;
        } else if is_skipped(line) {
            continue;
        } else if line.starts_with(|c: char| !c.is_whitespace()) {
            note(
                &mut log,
                &mut entry,
                n,
                format!(
                    "badly formatted heading line: {}",
                    crate::text::clipped_line(line, 80)
                ),
            );
        } else if let Some((author, date, problems)) = parse_trailer(line) {
            if expect != Expect::ChangesOrTrailer {
                note(
                    &mut log,
                    &mut entry,
                    n,
                    format!("found a trailer where {} was expected", expect.name()),
                );
            }
            if let Some(e) = entry.as_mut() {
                e.author = Some(author);
                e.date = Some(date);
            }
            for p in problems {
                note(&mut log, &mut entry, n, p);
            }
            blanks = 0;
            expect = Expect::NextOrEof;
        } else if line.starts_with(" --") {
            note(
                &mut log,
                &mut entry,
                n,
                "badly formatted trailer line".to_string(),
            );
        } else if is_change(line) {
            if expect != Expect::StartChanges && expect != Expect::ChangesOrTrailer {
                note(
                    &mut log,
                    &mut entry,
                    n,
                    format!("found change lines where {} was expected", expect.name()),
                );
                if expect == Expect::NextOrEof && entry.is_some() {
                    // a heading was missed: dpkg starts an unknown entry
                    unknown += 1;
                    log.entries.extend(entry.take());
                    entry = Some(Entry::new("unknown", &format!("unknown{unknown}")));
                }
            }
            let e = entry.get_or_insert_with(|| {
                unknown += 1;
                Entry::new("unknown", &format!("unknown{unknown}"))
            });
            e.changes.extend(std::iter::repeat_n(String::new(), blanks));
            e.changes.push(line.to_string());
            blanks = 0;
            expect = Expect::ChangesOrTrailer;
        } else if line.trim().is_empty() {
            if expect == Expect::ChangesOrTrailer {
                blanks += 1;
            } else if expect == Expect::FirstHeading {
                note(
                    &mut log,
                    &mut entry,
                    n,
                    format!("found a blank line where {} was expected", expect.name()),
                );
            }
        } else {
            note(
                &mut log,
                &mut entry,
                n,
                format!("unrecognized line: {}", crate::text::clipped_line(line, 80)),
            );
            // as dpkg: taken as change data only where none was expected
            if expect != Expect::StartChanges && expect != Expect::ChangesOrTrailer {
                if let Some(e) = entry.as_mut() {
                    e.changes.extend(std::iter::repeat_n(String::new(), blanks));
                    e.changes.push(line.to_string());
                    blanks = 0;
                    expect = Expect::ChangesOrTrailer;
                }
            }
        }
    }
    if let Some(mut e) = entry.take() {
        if expect != Expect::NextOrEof && e.notes.len() < NOTES_MAX {
            e.notes.push(format!(
                "the entry has no trailer (` -- Name <email>  date`): found the end where {} was expected",
                expect.name()
            ));
        }
        log.entries.push(e);
    }
    if log.entries.is_empty() && log.notes.is_empty() {
        log.notes.push(
            "no changelog entry found (no `source (version) dist; urgency=...` heading)".into(),
        );
    } else if log.entries.is_empty() {
        log.notes.insert(0, "no changelog entry found".to_string());
    }
    for e in &mut log.entries {
        if e.version.is_none() && e.source != "unknown" {
            e.notes.push(format!(
                "`{}` is not a valid Debian version; the entry cannot be placed",
                crate::text::one_line(&e.version_text)
            ));
        }
    }
    log
}

/// Lines after which dpkg stops reading: editor trailers and the old
/// changelog formats kept verbatim below the Debian ones.
fn is_end_marker(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let emacs = lower
        .strip_prefix(";;")
        .map_or(lower.as_str(), str::trim_start)
        .starts_with("local variables:");
    emacs || line.starts_with("vim:") || is_ancient(line)
}

/// The start of an older changelog format (dpkg's "ancient delimiter"):
/// dpkg keeps the rest of the file unparsed from there. Matched at the
/// start of the line, ignoring case, as dpkg does.
fn is_ancient(line: &str) -> bool {
    let lower = line.to_lowercase();
    gnu_dated(line)
        || old_heading(line)
        || debian_heading(&lower)
        || lower
            .strip_prefix("changes from version ")
            .is_some_and(|r| r.find(" to ").is_some_and(|t| r[t + 4..].contains(':')))
        || changes_for(&lower)
        || lower
            .strip_prefix("old changelog:")
            .is_some_and(|r| r.trim().is_empty())
        || lone_word(line)
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_word(w: &str) -> bool {
    !w.is_empty() && w.chars().all(word_char)
}

fn all_digits(w: &str, lo: usize, hi: usize) -> bool {
    (lo..=hi).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_digit())
}

/// `Mon Jan  1 12:00:00 CET 1996  Name <email>` or `Mon Jan 1, 1996 Name
/// <email>`: an entry of a GNU-style changelog.
fn gnu_dated(line: &str) -> bool {
    if line.starts_with(char::is_whitespace) {
        return false;
    }
    // what follows the year: white space, a name, white space, <email> or (email)
    let tail_ok = |rest: &str| {
        rest.char_indices().any(|(i, c)| {
            matches!(c, '<' | '(')
                && rest[..i].ends_with(char::is_whitespace)
                && rest[..i].chars().filter(|c| c.is_whitespace()).count() >= 2
                && rest[i + 1..].contains([')', '>'])
        })
    };
    let tokens: Vec<(usize, &str)> = line
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - line.as_ptr() as usize, w))
        .collect();
    let after = |k: usize| {
        let (at, w) = tokens[k];
        &line[at + w.len()..]
    };
    if tokens.len() < 4 || !is_word(tokens[0].1) || !is_word(tokens[1].1) {
        return false;
    }
    let day = tokens[2].1;
    // `1, 1996` / `1,1996` / `1 1996`
    if let Some((d, y)) = day.split_once(',') {
        if all_digits(d, 1, 2) {
            if all_digits(y, 4, 4) {
                return tail_ok(after(2));
            }
            if y.is_empty() && all_digits(tokens[3].1, 4, 4) {
                return tail_ok(after(3));
            }
        }
        return false;
    }
    if !all_digits(day, 1, 2) {
        return false;
    }
    if all_digits(tokens[3].1, 4, 4) && tail_ok(after(3)) {
        return true;
    }
    let time: Vec<&str> = tokens[3].1.split(':').collect();
    let timed = time.len() == 3 && time.iter().all(|p| all_digits(p, 1, 2));
    // exactly one space between the day and the time
    let one_space = line[tokens[2].0 + day.len()..tokens[3].0] == *" ";
    if !(timed && one_space) {
        return false;
    }
    tokens
        .iter()
        .enumerate()
        .skip(4)
        .take_while(|(_, (_, w))| is_word(w))
        .any(|(k, (_, w))| all_digits(w, 4, 4) && tail_ok(after(k)))
}

/// `pkg (version)` without options: an old heading.
fn old_heading(line: &str) -> bool {
    let Some(open) = line.find(" (") else {
        return false;
    };
    let name = &line[..open];
    let Some(first) = name.chars().next() else {
        return false;
    };
    if !word_char(first) || !name[first.len_utf8()..].chars().all(name_char) {
        return false;
    }
    let rest = &line[open + 2..];
    rest.find(')')
        .is_some_and(|c| c > 0 && !rest[..c].contains(['(', ' ', '\t']))
}

/// `pkg-1.0 Debian 3` (lower-cased): an ancient heading.
fn debian_heading(lower: &str) -> bool {
    let name = |c: char| word_char(c) || matches!(c, '.' | '+' | '-');
    lower.match_indices(" debian ").any(|(p, _)| {
        let before = &lower[..p];
        let after = &lower[p + 8..];
        let split = before
            .char_indices()
            .skip(1)
            .filter(|&(_, c)| c == '-' || c == ' ')
            .any(|(i, _)| {
                let (n, v) = (&before[..i], &before[i + 1..]);
                !n.is_empty()
                    && n.chars().all(name)
                    && !v.is_empty()
                    && !v.contains(char::is_whitespace)
            });
        split && after.starts_with(|c: char| !c.is_whitespace())
    })
}

/// `changes for pkg-1.0:` (lower-cased).
fn changes_for(lower: &str) -> bool {
    let Some(rest) = lower.strip_prefix("changes for ") else {
        return false;
    };
    let rest = rest.trim_end();
    let rest = rest.strip_suffix(':').unwrap_or(rest);
    let name = |c: char| word_char(c) || matches!(c, '.' | '+' | '-');
    rest.chars().all(name)
        && rest
            .char_indices()
            .any(|(i, c)| c == '-' && i > 0 && i + 1 < rest.len())
}

/// A line that is one version-like word (`1.0`, `2:1.0-1:`).
fn lone_word(line: &str) -> bool {
    let s = line.trim_end();
    let s = s.strip_suffix(':').unwrap_or(s);
    let ok = |w: &str| {
        w.starts_with(word_char)
            && w.chars()
                .all(|c| word_char(c) || matches!(c, '.' | '+' | '~' | '-'))
    };
    ok(s)
        || s.split_once(':')
            .is_some_and(|(e, w)| all_digits(e, 1, usize::MAX) && ok(w))
}

/// Lines dpkg skips: RCS keywords, `# ` and `/* */` comments.
fn is_skipped(line: &str) -> bool {
    let rcs = line.strip_prefix('$').is_some_and(|rest| {
        let word_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        word_len > 0 && rest[word_len..].starts_with(':') && rest[word_len + 1..].contains('$')
    });
    let comment = line.starts_with("# ")
        || line
            .strip_prefix("/*")
            .is_some_and(|rest| rest.contains("*/"));
    rcs || comment
}

/// Two or more white-space characters, then text.
fn is_change(line: &str) -> bool {
    let lead = line.len() - line.trim_start().len();
    let lead_chars = line[..lead].chars().count();
    lead_chars >= 2 && lead < line.len()
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')
}

/// `source (version) dist...; key=value, ...`: the entry it starts and
/// what is wrong with its options; `None` when the line is no heading.
fn parse_header(line: &str) -> Option<(Entry, Vec<String>)> {
    let first = line.chars().next()?;
    if !(first.is_alphanumeric() || first == '_') {
        return None;
    }
    let open = line.find(" (")?;
    let source = &line[..open];
    if !source[first.len_utf8()..].chars().all(name_char) {
        return None;
    }
    let after = &line[open + 2..];
    let close = after.find(')')?;
    let version = &after[..close];
    if version.is_empty() || version.contains(['(', ' ', '\t']) {
        return None;
    }
    let after = &after[close + 1..];
    let semi = after.find(';')?;
    let dists = &after[..semi];
    // one or more white-space separated names, at least one space first
    if !dists.starts_with(char::is_whitespace)
        || dists.trim().is_empty()
        || !dists.split_whitespace().all(|d| d.chars().all(name_char))
    {
        return None;
    }
    let mut e = Entry::new(source, version);
    e.distributions = dists.split_whitespace().map(str::to_string).collect();
    let mut problems = Vec::new();
    let options = after[semi + 1..].trim();
    let mut seen: Vec<String> = Vec::new();
    // as Perl's split: no field for an empty text, trailing empty ones dropped
    let mut opts: Vec<&str> = if options.is_empty() {
        Vec::new()
    } else {
        options.split(',').map(str::trim).collect()
    };
    while opts.last() == Some(&"") {
        opts.pop();
    }
    for opt in opts {
        let Some((key, value)) = opt.split_once('=') else {
            problems.push(format!(
                "bad key-value after `;`: `{}`",
                crate::text::one_line(opt)
            ));
            continue;
        };
        let value = value.trim();
        if key.is_empty()
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || value.is_empty()
        {
            problems.push(format!(
                "bad key-value after `;`: `{}`",
                crate::text::one_line(opt)
            ));
            continue;
        }
        let key = key.to_ascii_lowercase();
        if seen.contains(&key) {
            problems.push(format!("repeated key-value `{key}`"));
            continue;
        }
        seen.push(key.clone());
        if key == "urgency" {
            let word = value.split_whitespace().next().unwrap_or("");
            e.urgency = Some(word.to_lowercase());
        }
    }
    Some((e, problems))
}

/// ` -- Name <email>  date`: the author as `Name <email>`, the date as
/// written, and what is off about the line; `None` when it is no trailer.
fn parse_trailer(line: &str) -> Option<(String, String, Vec<String>)> {
    let rest = line.strip_prefix(" -- ")?;
    let rest = rest.trim_end();
    // the name is greedy: the last `>` followed by one or two spaces and a
    // date that runs to the end of the line
    for (pos, _) in rest
        .match_indices('>')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let after = &rest[pos + 1..];
        let (blanks, date) = if let Some(d) = after.strip_prefix("  ") {
            (2, d)
        } else if let Some(d) = after.strip_prefix(' ') {
            (1, d)
        } else {
            continue;
        };
        if !is_date(date) {
            continue;
        }
        let person = &rest[..pos];
        let Some(lt) = person.rfind(" <") else {
            continue;
        };
        let author = format!("{} <{}>", &person[..lt], &person[lt + 2..]);
        let mut problems = Vec::new();
        if blanks != 2 {
            problems.push(
                "badly formatted trailer line: one space before the date, two expected".to_string(),
            );
        }
        return Some((author, date.to_string(), problems));
    }
    None
}

/// `[Dow, ]DD Mon YYYY HH:MM:SS +ZZZZ`, loosely as dpkg's trailer regex
/// accepts it (any word for the day and month names).
fn is_date(s: &str) -> bool {
    let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_alphanumeric() || c == '_');
    let digits = |w: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_digit())
    };
    let s = match s.split_once(',') {
        Some((dow, rest)) if word(dow) => rest.trim_start(),
        Some(_) => return false,
        None => s,
    };
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return false;
    };
    let time_ok = {
        let t: Vec<&str> = time.split(':').collect();
        t.len() == 3 && digits(t[0], 1, 2) && digits(t[1], 2, 2) && digits(t[2], 2, 2)
    };
    digits(day, 1, 2)
        && !s.starts_with(char::is_whitespace)
        && word(month)
        && digits(year, 4, 4)
        && time_ok
        && (zone.starts_with('+') || zone.starts_with('-'))
        && digits(&zone[1..], 4, 4)
}

/// Which way a deploy goes for the hosts that start from one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The target is newer: the entries go out.
    Deploy,
    /// The target is older: the entries are taken back.
    Rollback,
}

/// The entries between `from` (what a host runs; `None` when it runs
/// nothing) and `to`, newest first. A deploy (`from < to`) selects
/// `from < v <= to`; a rollback (`to < from`) selects `to < v <= from`,
/// the entries taken back. Entries whose version is not valid are left
/// out (they carry a note).
pub fn select<'a>(
    entries: &'a [Entry],
    from: Option<&Version>,
    to: &Version,
) -> (Direction, Vec<&'a Entry>) {
    let rollback = from.is_some_and(|f| f > to);
    let keep = |v: &Version| match from {
        _ if rollback => v > to && Some(v) <= from,
        Some(f) => v > f && v <= to,
        None => v <= to,
    };
    let mut chosen: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.version.as_ref().is_some_and(keep))
        .collect();
    chosen.sort_by(|a, b| b.version.cmp(&a.version));
    let direction = if rollback {
        Direction::Rollback
    } else {
        Direction::Deploy
    };
    (direction, chosen)
}

/// The most bytes of changelog read from a host.
pub const FETCH_MAX: usize = 1 << 20;

/// The exit status of [`fetch_command`] when the package has no
/// `changelog.Debian.gz`.
pub const NO_CHANGELOG: i32 = 65;
/// The exit status of [`fetch_command`] when the version cannot be
/// downloaded.
pub const NO_PACKAGE: i32 = 66;

/// The command that prints, on a host, the changelog carried by `package`
/// at `version`: from `/var/cache/apt/archives` when the .deb is there,
/// else downloaded (`apt-get download`, as the login user, no sudo) into a
/// temporary directory. Only `usr/share/doc/PKG/changelog.Debian.gz` comes
/// out of the package, streamed through pipes and decompressed, its first
/// [`FETCH_MAX`] bytes kept: nothing of the package is unpacked on disk.
/// The temporary directory is removed on every way out (an error, the
/// end, `SIGTERM`/`SIGHUP`/`SIGINT`/`SIGPIPE` from a timeout or a lost
/// session). Exits [`NO_PACKAGE`] or [`NO_CHANGELOG`] (with the reason on
/// stderr) when there is none. Package and version are arguments, quoted.
pub fn fetch_command(package: &str, version: &Version) -> RemoteCommand {
    // "$1" package, "$2" version; every path is built from them inside
    // double quotes, never re-parsed by the shell. The changelog (text,
    // bounded) is held in a variable: `echo .` keeps its last newlines.
    // The clean-up ignores the signals that started it: ending a timed-out
    // command sends `SIGTERM` to its group twice (as root, then as the
    // user), and the second one must not kill `rm` half-way.
    let script = format!(
        r#"d=$(mktemp -d) || exit 1
trap 'trap "" TERM HUP INT PIPE; rm -rf "$d"' EXIT
trap 'exit 143' TERM HUP INT PIPE
cd "$d" || exit 1
v=$(printf %s "$2" | sed 's/:/%3a/')
f=
for c in /var/cache/apt/archives/"$1"_"$v"_*.deb; do [ -f "$c" ] && f=$c && break; done
if [ -z "$f" ]; then
  LC_ALL=C apt-get download -q "$1=$2" >out 2>&1 || {{ tail -n 3 out >&2; exit {NO_PACKAGE}; }}
  for c in ./*.deb; do [ -f "$c" ] && f=$c && break; done
  [ -n "$f" ] || {{ echo "apt-get download left no .deb" >&2; exit {NO_PACKAGE}; }}
fi
text=$({{ dpkg-deb --fsys-tarfile "$f" 2>err || echo failed >failed; }} | tar -xOf - "./usr/share/doc/$1/changelog.Debian.gz" "usr/share/doc/$1/changelog.Debian.gz" 2>/dev/null | gzip -dc 2>/dev/null | head -c {FETCH_MAX}; echo .)
text=${{text%.}}
if [ -z "$text" ]; then
  [ -e failed ] && {{ tail -n 3 err >&2; exit {NO_PACKAGE}; }}
  echo "no usr/share/doc/$1/changelog.Debian.gz in the package (or it is empty or a link)" >&2
  exit {NO_CHANGELOG}
fi
printf %s "$text""#
    );
    RemoteCommand::new("sh")
        .arg("-c")
        .arg(script)
        .arg("deployer-changelog")
        .arg(package)
        .arg(version.as_str())
        .named("changelog")
}

/// What one fetch gave: the parsed changelog, or why there is none (one
/// line, made safe).
pub type Fetched = Result<Changelog, String>;

/// Read the answer of [`fetch_command`]: exit status, stdout, stderr.
pub fn read_fetched(status: i32, stdout: &str, stderr: &str, dropped: u64) -> Fetched {
    let why = || crate::text::clipped_line(stderr.trim(), crate::text::REMOTE_TEXT_MAX);
    match status {
        0 => {
            let mut log = parse(stdout);
            if dropped > 0 || stdout.len() >= FETCH_MAX {
                log.notes.push(format!(
                    "the changelog is longer than {} KiB; only its beginning was read",
                    FETCH_MAX / 1024
                ));
            }
            Ok(log)
        }
        NO_CHANGELOG => Err(format!("the package carries no changelog ({})", why())),
        NO_PACKAGE => Err(format!("the package could not be fetched ({})", why())),
        s => Err(format!(
            "reading the changelog failed (exit status {s}){}",
            if why().is_empty() {
                String::new()
            } else {
                format!(": {}", why())
            }
        )),
    }
}

/// What a deploy of one package to one stage changes, per the target
/// version's changelog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Review {
    /// The package.
    pub package: String,
    /// The target version.
    pub version: String,
    /// The host the changelog was read on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_on: Option<String>,
    /// How many hosts start from each version (`None`: not installed),
    /// newest first.
    pub starting: Vec<Start>,
    /// Entries that go out to some host, newest first.
    pub going_out: Vec<Entry>,
    /// Entries taken back from some host (a rollback), newest first.
    pub taken_back: Vec<Entry>,
    /// Why the changelog could not be shown, or what was odd about it.
    pub notes: Vec<String>,
}

/// The hosts that start from one version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Start {
    /// The version they run (`None`: not installed).
    pub from: Option<String>,
    /// How many hosts.
    pub hosts: usize,
    /// Which way they go.
    pub direction: Option<Direction>,
}

/// Entries shown per direction in text; the rest are counted.
pub const ENTRIES_SHOWN: usize = 10;
/// Change lines shown per entry in text.
pub const LINES_SHOWN: usize = 3;
/// Notes about the entries shown kept in a review.
const NOTES_SHOWN: usize = 10;

impl Review {
    /// The review of moving hosts that run `starts` (one per host) to
    /// `version`, from what the fetch of its changelog gave (`fetched`)
    /// and, when some host runs a newer version (a rollback), the fetch of
    /// the newest such version's changelog (`newer`): only that one lists
    /// the entries taken back.
    pub fn new(
        package: &str,
        version: &Version,
        starts: &[Option<Version>],
        fetched: Fetched,
        newer: Option<Fetched>,
        read_on: Option<String>,
    ) -> Review {
        let mut counts: Vec<(Option<Version>, usize)> = Vec::new();
        for s in starts {
            match counts.iter_mut().find(|(v, _)| v == s) {
                Some((_, n)) => *n += 1,
                None => counts.push((s.clone(), 1)),
            }
        }
        counts.sort_by(|a, b| b.0.cmp(&a.0));
        let starting = counts
            .iter()
            .map(|(v, n)| Start {
                from: v.as_ref().map(ToString::to_string),
                hosts: *n,
                direction: match v {
                    Some(v) if v == version => None,
                    Some(v) if v > version => Some(Direction::Rollback),
                    _ => Some(Direction::Deploy),
                },
            })
            .collect();
        let mut review = Review {
            package: package.to_string(),
            version: version.to_string(),
            read_on,
            starting,
            going_out: Vec::new(),
            taken_back: Vec::new(),
            notes: Vec::new(),
        };
        // the oldest start below the target, the newest above it
        let below = counts
            .iter()
            .map(|(v, _)| v)
            .filter(|v| v.as_ref().is_none_or(|v| v < version))
            .min();
        let above = counts
            .iter()
            .filter_map(|(v, _)| v.as_ref())
            .filter(|v| *v > version)
            .max();
        if let Some(from) = above {
            match newer {
                Some(Ok(log)) => {
                    let (_, chosen) = select(&log.entries, Some(from), version);
                    review.taken_back = chosen.into_iter().cloned().collect();
                    review.notes.extend(log.notes.iter().cloned());
                }
                Some(Err(why)) => review
                    .notes
                    .push(format!("no changelog for {package} {from}: {why}")),
                None => review.notes.push(format!(
                    "the changelog of {from} was not read: what a rollback takes back is not shown"
                )),
            }
        }
        if below.is_none() {
            // a pure rollback: the target's own changelog adds nothing
            Self::entry_notes(&mut review);
            return review;
        }
        let log = match fetched {
            Ok(log) => log,
            Err(why) => {
                review
                    .notes
                    .push(format!("no changelog for {package} {version}: {why}"));
                Self::entry_notes(&mut review);
                return review;
            }
        };
        review.notes.extend(log.notes.iter().cloned());
        if let Some(from) = below {
            let (_, chosen) = select(&log.entries, from.as_ref(), version);
            review.going_out = chosen.into_iter().cloned().collect();
        }
        if review.going_out.is_empty() && !log.entries.is_empty() {
            review.notes.push(format!(
                "the changelog of {version} has no entry newer than what the hosts run"
            ));
        }
        if !log
            .entries
            .iter()
            .any(|e| e.version.as_ref() == Some(version))
            && !log.entries.is_empty()
        {
            review
                .notes
                .push(format!("the changelog has no entry for {version} itself"));
        }
        Self::entry_notes(&mut review);
        review
    }

    /// The notes of the entries shown, after the review's own.
    fn entry_notes(review: &mut Review) {
        let notes: Vec<String> = review
            .going_out
            .iter()
            .chain(&review.taken_back)
            .flat_map(|e| {
                e.notes
                    .iter()
                    .map(move |n| format!("{}: {n}", e.version_text))
            })
            .collect();
        // an old changelog may be odd all along: a few notes say so
        let more = notes.len().saturating_sub(NOTES_SHOWN);
        review.notes.extend(notes.into_iter().take(NOTES_SHOWN));
        if more > 0 {
            review.notes.push(format!(
                "{more} more note(s) about the entries: `dpkg-parsechangelog` on the package's changelog lists them"
            ));
        }
    }

    /// The review for people: starting versions with host counts, then
    /// the entries (version, urgency, author, date, first change lines),
    /// then the notes. Host text is made safe here.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let safe = |t: &str| crate::text::clipped_line(t, 200);
        let _ = writeln!(
            s,
            "Changes for `{}` {}{}:",
            self.package,
            self.version,
            self.read_on
                .as_ref()
                .map(|h| format!(" (changelog read on {h})"))
                .unwrap_or_default()
        );
        let starts: Vec<String> = self
            .starting
            .iter()
            .map(|st| {
                format!(
                    "{} on {} host{}",
                    st.from.as_deref().unwrap_or("not installed"),
                    st.hosts,
                    if st.hosts == 1 { "" } else { "s" }
                )
            })
            .collect();
        if !starts.is_empty() {
            let _ = writeln!(s, "  hosts run: {}", starts.join(", "));
        }
        for (title, entries) in [
            ("going out", &self.going_out),
            ("taken back (rollback)", &self.taken_back),
        ] {
            if entries.is_empty() {
                continue;
            }
            let _ = writeln!(s, "  {title}, newest first:");
            for e in entries.iter().take(ENTRIES_SHOWN) {
                let _ = writeln!(
                    s,
                    "    {} ({}) {}{}",
                    safe(&e.version_text),
                    safe(e.urgency.as_deref().unwrap_or("urgency unknown")),
                    safe(e.author.as_deref().unwrap_or("no author")),
                    e.date
                        .as_deref()
                        .map(|d| format!(", {}", safe(d)))
                        .unwrap_or_default()
                );
                let lines = e.first_lines(LINES_SHOWN);
                for l in &lines {
                    let _ = writeln!(s, "      {}", safe(l));
                }
                let more = e.changes.iter().filter(|l| !l.trim().is_empty()).count() - lines.len();
                if more > 0 {
                    let _ = writeln!(
                        s,
                        "      (+{more} more line{})",
                        if more == 1 { "" } else { "s" }
                    );
                }
            }
            if entries.len() > ENTRIES_SHOWN {
                let _ = writeln!(
                    s,
                    "    (+{} older entries: `deployer changes {} ... --json` lists them all)",
                    entries.len() - ENTRIES_SHOWN,
                    self.package
                );
            }
        }
        if self.going_out.is_empty() && self.taken_back.is_empty() && self.notes.is_empty() {
            let _ = writeln!(
                s,
                "  no changelog entry between what the hosts run and {}",
                self.version
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {}", safe(n));
        }
        s
    }

    /// The versions and first lines of what went out or was taken back,
    /// for the history record and notifications.
    pub fn summary(&self) -> Vec<Summary> {
        let one = |e: &Entry, direction| Summary {
            version: crate::text::clipped_line(&e.version_text, 100),
            direction,
            lines: e
                .first_lines(LINES_SHOWN)
                .into_iter()
                .map(|l| crate::text::clipped_line(l, 200))
                .collect(),
        };
        self.going_out
            .iter()
            .map(|e| one(e, Direction::Deploy))
            .chain(self.taken_back.iter().map(|e| one(e, Direction::Rollback)))
            .take(ENTRIES_SHOWN * 2)
            .collect()
    }
}

/// One entry as the history keeps it: its version and first lines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The entry's version.
    pub version: String,
    /// Whether it went out or was taken back.
    pub direction: Direction,
    /// Its first change lines.
    #[serde(default)]
    pub lines: Vec<String>,
}

#[cfg(test)]
mod tests;
