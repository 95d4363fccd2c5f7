//! The parser against dpkg-parsechangelog on the changelogs installed on
//! this machine, and against tricky ones written here.

use super::*;

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

/// Skip (or, under CI=true, fail) when a tool the test needs is missing.
fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot run under CI: {why}");
    }
    eprintln!("skipped: {why}");
}

/// The fields dpkg-parsechangelog reports for every entry of `path`, one
/// map per entry (the `Changes` field split into lines, without the
/// heading and the separator).
fn dpkg_entries(path: &std::path::Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let out = std::process::Command::new("dpkg-parsechangelog")
        .arg("-l")
        .arg(path)
        .args(["--all", "--format", "rfc822"])
        .env("LC_ALL", "C")
        .output()
        .expect("dpkg-parsechangelog runs");
    assert!(
        out.status.success(),
        "dpkg-parsechangelog failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut entries = Vec::new();
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let mut fields = std::collections::BTreeMap::new();
        let mut key = String::new();
        for line in para.lines() {
            if let Some(cont) = line.strip_prefix(' ') {
                let value: &mut String = fields.entry(key.clone()).or_default();
                value.push('\n');
                value.push_str(if cont == "." { "" } else { cont });
            } else if let Some((k, val)) = line.split_once(':') {
                key = k.to_string();
                fields.insert(key.clone(), val.trim().to_string());
            }
        }
        entries.push(fields);
    }
    entries
}

