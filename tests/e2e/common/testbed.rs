//! Real Debian hosts for end-to-end tests: a thin Rust face on the script
//! `tests/testbed/testbed`, which does every privileged step (namespaces,
//! overlays, sshd, the APT repository). This module starts one `testbed serve`
//! per [`Testbed`], reads what it wrote, and offers scenarios and faults.
//!
//! It must not re-implement what the script does: when a step needs root
//! inside a host, it calls the script. The only things done here directly are
//! the ones that need this process itself: holding dpkg's and apt's locks (a
//! lock lives as long as the process holding it), and reading a host from
//! outside, through `/proc` (its files, its processes, and signals to them).
//!
//! Every host is a real Debian system (12 or 13, booting systemd or not, see
//! [`HostKind`]) with its own sshd on its own loopback address; see
//! `tests/testbed/README.md` for the design.

use super::skip::skip;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The script doing the privileged mechanics.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testbed/testbed");

/// How long `start` waits for the hosts; the first run on a machine also
/// builds the root filesystem (about two minutes), so this is generous.
const START_TIMEOUT: Duration = Duration::from_secs(900);

/// How long `Drop` waits for `testbed serve` to tear the hosts down.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Tools the script needs on this machine (the hosts bring their own).
const TOOLS: [&str; 11] = [
    "debootstrap",
    "dpkg-deb",
    "dpkg-scanpackages",
    "ssh",
    "ssh-keygen",
    "unshare",
    "nsenter",
    "setpriv",
    "flock",
    "mount",
    "chroot",
];

/// What a host is: a Debian release, and whether it boots systemd as PID 1
/// (`systemd-nspawn`) or runs the testbed's small init with no service
/// manager (the default). `tests/testbed/README.md` describes both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKind {
    /// Debian 12 (apt 2.6, dpkg 1.21, OpenSSH 9.2), no systemd.
    Bookworm,
    /// Debian 13 (apt 3.0, dpkg 1.22, OpenSSH 10.0), no systemd.
    Trixie,
    /// Debian 12 booting systemd (PID 1, journald, dbus, ssh.service).
    BookwormSystemd,
    /// Debian 13 booting systemd.
    TrixieSystemd,
}

impl HostKind {
    /// Every kind, for tests that run one scenario on each.
    pub const ALL: [HostKind; 4] = [
        HostKind::Bookworm,
        HostKind::Trixie,
        HostKind::BookwormSystemd,
        HostKind::TrixieSystemd,
    ];

    /// The kind's name for `testbed serve STAGE:N:KIND`.
    pub fn name(self) -> &'static str {
        match self {
            HostKind::Bookworm => "bookworm",
            HostKind::Trixie => "trixie",
            HostKind::BookwormSystemd => "bookworm-systemd",
            HostKind::TrixieSystemd => "trixie-systemd",
        }
    }

    /// The Debian major release: 12 or 13.
    pub fn debian_major(self) -> u32 {
        match self {
            HostKind::Bookworm | HostKind::BookwormSystemd => 12,
            HostKind::Trixie | HostKind::TrixieSystemd => 13,
        }
    }

    /// Whether the host boots systemd as PID 1.
    pub fn systemd(self) -> bool {
        matches!(self, HostKind::BookwormSystemd | HostKind::TrixieSystemd)
    }

    fn from_name(name: &str) -> HostKind {
        HostKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .unwrap_or_else(|| panic!("unknown host kind {name:?}"))
    }
}

/// One host of a testbed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHandle {
    /// The `Host` alias in the testbed's `~/.ssh/config`: `<stage>-<n>`.
    pub alias: String,
    /// The stage the host belongs to.
    pub stage: String,
    /// Its loopback address; sshd listens there on port 22.
    pub address: String,
    /// PID (as seen from this machine) of the host's init: PID 1 of its PID
    /// namespace, chrooted into its root (systemd, on a systemd host);
    /// `/proc/<pid>/root` is its `/`.
    pub init_pid: u32,
    /// Its release, and whether it boots systemd.
    pub kind: HostKind,
}

/// A set of running hosts, in stages, with the ssh client files to reach them.
/// Dropping it stops every host, frees its addresses and removes its directory
/// (kept when `DEPLOYER_TESTBED_KEEP=1`, for a look after a failure).
pub struct Testbed {
    dir: PathBuf,
    home: PathBuf,
    tempdir: Option<tempfile::TempDir>,
    hosts: Vec<HostHandle>,
    serve: Child,
    // Closing it tells `testbed serve` to tear down.
    serve_stdin: Option<ChildStdin>,
    // Kept open so that `serve` never writes into a closed pipe.
    _serve_stdout: Option<ChildStdout>,
    startup: Duration,
}

