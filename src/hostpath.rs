//! Root writes on a host through paths that nobody else controls: the one
//! owner of "is it safe for root to create or replace a file here".
//!
//! Everything deployer writes as root on a host (the badges in
//! `badges_path`, the run directories of `detach`, the host history, the
//! lock and freeze directories, the `.deb` cache of `debcache`) goes
//! through the shell functions of
//! this module, run in the same root shell as the write itself:
//!
//! - `hp_enter PATH [create]` makes `PATH` the shell's current directory,
//!   one component at a time from `/`: each component must not be a
//!   symbolic link, must be a directory, owned by root and writable by
//!   nobody else (as OpenSSH checks its files; `/run` and `/var/lib`, root
//!   0755, pass; a sticky world-writable directory such as `/tmp` does
//!   not). A missing component is created (mode 0755) with `create`;
//!   without it, `hp_missing` names the first missing one and the shell
//!   stays in its (checked) parent.
//! - `hp_file NAME` checks a file of the current directory before it is
//!   written or replaced: absent, or a regular file owned by root and
//!   writable by nobody else; never a link.
//!
//! Since every directory entered is one only root can change, nobody else
//! can swap a component between the check and the write: the script then
//! creates, writes and renames with names relative to the current
//! directory, never through the path again. A refusal prints one line,
//! `deployer-hostpath KIND UID USER MODE PATH`, on stderr and ends the
//! script with status [`REFUSED_STATUS`]; [`parse_refusal`] reads it back.
//!
//! Pure: shell text and the parser of its refusal.

use std::fmt;

use crate::command::{self, RemoteCommand};
use crate::text;

/// The exit status of a script that refused a path.
pub const REFUSED_STATUS: i32 = 97;

