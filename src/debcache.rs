//! The `.deb` cache on each host: the package file of the version a host
//! runs, kept before deployer changes it, so that a rollback works after
//! the repository dropped that version.
//!
//! The cache is `/var/cache/deployer/debs/` ([`DIR`]): directories `0755
//! root:root`, files `0644 root:root`, one file per version as apt names
//! its archives (`PKG_VERSION_ARCH.deb`, a `:` of the version written
//! `%3a`, see [`file_name`]), each with a sidecar `FILE.sha256` holding the
//! SHA256 checked against apt's metadata when it was kept. At most
//! [`KEPT`] versions per package are kept: the most recently kept ones
//! (the file's modification time, set when it is kept or found already
//! there), never the one just kept ([`to_prune`]).
//!
//! Three host scripts, each run through [`crate::hostpath`] (every
//! directory walked from `/`, no link, owned by root and writable by
//! nobody else; the cache directory created by `hp_enter DIR create`):
//! - [`listing_command`]: the cached versions of a package, read-only and
//!   without sudo (the directories are `0755`, the files `0644`);
//! - [`keep_command`]: as root, keep one version, copied from apt's archive
//!   cache (`/var/cache/apt/archives/`) or fetched with `apt-get download`,
//!   kept only when its SHA256 is the one apt's metadata gives
//!   ([`parse_show`]), then prune;
//! - [`install_command`]: check a cached file against its recorded SHA256
//!   in the same shell that then installs it through apt.
//!
//! Pure: file names, parsers, the pruning choice and shell text.

use std::fmt;

use crate::command::RemoteCommand;
use crate::package::PackageName;
use crate::text;
use crate::version::Version;

/// Where the cache lives on every host.
pub const DIR: &str = "/var/cache/deployer/debs";

/// How many versions of one package a host keeps.
pub const KEPT: usize = 3;

/// The exit status of [`install_command`] when the cached file is missing
/// or does not match the SHA256 recorded when it was kept.
pub const REFUSED_STATUS: i32 = 96;

/// apt's archive cache, where `apt-get install` leaves the files it
/// fetched.
const APT_ARCHIVES: &str = "/var/cache/apt/archives";

/// One version of a package in a host's cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cached {
    /// The version, as apt spells it.
    pub version: Version,
    /// Its architecture (`amd64`, `all`).
    pub arch: String,
    /// The file's name in [`DIR`].
    pub file: String,
    /// The SHA256 recorded when it was kept (lowercase hex).
    pub sha256: String,
    /// When it was last kept, in nanoseconds since the epoch (host's
    /// clock, the file's modification time): two keeps in one second are
    /// still told apart.
    pub kept_at: u64,
}

impl Cached {
    /// The file's full path on the host.
    pub fn path(&self) -> String {
        format!("{DIR}/{}", self.file)
    }
}

/// apt's name for the package file of `package` `version` for `arch`:
/// `PKG_VERSION_ARCH.deb`, with the epoch's `:` written `%3a`, as in
/// `/var/cache/apt/archives/` and as `apt-get download` saves it.
pub fn file_name(package: &PackageName, version: &Version, arch: &str) -> String {
    format!(
        "{package}_{}_{arch}.deb",
        version.as_str().replace(':', "%3a")
    )
}

/// The version and architecture a cache file of `package` is named for,
/// or `None` for a name [`file_name`] would not give.
pub fn parse_file_name(package: &PackageName, name: &str) -> Option<(Version, String)> {
    let rest = name
        .strip_prefix(package.as_str())?
        .strip_prefix('_')?
        .strip_suffix(".deb")?;
    let (version, arch) = rest.rsplit_once('_')?;
    let arch_ok = !arch.is_empty()
        && arch
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !arch_ok || version.contains('_') || version.contains(':') {
        return None;
    }
    let version: Version = version.replace("%3a", ":").parse().ok()?;
    (file_name(package, &version, arch) == name).then(|| (version, arch.to_string()))
}

/// Whether `s` is a SHA256 as the cache records it: 64 lowercase hex
/// digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What apt's metadata says of one version: its architecture and the
/// SHA256 of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// `Architecture:`.
    pub arch: String,
    /// `SHA256:`, lowercase.
    pub sha256: String,
}