/// Why a testbed cannot run here, or `None` when it can.
fn unmet_requirement() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("the testbed needs root (namespaces, overlay mounts)".into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .collect();
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|tool| !dirs.iter().any(|d| d.join(tool).is_file()))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing tools: {} (apt-get install debootstrap dpkg-dev openssh-client)",
            missing.join(", ")
        ));
    }
    None
}

/// Why systemd hosts cannot run here (`systemd-nspawn` missing), or `None`.
fn unmet_systemd() -> Option<String> {
    let found = ["/usr/bin/systemd-nspawn", "/bin/systemd-nspawn"]
        .iter()
        .any(|p| Path::new(p).is_file());
    (!found).then(|| {
        "systemd hosts need systemd-nspawn (apt-get install systemd-container)".to_string()
    })
}

/// The script as a command, with `args`.
fn script<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("bash");
    cmd.arg(SCRIPT).args(args).stdin(Stdio::null());
    cmd
}

/// Run a command to the end; panic with its stderr unless it succeeds.
fn run_ok(mut cmd: Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}",
            out.status,
            indent(&String::from_utf8_lossy(&out.stderr))
        );
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

impl Testbed {
    /// Start hosts: `&[("test", 2), ("prod", 3)]` gives `test-1`, `test-2`,
    /// `prod-1`..`prod-3`, all reachable by the time this returns.
    ///
    /// Returns `None`, after recording the skip (see [`skip`]), when this
    /// machine cannot run a testbed (not root, a tool missing); with `CI=true`
    /// it panics instead, so that CI never passes by skipping.
    pub fn start(stages: &[(&str, usize)]) -> Option<Testbed> {
        let groups: Vec<(&str, usize, HostKind)> = stages
            .iter()
            .map(|&(stage, n)| (stage, n, HostKind::Bookworm))
            .collect();
        Testbed::start_kinds(&groups)
    }

    /// Like [`Testbed::start`], every host of `kind`: for a scenario run
    /// on each kind of host.
    pub fn start_as(kind: HostKind, stages: &[(&str, usize)]) -> Option<Testbed> {
        let groups: Vec<(&str, usize, HostKind)> =
            stages.iter().map(|&(stage, n)| (stage, n, kind)).collect();
        Testbed::start_kinds(&groups)
    }

    /// Start hosts of given kinds: `&[("test", 2, HostKind::Trixie)]`. A
    /// stage named again continues its numbering, so a stage can mix kinds:
    /// `&[("test", 1, HostKind::Bookworm), ("test", 1, HostKind::Trixie)]`
    /// gives `test-1` (bookworm) and `test-2` (trixie). The first use of a
    /// kind on a machine builds its root filesystem (minutes; cached).
    pub fn start_kinds(groups: &[(&str, usize, HostKind)]) -> Option<Testbed> {
        Testbed::start_groups(groups, None)
    }

    /// Like [`Testbed::start`], with at most `per_slot` hosts in each slot
    /// (127.77.S.1 to 127.77.S.`per_slot`), so that a few hosts span
    /// several slots as a testbed of more than 254 hosts does: the code
    /// path of the large testbeds (`bench/fleet`), at a size CI affords.
    pub fn start_spread(stages: &[(&str, usize)], per_slot: usize) -> Option<Testbed> {
        let groups: Vec<(&str, usize, HostKind)> = stages
            .iter()
            .map(|&(stage, n)| (stage, n, HostKind::Bookworm))
            .collect();
        Testbed::start_groups(&groups, Some(per_slot))
    }