fn have_dpkg_parsechangelog() -> bool {
    std::process::Command::new("dpkg-parsechangelog")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Compare our fields with dpkg's for the changelog text `text`.
fn compare_with_dpkg(name: &str, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changelog");
    std::fs::write(&path, text).unwrap();
    let theirs = dpkg_entries(&path);
    let ours = parse(text);
    assert_eq!(
        ours.entries.len(),
        theirs.len(),
        "{name}: entry count (ours {:?})",
        ours.entries
            .iter()
            .map(|e| &e.version_text)
            .collect::<Vec<_>>()
    );
    for (e, d) in ours.entries.iter().zip(&theirs) {
        let at = format!("{name} {}", e.version_text);
        assert_eq!(Some(&e.source), d.get("Source"), "{at}: source");
        assert_eq!(Some(&e.version_text), d.get("Version"), "{at}: version");
        assert_eq!(
            Some(&e.distributions.join(" ")),
            d.get("Distribution"),
            "{at}: distributions"
        );
        assert_eq!(
            e.urgency.as_deref().unwrap_or("unknown"),
            d.get("Urgency").map(String::as_str).unwrap_or(""),
            "{at}: urgency"
        );
        assert_eq!(e.author.as_ref(), d.get("Maintainer"), "{at}: author");
        assert_eq!(e.date.as_ref(), d.get("Date"), "{at}: date");
        // Changes: the heading, a separator, then the change lines
        let changes = d.get("Changes").expect("a Changes field");
        let theirs: Vec<&str> = changes.lines().skip(3).map(str::trim_end).collect();
        let ours: Vec<&str> = e.changes.iter().map(|l| l.trim_end()).collect();
        assert_eq!(ours, theirs, "{at}: change lines");
    }
}

/// Read a gzip file through `gzip -dc`.
fn gunzip(path: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn installed_changelogs_match_dpkg_parsechangelog() {
    if !have_dpkg_parsechangelog() {
        return skip("dpkg-parsechangelog is missing (apt-get install dpkg-dev)");
    }
    // packages every Debian system has, then a few more when present
    let wanted = [
        "dpkg",
        "bash",
        "coreutils",
        "base-files",
        "apt",
        "tar",
        "gzip",
        "sed",
        "grep",
        "openssh-client",
        "curl",
        "libc6",
        "perl",
        "util-linux",
    ];
    // DEPLOYER_ALL_CHANGELOGS=1: every changelog installed (slow)
    let names: Vec<String> = if std::env::var_os("DEPLOYER_ALL_CHANGELOGS").is_some() {
        let mut all: Vec<String> = std::fs::read_dir("/usr/share/doc")
            .unwrap()
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .collect();
        all.sort();
        all
    } else {
        wanted.iter().map(ToString::to_string).collect()
    };
    let mut compared = 0;
    for name in &names {
        let path = std::path::Path::new("/usr/share/doc")
            .join(name)
            .join("changelog.Debian.gz");
        let Some(text) = gunzip(&path) else {
            continue;
        };
        compare_with_dpkg(name, &text);
        compared += 1;
    }
    if compared < 3 {
        skip(&format!(
            "only {compared} changelog(s) found under /usr/share/doc; at least 3 wanted"
        ));
    }
}

const TRICKY: &str = "\
hello (1:2.0~rc1-1) unstable experimental; urgency=HIGH (security fix), binary-only=yes

  * An epoch and a tilde.
    Continued over two lines.

  * After a blank line.

 -- Jane Doe <jane@example.org>  Tue, 03 Feb 2026 10:00:00 +0000

hello (1:1.9-2) unstable; urgency=low

  [ Team member ]
  * No trailer on this one.

hello (1.9-1) bookworm-security; urgency=medium
  * Changes straight after the heading.
 -- Max <m@example.org>  1 Jan 2026 09:05:00 -0100
";

#[test]
fn tricky_changelog_fields() {
    let log = parse(TRICKY);
    let e = &log.entries;
    assert_eq!(e.len(), 3, "{log:?}");
    assert_eq!(e[0].version, Some(v("1:2.0~rc1-1")));
    assert_eq!(e[0].distributions, ["unstable", "experimental"]);
    assert_eq!(e[0].urgency.as_deref(), Some("high"));
    assert_eq!(e[0].author.as_deref(), Some("Jane Doe <jane@example.org>"));
    assert_eq!(
        e[0].date.as_deref(),
        Some("Tue, 03 Feb 2026 10:00:00 +0000")
    );
    assert_eq!(
        e[0].changes,
        [
            "  * An epoch and a tilde.",
            "    Continued over two lines.",
            "",
            "  * After a blank line."
        ]
    );
    assert!(e[0].notes.is_empty(), "{:?}", e[0].notes);
    // a missing trailer: kept, with a note
    assert_eq!(e[1].version, Some(v("1:1.9-2")));
    assert_eq!(e[1].author, None);
    assert!(
        e[1].notes.iter().any(|n| n.contains("heading")),
        "{:?}",
        e[1].notes
    );
    assert_eq!(e[2].date.as_deref(), Some("1 Jan 2026 09:05:00 -0100"));
    assert_eq!(
        e[2].first_lines(1),
        ["* Changes straight after the heading."]
    );
}

#[test]
fn tricky_changelog_matches_dpkg_parsechangelog() {
    if !have_dpkg_parsechangelog() {
        return skip("dpkg-parsechangelog is missing (apt-get install dpkg-dev)");
    }
    compare_with_dpkg("tricky", TRICKY);
    compare_with_dpkg(
        "odd lines",
        "\
pkg (2.0) unstable; urgency=medium
# a comment, skipped
$Id: changelog 1 2020 $

  * One.
\tone tab, unrecognized inside changes
  * Two.

 -- A B <a@b.c>  Mon, 02 Mar 2026 12:00:00 +0100
this is not a heading
pkg (1.0) unstable; urgency=low

  * First.

 -- A B <a@b.c>  Sun, 01 Mar 2026 12:00:00 +0100

Local variables:
mode: debian-changelog
End:
",
    );
}

#[test]
fn odd_lines_are_notes_not_failures() {
    let log = parse("not a changelog at all\n\n\u{1b}[31mred\n");
    assert!(log.entries.is_empty());
    assert!(!log.notes.is_empty());
    let log = parse("");
    assert!(log.entries.is_empty());
    assert_eq!(log.notes.len(), 1);
    // an invalid version is kept, with a note, and never selected
    let log = parse("pkg (a:b) unstable; urgency=low\n\n  * x\n\n -- A <a@b>  Mon, 02 Mar 2026 12:00:00 +0100\n");
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].version, None);
    assert!(!log.entries[0].notes.is_empty());
    assert!(select(&log.entries, None, &v("9")).1.is_empty());
}

fn entries(versions: &[&str]) -> Vec<Entry> {
    versions.iter().map(|s| Entry::new("pkg", s)).collect()
}

fn versions(chosen: &[&Entry]) -> Vec<String> {
    chosen.iter().map(|e| e.version_text.clone()).collect()
}

#[test]
fn selection_between_versions() {
    let all = entries(&["2.0", "1:0.1", "1.1~rc1", "1.1", "1.0", "0.9"]);
    // deploy: from < v <= to, newest first in dpkg order
    let (d, chosen) = select(&all, Some(&v("1.0")), &v("2.0"));
    assert_eq!(d, Direction::Deploy);
    assert_eq!(versions(&chosen), ["2.0", "1.1", "1.1~rc1"]);
    // not installed: everything up to the target
    let (_, chosen) = select(&all, None, &v("1.1"));
    assert_eq!(versions(&chosen), ["1.1", "1.1~rc1", "1.0", "0.9"]);
    // rollback: to < v <= from, the entries taken back
    let (d, chosen) = select(&all, Some(&v("1:0.1")), &v("1.1"));
    assert_eq!(d, Direction::Rollback);
    assert_eq!(versions(&chosen), ["1:0.1", "2.0"]);
    // same version: nothing
    let (_, chosen) = select(&all, Some(&v("1.1")), &v("1.1"));
    assert!(chosen.is_empty());
}

