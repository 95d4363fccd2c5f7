//! Finding `deployer.ini` and deciding whether to trust it.
//!
//! [`locate`] looks at the file system (is there a file here?) and is the
//! one place that interprets `DEPLOYER_CONFIG` (handed in by the caller);
//! [`untrusted`] is the pure rule for who may have written the file. This
//! module must not read the file's contents: that is `load`'s job, and
//! making sense of the text is `scan`'s and `mod`'s.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// File names looked for, in this order, in each directory.
pub const FILE_NAMES: [&str; 2] = ["deployer.ini", ".deployer.ini"];

/// Find the configuration file: `explicit` (`--config`), else `env`
/// (the value of `DEPLOYER_CONFIG`, which only the caller reads; an empty
/// value counts as unset), else the nearest [`FILE_NAMES`] from `cwd` up to
/// `/`. Errors name where the path came from.
///
/// A relative `explicit` or `env` path is taken relative to `cwd`. A file
/// named by `--config` or `DEPLOYER_CONFIG` must exist: no fallback to the
/// search, so a typo is never silently replaced by another file.
pub fn locate(
    explicit: Option<&Path>,
    env: Option<OsString>,
    cwd: &Path,
) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return named_file(cwd, path, "--config");
    }
    if let Some(value) = env.filter(|v| !v.is_empty()) {
        return named_file(cwd, Path::new(&value), "DEPLOYER_CONFIG");
    }
    let mut searched = Vec::new();
    for dir in cwd.ancestors() {
        for name in FILE_NAMES {
            let candidate = dir.join(name);
            if found(&candidate)? {
                return Ok(candidate);
            }
        }
        searched.push(dir);
    }
    Err(ConfigError::new(
        None,
        None,
        format!(
            "no `{}` or `{}` found in {}",
            FILE_NAMES[0],
            FILE_NAMES[1],
            abbreviate_dirs(&searched)
        ),
    )
    .note(format!(
        "create `{}` (start from `deployer.ini.example`), or pass `--config PATH`, \
         or set `DEPLOYER_CONFIG=PATH`",
        FILE_NAMES[0]
    )))
}