    fn start_groups(
        groups: &[(&str, usize, HostKind)],
        per_slot: Option<usize>,
    ) -> Option<Testbed> {
        let systemd = groups.iter().any(|g| g.2.systemd());
        if let Some(why) = unmet_requirement().or_else(|| systemd.then(unmet_systemd).flatten()) {
            skip(&format!("no testbed: {why}"));
            return None;
        }
        let t0 = Instant::now();
        let tempdir = tempfile::Builder::new()
            .prefix("deployer-testbed-")
            .tempdir()
            .expect("create the testbed directory");
        let dir = tempdir.path().to_path_buf();
        let log = File::create(dir.join("serve.log")).expect("create serve.log");
        let mut serve = script(
            std::iter::once("serve".to_string())
                .chain(std::iter::once(dir.display().to_string()))
                .chain(
                    groups
                        .iter()
                        .map(|(s, n, kind)| format!("{s}:{n}:{}", kind.name())),
                ),
        );
        if let Some(n) = per_slot {
            serve.env("DEPLOYER_TESTBED_SLOT_HOSTS", n.to_string());
        }
        let mut child = serve
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn `testbed serve`");

        // Wait for "ready" on a thread, so that the wait is bounded.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let ready =
                matches!(reader.read_line(&mut line), Ok(n) if n > 0) && line.starts_with("ready ");
            let _ = tx.send((ready, reader.into_inner()));
        });
        let ready = rx.recv_timeout(START_TIMEOUT);
        let mut testbed = Testbed {
            dir: dir.clone(),
            home: dir.join("home"),
            tempdir: Some(tempdir),
            hosts: Vec::new(),
            serve_stdin: child.stdin.take(),
            serve: child,
            _serve_stdout: None,
            startup: Duration::ZERO,
        };
        match ready {
            Ok((true, stdout)) => testbed._serve_stdout = Some(stdout),
            Ok((false, _)) | Err(_) => {
                let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
                drop(testbed);
                panic!("the testbed did not start:\n{}", indent(&log));
            }
        }
        testbed.hosts = testbed.read_hosts();
        testbed.startup = t0.elapsed();
        eprintln!(
            "testbed: {} hosts up in {:.2} s in {}",
            testbed.hosts.len(),
            testbed.startup.as_secs_f64(),
            dir.display()
        );
        Some(testbed)
    }

    fn read_hosts(&self) -> Vec<HostHandle> {
        let text = std::fs::read_to_string(self.dir.join("hosts.tsv")).expect("read hosts.tsv");
        text.lines()
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(f.len(), 3, "bad hosts.tsv line {line:?}");
                let stage = f[0].rsplit_once('-').expect("alias is <stage>-<n>").0;
                let kind = std::fs::read_to_string(self.dir.join("hosts").join(f[0]).join("kind"))
                    .expect("read the host's kind");
                HostHandle {
                    alias: f[0].to_string(),
                    stage: stage.to_string(),
                    address: f[1].to_string(),
                    init_pid: f[2].parse().expect("init pid"),
                    kind: HostKind::from_name(kind.trim()),
                }
            })
            .collect()
    }

    /// The testbed's directory: `deployer.ini` goes here, and the commands of
    /// [`Testbed::deployer`] run here.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `HOME` to use: `.ssh/config`, `.ssh/known_hosts` and
    /// `.ssh/id_ed25519` reach every host, as `deployer` by default.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The ssh client config file, for `ssh -F`.
    pub fn ssh_config(&self) -> PathBuf {
        self.home().join(".ssh/config")
    }

    /// Add `lines` at the end of the ssh client config: options not set
    /// earlier (first value wins) take effect, e.g. a `ProxyJump`.
    pub fn append_ssh_config(&self, lines: &str) {
        let path = self.ssh_config();
        let mut text = std::fs::read_to_string(&path).expect("read the ssh config");
        text.push('\n');
        text.push_str(lines);
        std::fs::write(&path, text).expect("write the ssh config");
    }

    /// Every host, in stage order.
    pub fn all_hosts(&self) -> &[HostHandle] {
        &self.hosts
    }

    /// The hosts of `stage`, in order.
    pub fn hosts(&self, stage: &str) -> Vec<HostHandle> {
        self.hosts
            .iter()
            .filter(|h| h.stage == stage)
            .cloned()
            .collect()
    }

    /// The host with alias `alias`; panics when there is none.
    pub fn host(&self, alias: &str) -> &HostHandle {
        self.hosts
            .iter()
            .find(|h| h.alias == alias)
            .unwrap_or_else(|| panic!("no host `{alias}` in this testbed"))
    }

    /// Write `deployer.ini` into [`Testbed::dir`]: `[environment]` with
    /// `deb_packages` and `stages`, then `extra_environment` verbatim, then one
    /// `[stage:NAME] hosts = ALIASES` per stage, then `extra_sections` verbatim
    /// (the text is made by `testbed config`, which `up` uses too).
    pub fn write_config(
        &self,
        packages: &[&str],
        extra_environment: &str,
        extra_sections: &str,
    ) -> PathBuf {
        let dir = self.dir_str();
        let out = run_ok(
            script([
                "config",
                &dir,
                &packages.join(" "),
                extra_environment,
                extra_sections,
            ]),
            "testbed config",
        );
        let path = self.dir.join("deployer.ini");
        std::fs::write(&path, &out.stdout).expect("write deployer.ini");
        path
    }

    /// The `deployer` binary under test, set up to use this testbed: `HOME` is
    /// [`Testbed::home`], no ssh agent, working directory [`Testbed::dir`].
    pub fn deployer(&self) -> Command {
        super::bin::deployer(&self.dir, self.home())
    }

    /// Run `cmd` on `host` as `user` with the system ssh client (`ssh -F`,
    /// `BatchMode=yes`, strict host key checking, 5 s connect timeout).
    pub fn ssh(&self, host: &str, user: &str, cmd: &str) -> Output {
        self.ssh_with(host, user, &[], cmd)
    }

    /// Like [`Testbed::ssh`] with extra `ssh` options (`-o X=Y`...) first.
    pub fn ssh_with(&self, host: &str, user: &str, options: &[&str], cmd: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
            .args(options)
            .args(["-l", user, host, cmd])
            .env("HOME", self.home())
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .output()
            .expect("run ssh")
    }

    /// Run `cmd` (a `sh -c` script) as root inside `host`, bypassing ssh.
    pub fn exec(&self, host: &str, cmd: &str) -> Output {
        self.host(host);
        script(["exec", &self.dir_str(), host, "sh", "-c", cmd])
            .output()
            .expect("run testbed exec")
    }

    fn dir_str(&self) -> String {
        self.dir.display().to_string()
    }

    /// Run a script subcommand about `host`; panic with its stderr on failure.
    fn host_op(&self, op: &str, host: &str, args: &[&str]) -> Output {
        self.host(host);
        let dir = self.dir_str();
        let mut all = vec![op, &dir, host];
        all.extend_from_slice(args);
        run_ok(script(all), &format!("testbed {op} on `{host}`"))
    }

    /// Put `host` in the given state: `Some(version)` installs exactly that
    /// version from the testbed repository (`dpkg -i`, up or down), `None`
    /// purges the package. Panics with the host's stderr on failure.
    pub fn set_versions(&self, host: &str, pkgs: &[(&str, Option<&str>)]) {
        let specs: Vec<String> = pkgs
            .iter()
            .map(|(p, v)| format!("{p}={}", v.unwrap_or("-")))
            .collect();
        let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
        self.host_op("set", host, &specs);
    }

    /// The installed version of `pkg` on `host` (dpkg status `installed`,
    /// e.g. `ii`/`hi`), or `None` (not installed, `rc`, half-installed...).
    pub fn installed(&self, host: &str, pkg: &str) -> Option<String> {
        let status = self.dpkg_status(host, pkg);
        let (abbrev, version) = status.split_once(' ')?;
        (abbrev.as_bytes().get(1) == Some(&b'i')).then(|| version.to_string())
    }

    /// dpkg's view of `pkg` on `host`: `"<abbrev> <version>"`, e.g.
    /// `"ii 0.81~pr748-191"`, `"rc 1.0-1"`, `"iU 2.0-1"`; `""` when dpkg
    /// does not know the package.
    pub fn dpkg_status(&self, host: &str, pkg: &str) -> String {
        let out = self.host_op("status", host, &[pkg]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `dpkg -r` the installed `pkg`: removed, configuration files left
    /// (`rc`; every testbed package has a conffile).
    pub fn remove_keep_config(&self, host: &str, pkg: &str) {
        self.host_op("remove", host, &[pkg]);
    }

    /// Unpack `pkg` `version` without configuring it (`iU`).
    pub fn break_package(&self, host: &str, pkg: &str, version: &str) {
        self.host_op("break", host, &[pkg, version]);
    }

    /// Add `pkg` `version` to this testbed's repository (only this one) and
    /// regenerate its index; hosts see it after `apt-get update`. Panics when
    /// the version is already there.
    pub fn publish(&self, pkg: &str, version: &str) {
        self.publish_with(pkg, version, &Publish::default());
    }

    /// [`Testbed::publish`] with extra control fields and a postinst that
    /// sleeps and/or fails; see [`Publish`] for the markers it leaves.
    pub fn publish_with(&self, pkg: &str, version: &str, options: &Publish<'_>) {
        let dir = self.dir_str();
        let mut args: Vec<String> = ["publish", &dir, pkg, version]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for field in options.fields {
            args.extend(["--field".to_string(), field.to_string()]);
        }
        if let Some(secs) = options.postinst_sleep {
            args.extend(["--postinst-sleep".to_string(), secs.to_string()]);
        }
        if options.postinst_fail {
            args.push("--postinst-fail".to_string());
        }
        // kept until the package is built
        let changelog_file;
        if let Some(text) = options.changelog {
            changelog_file = tempfile::NamedTempFile::new().expect("a temporary file");
            std::fs::write(changelog_file.path(), text).expect("the changelog is written");
            args.extend([
                "--changelog".to_string(),
                changelog_file.path().display().to_string(),
            ]);
        }
        if options.no_changelog {
            args.push("--no-changelog".to_string());
        }
        if options.service {
            args.push("--service".to_string());
        }
        if options.service_fail {
            args.push("--service-fail".to_string());
        }
        run_ok(script(args), &format!("publish `{pkg}` {version}"));
    }

    /// Remove `pkg` `version` from this testbed's repository and regenerate
    /// its index: hosts stop seeing it after `apt-get update` (before that,
    /// fetching it fails, its file being gone).
    pub fn unpublish(&self, pkg: &str, version: &str) {
        let dir = self.dir_str();
        run_ok(
            script(["unpublish", &dir, pkg, version]),
            &format!("unpublish `{pkg}` {version}"),
        );
    }

    /// `apt-mark hold` `pkg` on `host`: apt then neither upgrades nor
    /// downgrades it unless told to (`--allow-change-held-packages`).
    pub fn hold_package(&self, host: &str, pkg: &str) {
        self.host_op("exec", host, &["apt-mark", "hold", pkg]);
    }

    /// `apt-mark unhold` `pkg` on `host`.
    pub fn unhold_package(&self, host: &str, pkg: &str) {
        self.host_op("exec", host, &["apt-mark", "unhold", pkg]);
    }

    /// Whether `pkg` is on hold on `host` (`apt-mark showhold`).
    pub fn is_held(&self, host: &str, pkg: &str) -> bool {
        let out = self.host_op("exec", host, &["apt-mark", "showhold", pkg]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == pkg)
    }

    /// Fault: `host` refuses connections (its sshd listener is stopped).
    /// Undo starts sshd again with the same keys.
    pub fn stop_sshd(&self, host: &str) -> FaultGuard<'_> {
        self.host_op("sshd-stop", host, &[]);
        self.guard(host, "refuses connections", Undo::script(&["sshd-start"]))
    }

    /// Fault: `host` accepts TCP connections but never answers (its sshd
    /// listener is SIGSTOPped). Undo: SIGCONT.
    pub fn hang(&self, host: &str) -> FaultGuard<'_> {
        self.host_op("sshd-signal", host, &["STOP"]);
        self.guard(host, "hangs", Undo::script(&["sshd-signal", "CONT"]))
    }

    /// Fault: every process of `host` (sessions, apt, dpkg, sshd) is
    /// SIGSTOPped, as a host that hangs mid-deploy. Undo: SIGCONT.
    pub fn freeze(&self, host: &str) -> FaultGuard<'_> {
        self.host_op("freeze", host, &[]);
        self.guard(host, "frozen", Undo::script(&["thaw"]))
    }

    /// Fault: `host` presents new host keys (sshd restarted with them);
    /// known_hosts keeps the old ones. Undo gives the host its old keys back.
    pub fn change_host_key(&self, host: &str) -> FaultGuard<'_> {
        self.host_op("rekey", host, &[]);
        self.guard(host, "changed host key", Undo::script(&["rekey", "--undo"]))
    }

    /// Fault: dpkg's locks (`lock-frontend` and `lock`) of `host` are held
    /// until the guard is dropped, as by another apt run.
    pub fn hold_dpkg_lock(&self, host: &str) -> FaultGuard<'_> {
        self.hold_locks(
            host,
            &["var/lib/dpkg/lock-frontend", "var/lib/dpkg/lock"],
            "dpkg lock held",
        )
    }

    /// Fault: apt's package-lists lock (`/var/lib/apt/lists/lock`) of `host`
    /// is held until the guard is dropped, as by apt-daily's `apt-get update`
    /// or unattended-upgrades: `apt-get update` fails at once with `Could not
    /// get lock /var/lib/apt/lists/lock` (apt does not wait for this one).
    pub fn hold_apt_lists_lock(&self, host: &str) -> FaultGuard<'_> {
        self.hold_locks(host, &["var/lib/apt/lists/lock"], "apt lists lock held")
    }

    /// Take apt's kind of lock (`fcntl` `F_SETLK` write lock) on each of
    /// `files` (relative to the host's `/`) for as long as the guard lives.
    fn hold_locks(&self, host: &str, files: &[&str], what: &'static str) -> FaultGuard<'_> {
        let files = files
            .iter()
            .map(|rel| {
                let path = self.inside(host, rel);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o640)
                    .open(&path)
                    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                write_lock(&file).unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
                file
            })
            .collect();
        self.guard(host, what, Undo::Unlock(files))
    }

    /// Fault: `sudo` runs commands with umask 0077 (`Defaults umask=0077`
    /// in `/etc/sudoers.d/zz-testbed-umask`), as on hardened hosts: what
    /// `sudo -n sh -c 'mkdir -p D; echo > D/f'` creates comes out 0700 and
    /// 0600. Undo removes the drop-in.
    pub fn sudo_umask(&self, host: &str) -> FaultGuard<'_> {
        self.host_op("sudo-umask", host, &["on"]);
        self.guard(
            host,
            "sudo umask 0077",
            Undo::script(&["sudo-umask", "off"]),
        )
    }

    /// Fault: every login session of `host` (ssh, and sudo within it) gets
    /// `vars`, written to `/etc/default/locale`, which pam_env reads for
    /// sshd and sudo; they override what the client sends. With
    /// [`TRANSLATING_LOCALE`], `LANG=C apt-cache policy` prints German
    /// (`LANG` loses to `LC_ALL`, and `LANGUAGE` wins over any locale but
    /// `C`), while `LC_ALL=C apt-cache policy` prints English. Undo puts
    /// the previous file back (the rootfs has none).
    pub fn session_locale(&self, host: &str, vars: &[(&str, &str)]) -> FaultGuard<'_> {
        let specs: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
        self.host_op("session-locale", host, &specs);
        self.guard(
            host,
            "session locale",
            Undo::script(&["session-locale", "--undo"]),
        )
    }

    /// Fault: the file system at `path` inside `host` is full: a full 4 KiB
    /// tmpfs is mounted there (in the host only), so creating or growing
    /// anything below it fails with "No space left on device"; e.g.
    /// `/usr/share/fastpath` makes dpkg fail to unpack `fastpath`. What
    /// `path` held is hidden meanwhile. Undo unmounts it.
    pub fn disk_full(&self, host: &str, path: &str) -> FaultGuard<'_> {
        self.host_op("disk-full", host, &[path, "on"]);
        self.guard(host, "disk full", Undo::script(&["disk-full", path, "off"]))
    }

    /// Cut every open SSH session of `host`: SIGKILL to each of its sshd
    /// processes but the listener. Clients mid-command return at once with
    /// an error (`ssh`: exit 255, "closed by remote host"); the host keeps
    /// running, and so do the commands those sessions started (no tty, so no
    /// SIGHUP); new connections are accepted. Returns how many sshd processes
    /// were killed (two per session: the privileged monitor and its child).
    pub fn drop_sessions(&self, host: &str) -> usize {
        let out = self.host_op("drop-sessions", host, &[]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("drop-sessions prints a count")
    }

    /// Fault: `sudo` asks `deployer` for a password (`sudo -n` fails with
    /// "a password is required"). Undo: passwordless again.
    pub fn sudo_requires_password(&self, host: &str) -> FaultGuard<'_> {
        self.host_op("sudo-password", host, &["on"]);
        self.guard(
            host,
            "sudo wants a password",
            Undo::script(&["sudo-password", "off"]),
        )
    }

    fn guard(&self, host: &str, what: &'static str, undo: Undo) -> FaultGuard<'_> {
        FaultGuard {
            testbed: self,
            host: host.to_string(),
            what,
            undo: Some(undo),
        }
    }

    /// `path` (absolute, inside `host`) as this machine reaches it:
    /// `/proc/<init>/root/<path>`. Symbolic links inside the host that are
    /// absolute resolve on this machine, not in the host.
    fn inside(&self, host: &str, path: &str) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root/{}",
            self.host(host).init_pid,
            path.trim_start_matches('/')
        ))
    }

    /// Poll (every 20 ms, at most `timeout`) until `path` exists inside
    /// `host`; true when it does.
    pub fn wait_for_file(&self, host: &str, path: &str, timeout: Duration) -> bool {
        let full = self.inside(host, path);
        poll(timeout, || full.exists())
    }

    /// The contents of `path` inside `host` (lossy UTF-8), or `None` when it
    /// cannot be read (absent, a directory...).
    pub fn read_file(&self, host: &str, path: &str) -> Option<String> {
        let bytes = std::fs::read(self.inside(host, path)).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The permission bits (`0o7777` part of `st_mode`, e.g. `0o644`) of
    /// `path` inside `host`, or `None` when it does not exist.
    pub fn file_mode(&self, host: &str, path: &str) -> Option<u32> {
        let meta = std::fs::metadata(self.inside(host, path)).ok()?;
        Some(meta.permissions().mode() & 0o7777)
    }

    /// PIDs (as this machine sees them) of the processes of `host`, but its
    /// init: every process in the init's PID namespace.
    fn process_ids(&self, host: &str) -> Vec<u32> {
        let init = self.host(host).init_pid;
        let Ok(ns) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != init)
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l == ns))
            .collect()
    }

    /// The command line (arguments joined by spaces) of every process of
    /// `host` but its init, e.g. `"sshd: deployer@notty"`, `"sleep 3600"`
    /// (the init's idler), `"/usr/bin/dpkg --configure -a"`; a process without
    /// one (a zombie) as `[comm]`. Read from this machine's `/proc`, so
    /// nothing is started in the host to look.
    pub fn processes(&self, host: &str) -> Vec<String> {
        self.process_ids(host)
            .into_iter()
            .filter_map(command_line)
            .collect()
    }

    /// Poll (every 20 ms, at most `timeout`) until no process of `host` has
    /// `pattern` in its command line (see [`Testbed::processes`]); true when
    /// none has.
    pub fn wait_no_process(&self, host: &str, pattern: &str, timeout: Duration) -> bool {
        poll(timeout, || {
            !self.processes(host).iter().any(|c| c.contains(pattern))
        })
    }

    /// Poll (every 20 ms, at most `timeout`) until a process of `host` has
    /// `pattern` in its command line; true when one has.
    pub fn wait_for_process(&self, host: &str, pattern: &str, timeout: Duration) -> bool {
        poll(timeout, || {
            self.processes(host).iter().any(|c| c.contains(pattern))
        })
    }

    /// Send `signal` (`libc::SIGKILL`...) to every process of `host` but its
    /// init whose command line contains `pattern`, as an operator's `pkill
    /// -f` on that host would; returns how many were signalled.
    pub fn kill_processes(&self, host: &str, pattern: &str, signal: i32) -> usize {
        self.process_ids(host)
            .into_iter()
            .filter(|&pid| command_line(pid).is_some_and(|c| c.contains(pattern)))
            // the PID is in the host's namespace, checked just above
            .filter(|&pid| {
                let pid = i32::try_from(pid)
                    .ok()
                    .and_then(rustix::process::Pid::from_raw);
                let signal = rustix::process::Signal::from_named_raw(signal);
                match (pid, signal) {
                    (Some(pid), Some(signal)) => rustix::process::kill_process(pid, signal).is_ok(),
                    _ => false,
                }
            })
            .count()
    }

    /// The remote ends (`ADDR:PORT`) of the established IPv4 TCP
    /// connections held by processes of `host` (its sshd's forwarded
    /// connections, say). The hosts share this machine's network stack:
    /// sockets are told apart by the processes holding them.
    pub fn tcp_peers(&self, host: &str) -> Vec<String> {
        tcp_peers_of(&self.process_ids(host))
    }
}