/// `apt-cache show PKG=VERSION`, in English: the version's stanzas, from
/// the package lists (with `SHA256:`) and from dpkg's status (without).
/// Needs no root.
pub fn show_command(package: &PackageName, version: &Version) -> RemoteCommand {
    RemoteCommand::new("apt-cache")
        .arg("show")
        .arg(format!("{package}={version}"))
        .env("LC_ALL", "C")
        .named("apt-cache show")
}

/// Read what [`show_command`] printed: the first stanza of `package`
/// `version` that has a `SHA256:` field. An error says why there is none
/// (the repository no longer offers the version: only dpkg's status
/// stanza, which has no checksum, is left).
pub fn parse_show(text: &str, package: &PackageName, version: &Version) -> Result<Meta, String> {
    let mut seen = false;
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                (key == name).then(|| value.trim())
            })
        };
        if field("Package") != Some(package.as_str()) {
            continue;
        }
        if field("Version")
            .and_then(|v| v.parse::<Version>().ok())
            .as_ref()
            != Some(version)
        {
            continue;
        }
        seen = true;
        let (Some(arch), Some(sum)) = (field("Architecture"), field("SHA256")) else {
            continue;
        };
        let sum = sum.to_ascii_lowercase();
        if !is_sha256(&sum) {
            return Err(format!(
                "apt's metadata gives an unreadable SHA256 for `{package}` {version}: `{}`",
                text::clipped_line(&sum, text::REMOTE_TEXT_MAX)
            ));
        }
        if parse_file_name(package, &file_name(package, version, arch)).is_none() {
            return Err(format!(
                "apt's metadata gives an unexpected architecture for `{package}` {version}: `{}`",
                text::clipped_line(arch, text::REMOTE_TEXT_MAX)
            ));
        }
        return Ok(Meta {
            arch: arch.to_string(),
            sha256: sum,
        });
    }
    Err(if seen {
        format!("apt's metadata has no SHA256 for `{package}` {version}: no repository offers it any more")
    } else {
        format!("apt knows nothing of `{package}` {version}")
    })
}

/// Lists the cached files of `$2` in `$1`: one line `deb MTIME SHA256
/// FILE` each (`-` for a missing or unreadable sidecar). A missing cache
/// lists nothing.
const LIST: &str = r#"set -u
dir=$1 pkg=$2
hp_enter "$dir"
[ -z "$hp_missing" ] || exit 0
for f in "$pkg"_*.deb; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    s=$(head -c 64 -- "$f.sha256" 2>/dev/null) || s=
    printf 'deb %s %s %s\n' "$(stat -c %.9Y -- "$f")" "${s:--}" "$f"
done
"#;

/// The cached versions of `package` on a host, read-only and without
/// sudo; read the answer with [`parse_listing`].
pub fn listing_command(package: &PackageName) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args([
            "-c",
            &crate::hostpath::script(LIST),
            "deployer-debcache",
            DIR,
            package.as_str(),
        ])
        .named("the .deb cache listing")
}

/// Read what [`listing_command`] printed: the usable entries, most
/// recently kept first. A file without a readable SHA256, or with a name
/// [`file_name`] would not give, is left out.
pub fn parse_listing(package: &PackageName, stdout: &str) -> Vec<Cached> {
    let mut out: Vec<Cached> = stdout
        .lines()
        .filter_map(|line| {
            let mut f = line.strip_prefix("deb ")?.splitn(3, ' ');
            let kept_at = parse_kept_at(f.next()?)?;
            let sha256 = f.next()?.to_string();
            let file = f.next()?.to_string();
            let (version, arch) = parse_file_name(package, &file)?;
            is_sha256(&sha256).then_some(Cached {
                version,
                arch,
                file,
                sha256,
                kept_at,
            })
        })
        .collect();
    out.sort_by(|a, b| b.kept_at.cmp(&a.kept_at).then(b.version.cmp(&a.version)));
    out
}

/// A modification time as `stat -c %.9Y` prints it (`SECONDS.NANOS`, or
/// whole seconds), in nanoseconds since the epoch.
fn parse_kept_at(s: &str) -> Option<u64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let nanos: u64 = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?;
    secs.parse::<u64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)
}

/// The files to remove once `keeping` (a file name) is kept: all but the
/// [`KEPT`] most recently kept of `cached`, counting `keeping` as the most
/// recent, and never `keeping` itself.
pub fn to_prune(cached: &[Cached], keeping: &str) -> Vec<String> {
    let mut others: Vec<&Cached> = cached.iter().filter(|c| c.file != keeping).collect();
    others.sort_by(|a, b| b.kept_at.cmp(&a.kept_at).then(b.version.cmp(&a.version)));
    others
        .iter()
        .skip(KEPT.saturating_sub(1))
        .map(|c| c.file.clone())
        .collect()
}