#[test]
fn review_counts_hosts_per_start_and_notes_a_missing_changelog() {
    let log = parse(TRICKY);
    let r = Review::new(
        "hello",
        &v("1:2.0~rc1-1"),
        &[Some(v("1.9-1")), Some(v("1.9-1")), None],
        Ok(log),
        None,
        Some("h1".into()),
    );
    assert_eq!(r.starting.len(), 2);
    assert_eq!(r.starting[0].from.as_deref(), Some("1.9-1"));
    assert_eq!(r.starting[0].hosts, 2);
    assert_eq!(r.starting[1].from, None);
    // not installed on one host: every entry up to the target goes out
    assert_eq!(r.going_out.len(), 3);
    let text = r.describe();
    assert!(
        text.contains("1.9-1 on 2 hosts, not installed on 1 host"),
        "{text}"
    );
    assert!(
        text.contains("1:2.0~rc1-1 (high) Jane Doe <jane@example.org>"),
        "{text}"
    );
    let r = Review::new(
        "hello",
        &v("1.0"),
        &[Some(v("0.9"))],
        Err("no".into()),
        None,
        None,
    );
    assert!(r.going_out.is_empty());
    assert!(r
        .describe()
        .contains("note: no changelog for hello 1.0: no"));
}

#[test]
fn host_text_in_a_review_is_made_safe() {
    let text = "p (1.0) unstable; urgency=low\n\n  * evil \u{1b}[2J clear\n\n -- A <a@b>  Mon, 02 Mar 2026 12:00:00 +0100\n";
    let r = Review::new("p", &v("1.0"), &[None], Ok(parse(text)), None, None);
    let shown = r.describe();
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
}

#[test]
fn fetch_command_quotes_package_and_version() {
    let c = fetch_command("hello", &v("1:2.0~rc1-1"));
    assert!(
        c.as_str()
            .ends_with(" deployer-changelog hello '1:2.0~rc1-1'"),
        "{c}"
    );
    assert!(c.as_str().starts_with("sh -c '"));
}

#[test]
fn fetched_answers() {
    assert!(read_fetched(0, "x (1) u; urgency=low\n", "", 0).is_ok());
    let e = read_fetched(NO_CHANGELOG, "", "no usr/share/doc/x", 0).unwrap_err();
    assert!(e.contains("carries no changelog"), "{e}");
    let e = read_fetched(
        NO_PACKAGE,
        "",
        "E: Can't find a source to download version '9' of 'x'",
        0,
    )
    .unwrap_err();
    assert!(e.contains("could not be fetched"), "{e}");
}

#[test]
fn a_rollback_takes_back_what_the_newer_changelog_lists() {
    let newer = parse(TRICKY);
    let older = parse("hello (1.9-1) unstable; urgency=low\n\n  * Old.\n\n -- A <a@b>  Mon, 02 Mar 2026 12:00:00 +0100\n");
    let r = Review::new(
        "hello",
        &v("1.9-1"),
        &[Some(v("1:2.0~rc1-1")), Some(v("1.9-1"))],
        Ok(older.clone()),
        Some(Ok(newer)),
        None,
    );
    assert!(r.going_out.is_empty());
    let back: Vec<&str> = r
        .taken_back
        .iter()
        .map(|e| e.version_text.as_str())
        .collect();
    assert_eq!(back, ["1:2.0~rc1-1", "1:1.9-2"]);
    assert_eq!(r.starting[0].direction, Some(Direction::Rollback));
    assert_eq!(r.starting[1].direction, None);
    assert!(r
        .describe()
        .contains("taken back (rollback), newest first:"));
    // the newer changelog could not be read: a note, nothing listed
    let r = Review::new(
        "hello",
        &v("1.9-1"),
        &[Some(v("1:2.0~rc1-1"))],
        Ok(older),
        Some(Err("gone".into())),
        None,
    );
    assert!(r.taken_back.is_empty());
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("no changelog for hello 1:2.0~rc1-1: gone")));
}

#[test]
fn a_review_keeps_a_few_notes_about_odd_entries() {
    let mut text = String::new();
    for i in (1..=30).rev() {
        // no trailers at all: one note per entry
        text.push_str(&format!(
            "p ({i}.0) unstable; urgency=low\n\n  * Change {i}.\n\n"
        ));
    }
    let r = Review::new("p", &v("30.0"), &[None], Ok(parse(&text)), None, None);
    assert_eq!(r.going_out.len(), 30);
    assert_eq!(r.notes.len(), NOTES_SHOWN + 1, "{:?}", r.notes);
    assert!(
        r.notes.last().unwrap().starts_with("20 more note(s)"),
        "{:?}",
        r.notes
    );
    let shown = r.describe();
    assert!(shown.contains("(+20 older entries"), "{shown}");
}