/// The remote ends (`ADDR:PORT`) of the established IPv4 TCP connections
/// held by processes `pids`.
pub fn tcp_peers_of(pids: &[u32]) -> Vec<String> {
    let mut inodes = std::collections::HashSet::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy().into_owned();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|l| l.strip_suffix(']'))
            {
                inodes.insert(inode.to_string());
            }
        }
    }
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // 01 is ESTABLISHED
            (f.len() > 9 && f[3] == "01" && inodes.contains(f[9])).then(|| hex_addr(f[2]))?
        })
        .collect()
}

/// `0100007F:0016` (as /proc/net/tcp writes it) as `127.0.0.1:22`.
fn hex_addr(text: &str) -> Option<String> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(format!(
        "{}:{port}",
        std::net::Ipv4Addr::from(ip.swap_bytes())
    ))
}

/// Call `check` every 20 ms until it is true or `timeout` has passed.
pub fn poll(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The command line of `pid`, arguments joined by spaces; `[comm]` when it
/// has none (a zombie); `None` when the process is gone.
fn command_line(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args.is_empty() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        return Some(format!("[{}]", comm.trim_end()));
    }
    Some(args.join(" ").trim_end().to_string())
}

/// Session variables that make apt print German on a host where only `LANG`
/// is set to `C` (for [`Testbed::session_locale`]). The rootfs needs nothing
/// more: apt's German catalogue is installed, and glibc's built-in `C.UTF-8`
/// is a locale other than `C`, so gettext follows `LANGUAGE`.
pub const TRANSLATING_LOCALE: [(&str, &str); 2] = [("LC_ALL", "C.UTF-8"), ("LANGUAGE", "de")];