/// Keeps `$4` (the file of `$2` `$3`) in `$1` with SHA256 `$5`, then
/// removes the files named after them. Prints one line on stdout:
/// `deployer-debcache kept SOURCE` (`cache`: it was there already, with
/// the right checksum; `archives`; `repository`), `deployer-debcache
/// mismatch SOURCE SHA256` (the file found does not match: not kept) or
/// `deployer-debcache unavailable WHY`; and `deployer-debcache pruned
/// FILE` for each file removed.
const KEEP: &str = r#"set -u
dir=$1 pkg=$2 ver=$3 file=$4 sum=$5
shift 5
umask 022
sum_of() { sha256sum < "$1" | cut -c1-64; }
hp_enter "$dir" create
hp_file "$file"; hp_file "$file.sha256"
if [ -f "$file" ] && [ "$(head -c 64 -- "$file.sha256" 2>/dev/null)" = "$sum" ] && [ "$(sum_of "$file")" = "$sum" ]; then
    touch -c -- "$file"
    echo "deployer-debcache kept cache"
else
    hp_enter "$dir/partial" create
    chmod 0700 . || exit 1
    rm -f -- ./*.deb
    from=
    src=/var/cache/apt/archives/$file
    if [ -f "$src" ] && [ ! -L "$src" ] && [ "$(sum_of "$src")" = "$sum" ]; then
        cp -- "$src" "$file" && from=archives
    fi
    if [ -z "$from" ]; then
        if out=$(apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" 2>&1) && [ -f "$file" ]; then
            from=repository
        else
            why=$(printf '%s\n' "$out" | grep '^E: ' | head -n 1)
            printf 'deployer-debcache unavailable %s\n' "${why:-apt-get download saved no $file}" | head -c 600
            echo
            exit 0
        fi
    fi
    got=$(sum_of "$file")
    if [ "$got" != "$sum" ]; then
        rm -f -- "$file"
        echo "deployer-debcache mismatch $from $got"
        exit 0
    fi
    chmod 0644 "$file" || exit 1
    hp_enter "$dir"
    hp_file "$file"; hp_file "$file.sha256"; hp_file "$file.sha256.new"
    printf '%s\n' "$sum" > "$file.sha256.new" || exit 1
    mv -f -- "partial/$file" "$file" || exit 1
    mv -f -- "$file.sha256.new" "$file.sha256" || exit 1
    touch -c -- "$file"
    echo "deployer-debcache kept $from"
fi
for p; do
    hp_file "$p"
    rm -f -- "$p" "$p.sha256" && echo "deployer-debcache pruned $p"
done
"#;

/// As root: keep `package` `version` (`meta` from [`parse_show`], or the
/// entry already cached) in the host's cache, then remove `prune` (from
/// [`to_prune`]). Read the answer with [`parse_keep`]; a refused path
/// exits [`crate::hostpath::REFUSED_STATUS`].
pub fn keep_command(
    package: &PackageName,
    version: &Version,
    meta: &Meta,
    prune: &[String],
) -> RemoteCommand {
    let file = file_name(package, version, &meta.arch);
    RemoteCommand::new("sh")
        .args([
            "-c",
            &crate::hostpath::script(KEEP),
            "deployer-debcache",
            DIR,
            package.as_str(),
            version.as_str(),
            &file,
            &meta.sha256,
        ])
        .args(prune)
        .named("keeping the .deb")
        .sudo()
}

/// What [`keep_command`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// The file is in the cache, with the right checksum; where it came
    /// from (`cache`, `archives`, `repository`), and the files pruned.
    Kept {
        /// Where the file came from.
        from: String,
        /// The files removed to keep [`KEPT`] versions.
        pruned: Vec<String>,
    },
    /// The file found did not match apt's SHA256 and was not kept.
    Mismatch {
        /// Where it came from.
        from: String,
        /// Its SHA256.
        got: String,
    },
    /// No file could be found (apt's words, made safe).
    Unavailable(String),
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kept::Kept { from, pruned } => {
                let from = match from.as_str() {
                    "cache" => "already cached, checksum checked",
                    "archives" => "from apt's archive cache, checksum checked",
                    _ => "fetched from the repository, checksum checked",
                };
                write!(f, "kept in {DIR} ({from})")?;
                if !pruned.is_empty() {
                    write!(f, "; removed {}", pruned.join(", "))?;
                }
                Ok(())
            }
            Kept::Mismatch { from, got } => write!(
                f,
                "not kept: the file from {} has SHA256 {got}, not the one apt's metadata gives",
                if from == "archives" {
                    "apt's archive cache"
                } else {
                    "the repository"
                }
            ),
            Kept::Unavailable(why) => write!(f, "not kept: no file to keep: {why}"),
        }
    }
}

/// Read what [`keep_command`] printed (stdout), or `None` when it printed
/// none of its answers.
pub fn parse_keep(stdout: &str) -> Option<Kept> {
    let mut answer = None;
    let mut pruned = Vec::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("deployer-debcache ") else {
            continue;
        };
        let (word, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let safe = |s: &str| text::clipped_line(s, text::REMOTE_TEXT_MAX);
        match word {
            "kept" => {
                answer = Some(Kept::Kept {
                    from: safe(rest),
                    pruned: Vec::new(),
                })
            }
            "mismatch" => {
                let (from, got) = rest.split_once(' ').unwrap_or((rest, "?"));
                answer = Some(Kept::Mismatch {
                    from: safe(from),
                    got: safe(got),
                });
            }
            "unavailable" => answer = Some(Kept::Unavailable(safe(rest))),
            "pruned" => pruned.push(safe(rest)),
            _ => {}
        }
    }
    match answer {
        Some(Kept::Kept { from, .. }) => Some(Kept::Kept { from, pruned }),
        other => other,
    }
}

/// Checks `$2` in `$1` against SHA256 `$3` (and against its sidecar),
/// then runs the rest of the arguments, the apt command that installs it.
const CHECKED: &str = r#"set -u
dir=$1 file=$2 sum=$3
shift 3
hp_enter "$dir"
if [ -n "$hp_missing" ]; then echo "deployer-debcache missing $dir/$file" >&2; exit 96; fi
hp_file "$file"
if [ ! -f "$file" ]; then echo "deployer-debcache missing $dir/$file" >&2; exit 96; fi
side=$(head -c 64 -- "$file.sha256" 2>/dev/null)
got=$(sha256sum < "$file" | cut -c1-64)
if [ "$side" != "$sum" ] || [ "$got" != "$sum" ]; then
    echo "deployer-debcache corrupt $dir/$file $got" >&2
    exit 96
fi
exec "$@"
"#;

/// `apt` (an `apt-get` command of the cached file's full path, without
/// `sudo`), run only after the cached file was checked against the SHA256
/// recorded when it was kept, in the same shell; through `sudo` when
/// `root`. The cache's directories are root's alone (checked on the way),
/// so nobody else can change the file between the check and apt.
pub fn install_command(cached: &Cached, apt: &[String], root: bool) -> RemoteCommand {
    let cmd = RemoteCommand::new("sh")
        .args([
            "-c",
            &crate::hostpath::script(CHECKED),
            "deployer-debcache",
            DIR,
            &cached.file,
            &cached.sha256,
        ])
        .args(apt)
        .named("apt-get");
    if root {
        cmd.sudo()
    } else {
        cmd
    }
}

/// [`install_command`] for people: what it checks, then the apt command
/// it runs.
pub fn install_shown(cached: &Cached, apt: &[String], root: bool) -> String {
    let words: Vec<String> = apt.iter().map(|w| crate::command::quote(w)).collect();
    format!(
        "[check {} against its SHA256 {}] && {}{}",
        cached.path(),
        cached.sha256,
        if root { "sudo -n " } else { "" },
        words.join(" ")
    )
}

/// Why [`install_command`] refused to run apt, from its output (stdout
/// and stderr, in any order): the file is missing or corrupt, or a path
/// on the way was refused. One line, made safe.
pub fn install_refusal(output: &str) -> Option<String> {
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("deployer-debcache missing ") {
            return Some(format!(
                "the cached file `{}` is gone from the host's .deb cache; nothing was installed",
                text::clipped_line(rest, text::REMOTE_TEXT_MAX)
            ));
        }
        if let Some(rest) = line.strip_prefix("deployer-debcache corrupt ") {
            let (path, got) = rest.rsplit_once(' ').unwrap_or((rest, "?"));
            return Some(format!(
                "the cached file `{}` has SHA256 {}, not the one recorded when it was kept: refusing to install it; remove it (it is kept again from the repository, if it still offers it)",
                text::clipped_line(path, text::REMOTE_TEXT_MAX),
                text::clipped_line(got, 64)
            ));
        }
    }
    crate::hostpath::refused(output).map(|why| format!("refusing the host's .deb cache: {why}"))
}

/// Where apt keeps the file of `package` `version` for `arch` after an
/// install (for messages).
pub fn archive_path(package: &PackageName, version: &Version, arch: &str) -> String {
    format!("{APT_ARCHIVES}/{}", file_name(package, version, arch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(s: &str) -> PackageName {
        s.parse().unwrap()
    }
    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }
    const SUM: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn cached(version: &str, at: u64) -> Cached {
        Cached {
            version: v(version),
            arch: "all".into(),
            file: file_name(&pkg("web"), &v(version), "all"),
            sha256: SUM.into(),
            kept_at: at,
        }
    }

    #[test]
    fn file_names_are_apts_with_the_epoch_escaped() {
        assert_eq!(
            file_name(&pkg("web"), &v("1:2.0-1"), "amd64"),
            "web_1%3a2.0-1_amd64.deb"
        );
        assert_eq!(
            file_name(&pkg("lib+x"), &v("1.0~rc1"), "all"),
            "lib+x_1.0~rc1_all.deb"
        );
        assert_eq!(
            parse_file_name(&pkg("web"), "web_1%3a2.0-1_amd64.deb"),
            Some((v("1:2.0-1"), "amd64".to_string()))
        );
        assert_eq!(
            archive_path(&pkg("web"), &v("1.0"), "all"),
            "/var/cache/apt/archives/web_1.0_all.deb"
        );
    }

    #[test]
    fn file_names_of_other_packages_or_odd_shapes_are_not_ours() {
        let web = pkg("web");
        for name in [
            "web-api_1.0_all.deb",
            "web_1.0_all.deb.sha256",
            "web_1.0.deb",
            "web_1.0_ALL.deb",
            "web_1:0_all.deb",
            "web__all.deb",
            "web_1.0_all_x.deb",
        ] {
            assert_eq!(parse_file_name(&web, name), None, "{name}");
        }
    }

    #[test]
    fn apt_cache_show_gives_the_checksum_of_the_repositorys_stanza() {
        let text = format!(
            "Package: web\nVersion: 1.0\nStatus: install ok installed\nArchitecture: all\n\n\
             Package: web\nVersion: 1.0\nArchitecture: all\nFilename: pool/web_1.0_all.deb\nSHA256: {}\n\n",
            SUM.to_uppercase()
        );
        assert_eq!(
            parse_show(&text, &pkg("web"), &v("1.0")),
            Ok(Meta {
                arch: "all".into(),
                sha256: SUM.into()
            })
        );
        // an equal spelling of the version is the same version
        assert!(parse_show(&text, &pkg("web"), &v("0:1.0")).is_ok());
    }

    #[test]
    fn apt_cache_show_without_a_checksum_or_a_good_one_is_refused() {
        let status_only =
            "Package: web\nVersion: 1.0\nStatus: install ok installed\nArchitecture: all\n";
        let err = parse_show(status_only, &pkg("web"), &v("1.0")).unwrap_err();
        assert!(err.contains("no SHA256"), "{err}");
        let err = parse_show("", &pkg("web"), &v("1.0")).unwrap_err();
        assert!(err.contains("knows nothing"), "{err}");
        let short = "Package: web\nVersion: 1.0\nArchitecture: all\nSHA256: abc\n";
        let err = parse_show(short, &pkg("web"), &v("1.0")).unwrap_err();
        assert!(err.contains("unreadable SHA256"), "{err}");
        let other = format!("Package: web\nVersion: 2.0\nArchitecture: all\nSHA256: {SUM}\n");
        assert!(parse_show(&other, &pkg("web"), &v("1.0")).is_err());
        let odd_arch = format!("Package: web\nVersion: 1.0\nArchitecture: a/b\nSHA256: {SUM}\n");
        let err = parse_show(&odd_arch, &pkg("web"), &v("1.0")).unwrap_err();
        assert!(err.contains("architecture"), "{err}");
    }

    #[test]
    fn the_listing_keeps_usable_entries_most_recent_first() {
        let out = format!(
            "deb 100.000000002 {SUM} web_1.0_all.deb\n\
             deb 100.1 {SUM} web_3.0_all.deb\n\
             deb 200 - web_2.0_all.deb\n\
             deb 250 {SUM} web-api_2.0_all.deb\n\
             deb x {SUM} web_4.0_all.deb\n\
             noise\n\
             deb 100.000000001 {SUM} web_1%3a0.5_all.deb\n\
             deb 1e3 {SUM} web_5.0_all.deb\n\
             deb .5 {SUM} web_6.0_all.deb\n"
        );
        // keeps within one second are told apart by their nanoseconds
        let listed = parse_listing(&pkg("web"), &out);
        let versions: Vec<String> = listed.iter().map(|c| c.version.to_string()).collect();
        assert_eq!(versions, ["3.0", "1.0", "1:0.5"]);
        assert_eq!(listed[0].kept_at, 100_100_000_000);
        assert_eq!(parse_kept_at("1796612907"), Some(1_796_612_907_000_000_000));
        assert_eq!(listed[0].path(), "/var/cache/deployer/debs/web_3.0_all.deb");
    }

    #[test]
    fn pruning_keeps_the_three_most_recently_kept_and_never_the_one_just_kept() {
        let all = [
            cached("1.0", 100),
            cached("2.0", 200),
            cached("3.0", 300),
            cached("4.0", 50),
        ];
        // keeping a new one: it and the two most recent others stay
        assert_eq!(
            to_prune(&all, "web_5.0_all.deb"),
            ["web_1.0_all.deb", "web_4.0_all.deb"]
        );
        // keeping one already there (the oldest): it is never removed
        assert_eq!(to_prune(&all, "web_4.0_all.deb"), ["web_1.0_all.deb"]);
        assert!(to_prune(&all[..2], "web_9.0_all.deb").is_empty());
        assert!(to_prune(&[], "web_9.0_all.deb").is_empty());
    }

    #[test]
    fn what_keeping_printed_is_read_back() {
        assert_eq!(
            parse_keep(
                "deployer-debcache kept archives\ndeployer-debcache pruned web_1.0_all.deb\n"
            ),
            Some(Kept::Kept {
                from: "archives".into(),
                pruned: vec!["web_1.0_all.deb".into()]
            })
        );
        assert_eq!(
            parse_keep(&format!("deployer-debcache mismatch repository {SUM}\n")),
            Some(Kept::Mismatch {
                from: "repository".into(),
                got: SUM.into()
            })
        );
        let k = parse_keep("W: x\ndeployer-debcache unavailable E: Can't find a source to download version '1.0' of 'web:amd64'\n").unwrap();
        assert!(k.to_string().contains("Can't find a source"), "{k}");
        assert_eq!(parse_keep("nothing\n"), None);
    }

    #[test]
    fn an_install_refused_by_the_check_says_why() {
        let why = install_refusal(&format!(
            "deployer-debcache corrupt /var/cache/deployer/debs/web_1.0_all.deb {SUM}\n"
        ))
        .unwrap();
        assert!(
            why.contains("web_1.0_all.deb") && why.contains("not the one recorded"),
            "{why}"
        );
        let why =
            install_refusal("deployer-debcache missing /var/cache/deployer/debs/web_1.0_all.deb\n")
                .unwrap();
        assert!(why.contains("is gone"), "{why}");
        let why =
            install_refusal("deployer-hostpath link 0 root 777 /var/cache/deployer\n").unwrap();
        assert!(why.contains("/var/cache/deployer"), "{why}");
        assert_eq!(install_refusal("E: something else\n"), None);
    }

    #[test]
    fn commands_quote_every_value_and_run_as_root_only_where_they_write() {
        let meta = Meta {
            arch: "all".into(),
            sha256: SUM.into(),
        };
        let keep = keep_command(&pkg("web"), &v("1:1.0"), &meta, &["web_0.1_all.deb".into()]);
        assert!(keep.as_str().starts_with("sudo -n sh -c "), "{keep}");
        assert!(keep.as_str().contains(" web_1%3a1.0_all.deb "), "{keep}");
        assert!(keep.as_str().ends_with(" web_0.1_all.deb"), "{keep}");
        assert!(!listing_command(&pkg("web")).as_str().starts_with("sudo"));
        let apt = vec!["apt-get".to_string(), "-s".into(), "install".into()];
        let c = cached("1.0", 1);
        assert!(!install_command(&c, &apt, false)
            .as_str()
            .starts_with("sudo"));
        assert!(install_command(&c, &apt, true)
            .as_str()
            .starts_with("sudo -n sh -c "));
    }
}