/// The shell functions (POSIX `sh`, GNU `stat`). They read `hp_top` (the
/// directory the walk starts from, without its trailing `/`: empty for `/`)
/// and `hp_owner` (the uid that must own everything: 0), which [`script`]
/// sets.
const FUNCTIONS: &str = r#"hp_refuse() {
    hp_st=$(stat -c '%u %U %a' -- "${3:-.}" 2>/dev/null) || hp_st='? ? ?'
    printf 'deployer-hostpath %s %s %s\n' "$1" "$hp_st" "$2" >&2
    exit 97
}
hp_mine() {
    hp_st=$(stat -c '%u %a' -- "$2" 2>/dev/null) || hp_refuse stat "$1" "$2"
    set -- "$1" "$2" $hp_st
    [ "$3" = "$hp_owner" ] || hp_refuse owner "$1" "$2"
    [ $(( 0$4 & 022 )) -eq 0 ] || hp_refuse mode "$1" "$2"
}
hp_enter() {
    hp_rest=${1#"$hp_top"} hp_at=$hp_top hp_missing=
    case $1 in /*) ;; *) hp_refuse outside "$1" / ;; esac
    case $1 in "$hp_top"|"$hp_top"/*) ;; *) hp_refuse outside "$1" / ;; esac
    cd -P -- "${hp_top:-/}" 2>/dev/null || hp_refuse enter "${hp_top:-/}" "${hp_top:-/}"
    hp_mine "${hp_top:-/}" .
    while :; do
        case $hp_rest in /*) hp_rest=${hp_rest#/}; continue ;; '') break ;; esac
        hp_name=${hp_rest%%/*}
        hp_rest=${hp_rest#"$hp_name"}
        hp_at=$hp_at/$hp_name
        case $hp_name in .|..) hp_refuse dots "$1" . ;; esac
        if [ ! -e "$hp_name" ] && [ ! -L "$hp_name" ]; then
            if [ "${2:-}" != create ]; then hp_missing=$hp_at; hp_at=${hp_at%/*}; return 0; fi
            mkdir -m 0755 -- "$hp_name" 2>/dev/null || [ -e "$hp_name" ] || hp_refuse create "$hp_at" .
        fi
        if [ -L "$hp_name" ]; then hp_refuse link "$hp_at" "$hp_name"; fi
        [ -d "$hp_name" ] || hp_refuse type "$hp_at" "$hp_name"
        cd -P -- "$hp_name" 2>/dev/null || hp_refuse enter "$hp_at" "$hp_name"
        hp_mine "$hp_at" .
        [ "$(pwd -P)" = "$hp_at" ] || hp_refuse moved "$hp_at" .
    done
}
hp_file() {
    if [ -L "$1" ]; then hp_refuse link "$hp_at/$1" "$1"; fi
    [ -e "$1" ] || return 0
    [ -f "$1" ] || hp_refuse type "$hp_at/$1" "$1"
    hp_mine "$hp_at/$1" "$1"
}
"#;

/// `body`, a root script, preceded by the functions of this module for
/// paths from `/` owned by root.
pub fn script(body: &str) -> String {
    script_in("/", 0, body)
}

/// [`script`] for paths under `top` (an absolute path without links, not
/// itself checked beyond its own owner and mode), owned by `owner`: for
/// tests, in a directory of their own.
pub fn script_in(top: &str, owner: u32, body: &str) -> String {
    let top = top.trim_end_matches('/');
    format!(
        "hp_top={} hp_owner={owner}\n{FUNCTIONS}{body}",
        if top.is_empty() {
            "''".to_string()
        } else {
            command::quote(top)
        }
    )
}

/// The script of [`probe_command`]: for each path, `ok PATH`, `missing
/// PATH FIRST` (the first missing component) or the refusal line; on
/// stdout. Each path is walked in a subshell, so one refusal does not end
/// the probe.
const PROBE: &str = r#"for p; do
    ( hp_enter "$p"; if [ -n "$hp_missing" ]; then echo "missing $hp_missing $p"; else echo "ok $p"; fi ) 2>&1
done
"#;

/// A command that creates nothing and tells, for each of `paths`, whether
/// root could write there safely (`deployer check`). Read-only; it needs
/// only search permission on the way, so it runs without sudo.
pub fn probe_command<S: AsRef<str>>(paths: &[S]) -> RemoteCommand {
    probe_command_in("/", 0, paths)
}

/// [`probe_command`] under `top`, owned by `owner` (see [`script_in`]).
pub fn probe_command_in<S: AsRef<str>>(top: &str, owner: u32, paths: &[S]) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", &script_in(top, owner, PROBE), "deployer-paths"])
        .args(paths.iter().map(|p| p.as_ref()))
        .named("path check")
}

/// What [`probe_command`] said of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probed {
    /// Every component is there and safe.
    Ok(String),
    /// The path is safe as far as it exists; the first missing component
    /// (named) will be created by the first write.
    Missing {
        /// The path asked about.
        path: String,
        /// Its first component that does not exist.
        first: String,
    },
    /// A component is not safe.
    Refused(Refusal),
}

/// Read what [`probe_command`] printed, one entry per path. Lines that are
/// none of its answers are skipped.
pub fn parse_probe(stdout: &str) -> Vec<Probed> {
    stdout
        .lines()
        .filter_map(|line| {
            if let Some(path) = line.strip_prefix("ok ") {
                Some(Probed::Ok(path.to_string()))
            } else if let Some(rest) = line.strip_prefix("missing ") {
                let (first, path) = rest.split_once(' ')?;
                Some(Probed::Missing {
                    path: path.to_string(),
                    first: first.to_string(),
                })
            } else {
                parse_line(line).map(Probed::Refused)
            }
        })
        .collect()
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// It is a symbolic link.
    Link,
    /// It is not owned by root.
    Owner,
    /// Its group or others may write it.
    Mode,
    /// It is not a directory (on the way) or not a regular file (the file
    /// written).
    Type,
    /// It could not be created, entered or looked at.
    Unusable,
    /// It is not an absolute path of plain names (`.` or `..` in it).
    NotPlain,
}

/// A path that a root write refused, with what the host said of the
/// component at fault. Every field came from the host: [`fmt::Display`]
/// makes them safe for a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong with it.
    pub kind: Kind,
    /// The component at fault (a directory on the way, or the file).
    pub path: String,
    /// Its owner's uid, as `stat` said (`?` when unknown).
    pub uid: String,
    /// Its owner's name (`UNKNOWN` when the uid has none).
    pub user: String,
    /// Its mode in octal (`?` when unknown).
    pub mode: String,
}

impl Refusal {
    /// The component and its owner, for messages: `` `/srv/www` (owner
    /// www-data, uid 33, mode 755) ``.
    fn named(&self) -> String {
        format!(
            "`{}` (owner {}, uid {}, mode {})",
            text::one_line(&self.path),
            text::one_line(&self.user),
            text::one_line(&self.uid),
            text::one_line(&self.mode)
        )
    }

    /// What to do about it, for a `note:` line.
    pub fn fix(&self) -> String {
        let path = text::one_line(&self.path);
        match self.kind {
            Kind::Link => format!(
                "replace the link `{path}` with a real directory (or file) owned by root, \
                 and make sure no other user can write any directory above it"
            ),
            Kind::Owner | Kind::Mode => format!(
                "make `{path}` owned by root and writable by nobody else \
                 (`chown root: {path} && chmod go-w {path}`), or choose a path whose \
                 every directory is"
            ),
            Kind::Type => format!("move `{path}` out of the way"),
            Kind::Unusable | Kind::NotPlain => {
                format!("check `{path}` on the host: root must be able to create and enter it")
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named = self.named();
        match self.kind {
            Kind::Link => write!(
                f,
                "{named} is a symbolic link; deployer writes there as root and follows no link another user could have planted"
            ),
            Kind::Owner => write!(
                f,
                "{named} is not owned by root, so its owner could swap what deployer writes there as root for a link"
            ),
            Kind::Mode => write!(
                f,
                "{named} can be written by users other than root, who could swap what deployer writes there as root for a link"
            ),
            Kind::Type => write!(f, "{named} is in the way: it is not a directory or a regular file"),
            Kind::Unusable => write!(f, "{named} cannot be created or entered"),
            Kind::NotPlain => write!(f, "`{}` is not an absolute path of plain names", text::one_line(&self.path)),
        }
    }
}

/// The refusal a script of this module printed on `stderr`, if it refused.
pub fn parse_refusal(stderr: &str) -> Option<Refusal> {
    stderr.lines().find_map(parse_line)
}

/// The refusal a script of this module printed on `stderr`, with its fix,
/// on one line (for a host's line in a list of problems), if it refused.
pub fn refused(stderr: &str) -> Option<String> {
    parse_refusal(stderr).map(|r| format!("{r}; {}", r.fix()))
}

fn parse_line(line: &str) -> Option<Refusal> {
    let rest = line.strip_prefix("deployer-hostpath ")?;
    let mut fields = rest.splitn(5, ' ');
    let kind = match fields.next()? {
        "link" => Kind::Link,
        "owner" => Kind::Owner,
        "mode" => Kind::Mode,
        "type" => Kind::Type,
        "dots" | "outside" => Kind::NotPlain,
        _ => Kind::Unusable,
    };
    let uid = fields.next()?.to_string();
    let user = fields.next()?.to_string();
    let mode = fields.next()?.to_string();
    let path = fields.next()?.to_string();
    Some(Refusal {
        kind,
        path,
        uid,
        user,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::Path;

    fn me() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    /// A private top directory (canonical, mode 0755).
    fn top() -> (tempfile::TempDir, String) {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let path = tmp.path().canonicalize().unwrap().display().to_string();
        (tmp, path)
    }

    /// Run `body` after the functions, with `args`: (status, stdout, stderr).
    fn run(top: &str, body: &str, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script_in(top, me(), body))
            .arg("test")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    const WRITE: &str =
        "set -eu\nhp_enter \"$1\" create\nhp_file \"$2\"\necho data > \"$2\"\npwd -P\n";

    #[test]
    fn creates_missing_directories_and_writes_relative_to_the_checked_one() {
        let (_tmp, top) = top();
        let dir = format!("{top}/a//b/c/");
        let (status, stdout, stderr) = run(&top, WRITE, &[&dir, "f.svg"]);
        assert_eq!(status, 0, "{stderr}");
        assert_eq!(stdout.trim(), format!("{top}/a/b/c"));
        assert_eq!(
            fs::read_to_string(format!("{top}/a/b/c/f.svg")).unwrap(),
            "data\n"
        );
        let mode = fs::metadata(format!("{top}/a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }

    #[test]
    fn a_link_on_the_way_is_refused_with_its_owner_and_nothing_written() {
        let (_tmp, top) = top();
        fs::create_dir(format!("{top}/elsewhere")).unwrap();
        fs::create_dir(format!("{top}/www")).unwrap();
        symlink(format!("{top}/elsewhere"), format!("{top}/www/badges")).unwrap();
        let (status, _, stderr) = run(&top, WRITE, &[&format!("{top}/www/badges/x"), "f"]);
        assert_eq!(status, REFUSED_STATUS, "{stderr}");
        let r = parse_refusal(&stderr).unwrap();
        assert_eq!(r.kind, Kind::Link);
        assert_eq!(r.path, format!("{top}/www/badges"));
        assert_eq!(r.uid, me().to_string());
        assert!(r.to_string().contains("is a symbolic link"), "{r}");
        assert_eq!(fs::read_dir(format!("{top}/elsewhere")).unwrap().count(), 0);
    }

    #[test]
    fn a_link_at_the_file_name_is_refused() {
        let (_tmp, top) = top();
        fs::create_dir(format!("{top}/d")).unwrap();
        symlink(format!("{top}/target"), format!("{top}/d/f.svg")).unwrap();
        let (status, _, stderr) = run(&top, WRITE, &[&format!("{top}/d"), "f.svg"]);
        assert_eq!(status, REFUSED_STATUS, "{stderr}");
        let r = parse_refusal(&stderr).unwrap();
        assert_eq!(
            (r.kind, r.path.as_str()),
            (Kind::Link, &*format!("{top}/d/f.svg"))
        );
        assert!(!Path::new(&format!("{top}/target")).exists());
    }

    #[test]
    fn a_directory_others_can_write_is_refused_even_sticky() {
        let (_tmp, top) = top();
        fs::create_dir(format!("{top}/shared")).unwrap();
        fs::set_permissions(format!("{top}/shared"), fs::Permissions::from_mode(0o1777)).unwrap();
        let (status, _, stderr) = run(&top, WRITE, &[&format!("{top}/shared/d"), "f"]);
        assert_eq!(status, REFUSED_STATUS, "{stderr}");
        let r = parse_refusal(&stderr).unwrap();
        assert_eq!((r.kind, r.mode.as_str()), (Kind::Mode, "1777"));
        assert!(!Path::new(&format!("{top}/shared/d")).exists());
        fs::set_permissions(format!("{top}/shared"), fs::Permissions::from_mode(0o775)).unwrap();
        let (status, _, stderr) = run(&top, WRITE, &[&format!("{top}/shared/d"), "f"]);
        assert_eq!(status, REFUSED_STATUS, "group-writable: {stderr}");
    }

    #[test]
    fn a_directory_of_another_owner_is_refused() {
        let (_tmp, top) = top();
        fs::create_dir(format!("{top}/d")).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script_in(&top, me() + 1, "hp_enter \"$1\" create"))
            .arg("test")
            .arg(format!("{top}/d"))
            .output()
            .unwrap();
        let r = parse_refusal(&String::from_utf8_lossy(&out.stderr)).unwrap();
        assert_eq!(r.kind, Kind::Owner);
        assert_eq!(r.path, top, "the top itself is checked first");
    }

    #[test]
    fn dots_and_relative_paths_are_refused() {
        let (_tmp, top) = top();
        for p in [format!("{top}/a/../b"), "relative/x".to_string()] {
            let (status, _, stderr) = run(&top, WRITE, &[&p, "f"]);
            assert_eq!(status, REFUSED_STATUS, "{p}: {stderr}");
            assert_eq!(parse_refusal(&stderr).unwrap().kind, Kind::NotPlain);
        }
    }

    #[test]
    fn the_probe_tells_ok_missing_and_refused_apart_and_creates_nothing() {
        let (_tmp, top) = top();
        fs::create_dir_all(format!("{top}/var/lib")).unwrap();
        symlink("/", format!("{top}/var/link")).unwrap();
        let paths = [
            format!("{top}/var/lib"),
            format!("{top}/var/lib/deployer/runs"),
            format!("{top}/var/link/x"),
        ];
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(probe_command_in(&top, me(), &paths).as_str())
            .output()
            .unwrap();
        let got = parse_probe(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], Probed::Ok(paths[0].clone()));
        assert_eq!(
            got[1],
            Probed::Missing {
                path: paths[1].clone(),
                first: format!("{top}/var/lib/deployer")
            }
        );
        match &got[2] {
            Probed::Refused(r) => assert_eq!(r.path, format!("{top}/var/link")),
            other => panic!("{other:?}"),
        }
        assert!(!Path::new(&format!("{top}/var/lib/deployer")).exists());
    }

    #[test]
    fn refusals_are_parsed_and_made_safe_for_a_terminal() {
        let r = parse_refusal("noise\ndeployer-hostpath link 33 www-data 777 /srv/www/my badges\n")
            .unwrap();
        assert_eq!(
            r.to_string(),
            "`/srv/www/my badges` (owner www-data, uid 33, mode 777) is a symbolic link; \
             deployer writes there as root and follows no link another user could have planted"
        );
        let evil = parse_refusal("deployer-hostpath owner 1 e\x1b]0;x\x07 755 /a\x1b[2J").unwrap();
        assert!(!evil.to_string().contains('\x1b'), "{evil}");
        assert!(!evil.fix().contains('\x1b'));
        assert_eq!(parse_refusal("deployer-hostpath link 1"), None);
        assert_eq!(parse_refusal("exit status 1"), None);
    }

    #[test]
    fn the_top_is_quoted_and_root_is_empty() {
        assert!(script("x").starts_with("hp_top='' hp_owner=0\n"));
        assert!(script_in("/t m/", 5, "x").starts_with("hp_top='/t m' hp_owner=5\n"));
    }
}