/// How [`Testbed::publish_with`] builds a version: `Publish::default()` is a
/// plain package, like [`Testbed::publish`].
///
/// With `postinst_sleep` or `postinst_fail`, the package gets a postinst
/// that, when configuring, removes [`postinst_ended`]'s marker, touches
/// [`postinst_started`]'s, sleeps `postinst_sleep` seconds, touches
/// [`postinst_ended`]'s, and then exits 0, or 1 after printing
/// `PKG VERSION: postinst failed on purpose ...` to stderr under
/// `postinst_fail`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Publish<'a> {
    /// Extra control fields, one line each, `"Name: value"`, e.g.
    /// `"Conflicts: healthd"`, `"Depends: analysis (>= 1.10~pr692-102)"`.
    pub fields: &'a [&'a str],
    /// Seconds the postinst sleeps between its two markers.
    pub postinst_sleep: Option<u32>,
    /// The postinst exits 1 (after its markers).
    pub postinst_fail: bool,
    /// The package's `usr/share/doc/PKG/changelog.Debian.gz`, as text
    /// (default: one entry per version of PKG in the repository up to this
    /// one, each `* Release VERSION of PKG.`).
    pub changelog: Option<&'a str>,
    /// Build the package without a changelog.
    pub no_changelog: bool,
    /// Ship a systemd unit, `PKG.service`: a process that logs `PKG VERSION
    /// serving on HOST` to the journal when it starts, and `PKG VERSION:
    /// health probe answered on HOST` on each SIGUSR1. Its postinst and
    /// postrm run `systemctl daemon-reload` on systemd hosts; nothing starts
    /// it but a restart.
    pub service: bool,
    /// Ship the unit, but one that fails to start: its `ExecStartPre` logs
    /// `PKG VERSION: cannot bind :8080` and exits 3.
    pub service_fail: bool,
}