/// Whether the search stops at `candidate`: `true` for a file, `false`
/// when there is nothing by that name (or a directory, which cannot be a
/// configuration). Anything else there, such as a symbolic link whose
/// target is missing, is an error: looking further up would silently put
/// another pipeline's file in its place.
fn found(candidate: &Path) -> Result<bool, ConfigError> {
    let unusable = |why: String| {
        ConfigError::new(
            Some(candidate),
            None,
            format!("cannot use this configuration: {why}"),
        )
        .note(
            "fix it or remove it; deployer does not search further up while it is there, so \
             that a file from another directory is not used in its place",
        )
    };
    match std::fs::symlink_metadata(candidate) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(unusable(e.to_string())),
        Ok(_) => {}
    }
    match std::fs::metadata(candidate) {
        Ok(meta) if meta.is_file() => Ok(true),
        Ok(meta) if meta.is_dir() => Ok(false),
        Ok(_) => Err(unusable("it is not a regular file".to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(unusable(
            "it is a symbolic link to something that does not exist".to_string(),
        )),
        Err(e) => Err(unusable(e.to_string())),
    }
}

/// The file named by `--config` or `DEPLOYER_CONFIG`, which must exist.
fn named_file(cwd: &Path, path: &Path, origin: &str) -> Result<PathBuf, ConfigError> {
    let full = cwd.join(path);
    let fix = if origin == "--config" {
        "check the path given to `--config`, or leave it out to search for \
         `deployer.ini` from the current directory up"
    } else {
        "fix `DEPLOYER_CONFIG`, or unset it to search for `deployer.ini` from the \
         current directory up"
    };
    if full.is_dir() {
        return Err(ConfigError::new(
            Some(&full),
            None,
            format!("is a directory, not a configuration file (given by `{origin}`)"),
        )
        .note(format!("name the file itself; {fix}")));
    }
    if !full.exists() {
        return Err(ConfigError::new(
            Some(&full),
            None,
            format!("configuration file not found (given by `{origin}`)"),
        )
        .note(fix));
    }
    Ok(full)
}

/// "`/a/b`, `/a`, `/`", keeping the first and last few of a long list.
fn abbreviate_dirs(dirs: &[&Path]) -> String {
    const HEAD: usize = 3;
    const TAIL: usize = 2;
    let show = |d: &&Path| format!("`{}`", d.display());
    if dirs.len() <= HEAD + TAIL + 1 {
        return dirs.iter().map(show).collect::<Vec<_>>().join(", ");
    }
    let head: Vec<String> = dirs[..HEAD].iter().map(show).collect();
    let tail: Vec<String> = dirs[dirs.len() - TAIL..].iter().map(show).collect();
    format!(
        "{}, ... ({} more) ..., {}",
        head.join(", "),
        dirs.len() - HEAD - TAIL,
        tail.join(", ")
    )
}

/// Why the configuration file at `path`, owned by `owner` with `mode`,
/// must not be used, or `None` when it may: it must be owned by one of the
/// `trusted` uids (root, the operator) and writable by nobody else.
/// `name_of` gives account names for the message.
pub fn untrusted(
    path: &Path,
    owner: u32,
    mode: u32,
    trusted: &[u32],
    name_of: impl Fn(u32) -> Option<String>,
) -> Option<ConfigError> {
    let account = |uid: u32| match name_of(uid) {
        Some(name) => format!("`{name}` (uid {uid})"),
        None => format!("uid {uid}"),
    };
    let you = trusted.iter().copied().rfind(|&u| u != 0).unwrap_or(0);
    let mut problems = Vec::new();
    if !trusted.contains(&owner) {
        problems.push(if you == 0 {
            "it is not owned by root, who runs deployer".to_string()
        } else {
            format!("it is owned neither by you, {}, nor by root", account(you))
        });
    }
    if let Some(writers) = crate::operator::others_can_write(mode) {
        problems.push(writers.to_string());
    }
    if problems.is_empty() {
        return None;
    }
    let shown = crate::command::quote(&path.display().to_string());
    let you_name = name_of(you).unwrap_or_else(|| you.to_string());
    let as_root = if you == 0 {
        " Run as root (through sudo too), deployer trusts only files root owns: whoever \
         else can write one could make deployer run anything as root."
    } else {
        ""
    };
    Some(
        ConfigError::new(
            Some(path),
            None,
            format!(
                "refusing to use this configuration, owned by {} with mode {:04o}: {}",
                account(owner),
                mode & 0o7777,
                problems.join(", and ")
            ),
        )
        .note(format!(
            "whoever can write it decides which commands deployer runs (`health_check`) and \
             which host keys it trusts; if the file is as it should be, fix it with \
             `chown {you_name} {shown}` and `chmod go-w {shown}`. This check applies however \
             the file is found, `--config` and `DEPLOYER_CONFIG` included.{as_root}"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(e: &ConfigError) -> &str {
        e.note.as_deref().unwrap_or("")
    }

    fn names(uid: u32) -> Option<String> {
        match uid {
            0 => Some("root".into()),
            1000 => Some("alice".into()),
            1001 => Some("bob".into()),
            _ => None,
        }
    }

    #[test]
    fn only_files_that_nobody_else_can_write_are_trusted() {
        let path = Path::new("/srv/app/deployer.ini");
        // (owner, mode, trusted uids, refusal or None)
        let cases: [(u32, u32, &[u32], Option<&str>); 11] = [
            (1000, 0o100_644, &[0, 1000], None),
            (1000, 0o100_600, &[0, 1000], None),
            (0, 0o100_644, &[0, 1000], None),
            (0, 0o100_444, &[0], None),
            // The person's own file.
            (1000, 0o100_640, &[0, 1000], None),
            (
                1001,
                0o100_644,
                &[0, 1000],
                Some("owned by `bob` (uid 1001) with mode 0644: it is owned neither by you, `alice` (uid 1000), nor by root"),
            ),
            (
                1000,
                0o100_664,
                &[0, 1000],
                Some("owned by `alice` (uid 1000) with mode 0664: its group can write to it"),
            ),
            (
                0,
                0o100_646,
                &[0, 1000],
                Some("owned by `root` (uid 0) with mode 0646: every other user can write to it"),
            ),
            (
                4242,
                0o100_666,
                &[0, 1000],
                Some("owned by uid 4242 with mode 0666: it is owned neither by you, `alice` (uid 1000), nor by root, and its group and every other user can write to it"),
            ),
            (
                1000,
                0o100_644,
                &[0],
                Some("owned by `alice` (uid 1000) with mode 0644: it is not owned by root, who runs deployer"),
            ),
            (
                1000,
                0o102_775,
                &[0, 1000],
                Some("owned by `alice` (uid 1000) with mode 2775: its group can write to it"),
            ),
        ];
        for (owner, mode, trusted, want) in cases {
            let got = untrusted(path, owner, mode, trusted, names);
            let Some(want) = want else {
                assert_eq!(got, None, "{owner} {mode:o} {trusted:?}");
                continue;
            };
            let e = got.unwrap_or_else(|| panic!("{owner} {mode:o} {trusted:?} was trusted"));
            assert_eq!(e.path.as_deref(), Some(path));
            assert_eq!(
                e.message,
                format!("refusing to use this configuration, {want}")
            );
            let note = note(&e);
            assert!(
                note.contains("`chmod go-w /srv/app/deployer.ini`"),
                "{note}"
            );
            assert!(note.contains("`--config` and `DEPLOYER_CONFIG`"), "{note}");
            let chown = if trusted == [0] {
                "`chown root "
            } else {
                "`chown alice "
            };
            assert!(note.contains(chown), "{note}");
        }
    }

    #[test]
    fn the_fix_quotes_an_awkward_path() {
        let e = untrusted(
            Path::new("/srv/my app/deployer.ini"),
            0,
            0o100_664,
            &[0],
            names,
        )
        .unwrap();
        assert!(
            note(&e).contains("`chmod go-w '/srv/my app/deployer.ini'`"),
            "{e:?}"
        );
    }
}