/// The file (inside the host) a [`Publish`] postinst touches when it starts:
/// `/tmp/PKG-VERSION-postinst-started`.
pub fn postinst_started(pkg: &str, version: &str) -> String {
    format!("/tmp/{pkg}-{version}-postinst-started")
}

/// The file (inside the host) a [`Publish`] postinst touches when it has done
/// its work, just before exiting: `/tmp/PKG-VERSION-postinst-ended`.
pub fn postinst_ended(pkg: &str, version: &str) -> String {
    format!("/tmp/{pkg}-{version}-postinst-ended")
}

/// Take a POSIX write lock on the whole of `file`, as dpkg and apt do.
fn write_lock(file: &File) -> std::io::Result<()> {
    // SAFETY: flock is plain data; all-zero is a valid value of it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: the fd is open for the duration of the call, `lock` is valid.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) };
    if rc == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

enum Undo {
    /// A script subcommand (DIR and the host are inserted after its name).
    Script(Vec<String>),
    /// Close the files: their locks go with them.
    Unlock(Vec<File>),
}

/// A fault in force on one host; dropping it (or [`FaultGuard::undo`])
/// undoes it. It borrows its [`Testbed`], so it cannot outlive the hosts.
#[must_use = "the fault is undone when the guard is dropped"]
pub struct FaultGuard<'t> {
    testbed: &'t Testbed,
    host: String,
    what: &'static str,
    undo: Option<Undo>,
}

impl Undo {
    fn script(args: &[&str]) -> Undo {
        Undo::Script(args.iter().map(|a| a.to_string()).collect())
    }
}

impl FaultGuard<'_> {
    /// Undo the fault now; panics when that fails.
    pub fn undo(mut self) {
        if let Err(e) = self.try_undo() {
            panic!("undo `{}` on `{}`: {e}", self.what, self.host);
        }
    }

    fn try_undo(&mut self) -> Result<(), String> {
        let Some(undo) = self.undo.take() else {
            return Ok(());
        };
        let tb = self.testbed;
        match undo {
            Undo::Script(op) => {
                let dir = tb.dir_str();
                let mut args = vec![op[0].as_str(), &dir, &self.host];
                args.extend(op[1..].iter().map(String::as_str));
                let out = script(args).output().map_err(|e| e.to_string())?;
                if !out.status.success() {
                    return Err(String::from_utf8_lossy(&out.stderr).into_owned());
                }
            }
            Undo::Unlock(files) => drop(files),
        }
        Ok(())
    }
}

impl Drop for FaultGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.try_undo() {
            eprintln!(
                "testbed: cannot undo `{}` on `{}`: {e}",
                self.what, self.host
            );
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // EOF on its stdin: `testbed serve` kills every host and exits.
        drop(self.serve_stdin.take());
        let stopped = poll(STOP_TIMEOUT, || {
            matches!(self.serve.try_wait(), Ok(Some(_)) | Err(_))
        });
        if !stopped {
            eprintln!("testbed: `testbed serve` did not stop; killing it (its hosts die with it)");
            let _ = self.serve.kill();
            let _ = self.serve.wait();
        }
        if std::env::var("DEPLOYER_TESTBED_KEEP").is_ok_and(|v| v == "1") {
            if let Some(t) = self.tempdir.take() {
                eprintln!("testbed: kept {}", t.keep().display());
            }
        }
    }
}
