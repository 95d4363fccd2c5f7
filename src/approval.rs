//! Signed approvals of an exact plan (four eyes without a server).
//!
//! `deploy … --dry-run --plan-out FILE` writes a [`PlanFile`]: the plan as
//! JSON, with the state of every host it was made from, the digest of the
//! configuration, who made it and until when it holds. `deployer approve
//! FILE` signs the file's exact bytes with OpenSSH (`ssh-keygen -Y sign -n
//! deployer-plan`), appending the armored signature to `FILE.sig`: several
//! approvers, several signatures one after the other in that one file.
//! `deploy --plan FILE` checks the plan ([`PlanFile::stale`]) and the
//! signatures: each one is verified by the real `ssh-keygen -Y
//! find-principals` and `-Y verify` against the stage's `allowed_signers`.
//!
//! The rules are pure ([`split_signatures`], [`is_operator`],
//! [`count_approvals`], [`good_fingerprint`]); only [`sign`], [`verify`]
//! and [`agent_first_key`] run programs, always with arguments, never
//! through a shell.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `ssh-keygen -Y` namespace of a deployer plan: a signature made for
/// anything else (a git commit, a file) never approves a plan.
pub const NAMESPACE: &str = "deployer-plan";

/// The version of the plan file's format.
pub const FORMAT: u32 = 1;

/// The default of `--expires`.
pub const DEFAULT_EXPIRES: &str = "24h";

/// A plan written by `--plan-out` and carried out by `--plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    /// [`FORMAT`].
    pub format: u32,
    /// `deploy`, `promote` or `rollback`.
    pub action: String,
    /// The package.
    pub package: String,
    /// The stage deployed to.
    pub stage: String,
    /// The version the plan installs.
    pub version: String,
    /// Every host of the stage, with the state the plan was made from.
    pub hosts: Vec<HostState>,
    /// The configuration the plan was made with.
    pub configuration: ConfigDigest,
    /// The person who made the plan (as the history names them: the
    /// `user` of [`crate::operator::Operator`]).
    pub made_by: String,
    /// `user@machine`, as shown everywhere.
    pub made_by_display: String,
    /// When the plan was made: RFC 3339, UTC.
    pub made_at: String,
    /// When it stops being good: RFC 3339, UTC.
    pub expires_at: String,
    /// The plan as `--dry-run --json` prints it: steps (with apt's
    /// simulated changes), batches, gates, what is left out.
    pub plan: serde_json::Value,
}

/// One host's state when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// The host, as the configuration names it.
    pub host: String,
    /// The package's state there (`1.0-1`, `-`, `1.0-1 (held)`), or
    /// `unreachable`.
    pub state: String,
}

/// The configuration file and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDigest {
    /// The path it was read from.
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
}

/// A plan file as read: its exact bytes (what the signatures sign) and
/// what they say.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// Its content.
    pub plan: PlanFile,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of the configuration file at `path`, read now.
pub fn config_digest(path: &Path) -> std::io::Result<ConfigDigest> {
    Ok(ConfigDigest {
        path: path.to_path_buf(),
        sha256: sha256_hex(&std::fs::read(path)?),
    })
}

/// Where the signatures of `plan` are kept: `PLAN.sig` beside it.
pub fn sig_path(plan: &Path) -> PathBuf {
    let mut name = plan.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Read and parse a plan file; the error names the file and what is
/// wrong, one sentence.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let plan: PlanFile = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "`{}` is not a deployer plan (written by `--dry-run --plan-out`): {e}",
            path.display()
        )
    })?;
    if plan.format != FORMAT {
        return Err(format!(
            "`{}` is a plan of format {}, and this deployer reads format {FORMAT}",
            path.display(),
            plan.format
        ));
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        bytes,
        plan,
    })
}

impl PlanFile {
    /// Whether the plan has expired at `now` (seconds since the epoch);
    /// an expiry that cannot be read counts as expired.
    pub fn expired(&self, now: i64) -> bool {
        crate::timeline::parse_time(&self.expires_at).map_or(true, |at| now >= at)
    }

    /// The hosts whose state differs between the plan and `now` (both as
    /// [`HostState`] lists), one line each: `host: planned A, now B`.
    pub fn stale(&self, now: &[HostState]) -> Vec<String> {
        let mut lines = Vec::new();
        for planned in &self.hosts {
            match now.iter().find(|h| h.host == planned.host) {
                Some(h) if h.state == planned.state => {}
                Some(h) => lines.push(format!(
                    "{}: the plan was made with {}, it now runs {}",
                    planned.host, planned.state, h.state
                )),
                None => lines.push(format!(
                    "{}: in the plan, no longer in the stage",
                    planned.host
                )),
            }
        }
        for h in now {
            if !self.hosts.iter().any(|p| p.host == h.host) {
                lines.push(format!("{}: in the stage, not in the plan", h.host));
            }
        }
        lines
    }

    /// The hosts the plan changes, in its order.
    pub fn step_hosts(&self) -> Vec<String> {
        self.plan["steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .filter_map(|s| s["host"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The plan for people: what changes where, and what apt would do.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "Plan: {} `{}` {} on stage `{}`\n  made by {} at {}, good until {}\n  configuration: {} (sha256 {})\n",
            self.action,
            self.package,
            self.version,
            self.stage,
            self.made_by_display,
            self.made_at,
            self.expires_at,
            self.configuration.path.display(),
            self.configuration.sha256
        );
        let steps = self.plan["steps"].as_array().cloned().unwrap_or_default();
        if steps.is_empty() {
            s.push_str("  no host changes\n");
        }
        for step in &steps {
            let host = step["host"].as_str().unwrap_or("?");
            let from = self
                .hosts
                .iter()
                .find(|h| h.host == host)
                .map_or("?", |h| h.state.as_str());
            s.push_str(&format!(
                "  {}: {} -> {}\n",
                crate::text::clipped_line(host, 80),
                crate::text::clipped_line(from, 80),
                self.version
            ));
            for line in step["apt"].as_array().into_iter().flatten() {
                if let Some(l) = line.as_str() {
                    s.push_str(&format!(
                        "      apt: {}\n",
                        crate::text::clipped_line(l, crate::text::REMOTE_TEXT_MAX)
                    ));
                }
            }
        }
        for h in &self.hosts {
            if !steps.iter().any(|st| st["host"].as_str() == Some(&h.host)) {
                s.push_str(&format!(
                    "  {}: {} (unchanged)\n",
                    crate::text::clipped_line(&h.host, 80),
                    crate::text::clipped_line(&h.state, 80)
                ));
            }
        }
        s
    }
}

/// The armored signatures in the text of a `.sig` file, each whole
/// (`-----BEGIN SSH SIGNATURE-----` to its `END` line), in order.
pub fn split_signatures(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if line == "-----BEGIN SSH SIGNATURE-----" {
            current = Some(format!("{line}\n"));
        } else if let Some(sig) = current.as_mut() {
            sig.push_str(line);
            sig.push('\n');
            if line == "-----END SSH SIGNATURE-----" {
                out.extend(current.take());
            }
        }
    }
    out
}

/// Whether `principal` names `user`, the operator: the same name, or a
/// name whose part before `@` is it (`alice@example.com` for `alice`).
pub fn is_operator(principal: &str, user: &str) -> bool {
    !user.is_empty() && (principal == user || principal.split('@').next() == Some(user))
}

/// The fingerprint in `ssh-keygen -Y verify`'s `Good "…" signature for P
/// with ED25519 key SHA256:…` line.
pub fn good_fingerprint(said: &str) -> Option<String> {
    let line = said.lines().find(|l| l.starts_with("Good "))?;
    let at = line.find(" key ")?;
    let fp = line[at + 5..].trim();
    (!fp.is_empty()).then(|| crate::text::clipped_line(fp, 120))
}

/// One signature's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Verified, by a key of `principal` in `allowed_signers`.
    Good {
        /// The principal, from `allowed_signers`.
        principal: String,
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// Not a valid approval, and why.
    Bad(String),
}

/// Of `verdicts`, the approvals that count: good, by a principal that is
/// not one of `operators` ([`is_operator`]), each principal once. The
/// others come back as one line each, saying why they do not count.
pub fn count_approvals(
    verdicts: &[Verdict],
    operators: &[&str],
) -> (Vec<crate::history::Approval>, Vec<String>) {
    let mut counted: Vec<crate::history::Approval> = Vec::new();
    let mut not = Vec::new();
    for (i, v) in verdicts.iter().enumerate() {
        let n = i + 1;
        match v {
            Verdict::Bad(why) => not.push(format!("signature {n}: {why}")),
            Verdict::Good {
                principal,
                fingerprint,
            } => {
                if let Some(op) = operators.iter().find(|op| is_operator(principal, op)) {
                    not.push(format!(
                        "signature {n}: by `{principal}`, who is the operator `{op}`: \
                         no self-approval"
                    ));
                } else if counted.iter().any(|a| &a.principal == principal) {
                    not.push(format!(
                        "signature {n}: `{principal}` already approved; each approver counts once"
                    ));
                } else {
                    counted.push(crate::history::Approval {
                        principal: principal.clone(),
                        fingerprint: fingerprint.clone(),
                        verified_at: crate::history::now_rfc3339(),
                    });
                }
            }
        }
    }
    (counted, not)
}

/// A private temporary directory (mode 0700), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        let mut bytes = [0u8; 8];
        rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())
            .map_err(std::io::Error::from)?;
        let tag: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("deployer-approval-{tag}"));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run `ssh-keygen` with `args`, `input` on its standard input; returns
/// whether it succeeded, its stdout and its stderr.
fn keygen(args: &[&std::ffi::OsStr], input: &[u8]) -> Result<(bool, String, String), String> {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `ssh-keygen`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // a verify that fails early may close its input: its status says why
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`ssh-keygen` failed: {e}"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The key to sign with.
#[derive(Debug, Clone)]
pub enum SigningKey {
    /// A private key file (`-i`, or the default identity).
    File(PathBuf),
    /// A key held by the agent: its public key line (`ssh-add -L`).
    Agent(String),
}

/// The first key the agent at `SSH_AUTH_SOCK` holds (`ssh-add -L`), if
/// an agent answers and holds one.
pub fn agent_first_key() -> Option<String> {
    std::env::var_os("SSH_AUTH_SOCK")?;
    let out = Command::new("ssh-add")
        .arg("-L")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("ssh-") || l.starts_with("ecdsa-") || l.starts_with("sk-"))
        .map(str::to_string)
}

/// The default identity as OpenSSH tries it: the first of
/// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` that exists.
pub fn default_identity() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| home.join(".ssh").join(n))
        .find(|p| p.is_file())
}

/// Sign `bytes` as `ssh-keygen -Y sign -n deployer-plan` does, with `key`;
/// returns the armored signature.
pub fn sign(bytes: &[u8], key: &SigningKey) -> Result<String, String> {
    let scratch = Scratch::new().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let key_path = match key {
        SigningKey::File(p) => p.clone(),
        SigningKey::Agent(line) => {
            let p = scratch.0.join("agent-key.pub");
            std::fs::write(&p, format!("{line}\n"))
                .map_err(|e| format!("cannot write `{}`: {e}", p.display()))?;
            p
        }
    };
    let os = std::ffi::OsStr::new;
    let mut args = vec![os("-Y"), os("sign"), os("-n"), os(NAMESPACE)];
    if matches!(key, SigningKey::Agent(_)) {
        args.push(os("-U"));
    }
    args.extend([os("-f"), key_path.as_os_str()]);
    let (ok, stdout, stderr) = keygen(&args, bytes)?;
    let sigs = split_signatures(&stdout);
    match (ok, sigs.into_iter().next()) {
        (true, Some(sig)) => Ok(sig),
        _ => Err(format!(
            "`ssh-keygen -Y sign` with `{}` failed: {}",
            key_path.display(),
            crate::text::clipped_line(stderr.trim(), crate::text::REMOTE_TEXT_MAX)
        )),
    }
}

/// Verify one armored `signature` of `bytes` against `allowed` (an
/// `allowed_signers` file) as `ssh-keygen` does: `-Y find-principals`
/// names the principals its key is allowed for, and `-Y verify` checks it
/// for the first that verifies.
pub fn verify(bytes: &[u8], signature: &str, allowed: &Path) -> Verdict {
    let run = || -> Result<Verdict, String> {
        let scratch =
            Scratch::new().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
        let sig = scratch.0.join("plan.sig");
        std::fs::write(&sig, signature).map_err(|e| format!("cannot write a signature: {e}"))?;
        let (found, principals, _) = keygen(
            &[
                "-Y".as_ref(),
                "find-principals".as_ref(),
                "-s".as_ref(),
                sig.as_os_str(),
                "-f".as_ref(),
                allowed.as_os_str(),
            ],
            b"",
        )?;
        if !found {
            return Ok(Verdict::Bad(format!(
                "its key is not in `{}` (allowed_signers)",
                allowed.display()
            )));
        }
        let mut last = String::new();
        for principal in principals.lines().map(str::trim).filter(|p| !p.is_empty()) {
            let (ok, stdout, stderr) = keygen(
                &[
                    "-Y".as_ref(),
                    "verify".as_ref(),
                    "-f".as_ref(),
                    allowed.as_os_str(),
                    "-I".as_ref(),
                    principal.as_ref(),
                    "-n".as_ref(),
                    NAMESPACE.as_ref(),
                    "-s".as_ref(),
                    sig.as_os_str(),
                ],
                bytes,
            )?;
            if ok {
                let fingerprint = good_fingerprint(&format!("{stdout}{stderr}"))
                    .unwrap_or_else(|| "unknown".to_string());
                return Ok(Verdict::Good {
                    principal: crate::text::clipped_line(principal, 120),
                    fingerprint,
                });
            }
            last = stderr;
        }
        Ok(Verdict::Bad(format!(
            "it does not verify for the plan's exact bytes (namespace `{NAMESPACE}`): {}",
            crate::text::clipped_line(last.trim(), crate::text::REMOTE_TEXT_MAX)
        )))
    };
    run().unwrap_or_else(Verdict::Bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(hosts: &[(&str, &str)]) -> PlanFile {
        PlanFile {
            format: FORMAT,
            action: "deploy".into(),
            package: "foo".into(),
            stage: "prod".into(),
            version: "1.1-1".into(),
            hosts: hosts
                .iter()
                .map(|(h, s)| HostState {
                    host: h.to_string(),
                    state: s.to_string(),
                })
                .collect(),
            configuration: ConfigDigest {
                path: "/etc/deployer.ini".into(),
                sha256: sha256_hex(b"x"),
            },
            made_by: "alice".into(),
            made_by_display: "alice@laptop".into(),
            made_at: "2026-12-07T10:00:00Z".into(),
            expires_at: "2026-12-08T10:00:00Z".into(),
            plan: serde_json::json!({"steps": [{"host": "a", "from": "1.0-1", "apt": ["Inst foo"]}]}),
        }
    }

    #[test]
    fn expiry_is_exclusive_and_unreadable_counts_as_expired() {
        let p = plan(&[]);
        let at = crate::timeline::parse_time("2026-12-08T10:00:00Z").unwrap();
        assert!(!p.expired(at - 1));
        assert!(p.expired(at));
        let bad = PlanFile {
            expires_at: "soon".into(),
            ..p
        };
        assert!(bad.expired(0));
    }

    #[test]
    fn stale_names_each_host_that_changed_came_or_went() {
        let p = plan(&[("a", "1.0-1"), ("b", "1.0-1"), ("c", "-")]);
        let now = |v: &[(&str, &str)]| -> Vec<HostState> {
            v.iter()
                .map(|(h, s)| HostState {
                    host: h.to_string(),
                    state: s.to_string(),
                })
                .collect()
        };
        assert!(p
            .stale(&now(&[("a", "1.0-1"), ("b", "1.0-1"), ("c", "-")]))
            .is_empty());
        let lines = p.stale(&now(&[("a", "1.0-2"), ("c", "-"), ("d", "-")]));
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].contains("a: the plan was made with 1.0-1, it now runs 1.0-2"));
        assert!(lines[1].starts_with("b: in the plan"));
        assert!(lines[2].starts_with("d: in the stage"));
    }

    #[test]
    fn signatures_are_split_whole_and_garbage_ignored() {
        let one = "-----BEGIN SSH SIGNATURE-----\nAAAA\nBBBB\n-----END SSH SIGNATURE-----\n";
        let two = "-----BEGIN SSH SIGNATURE-----\nCCCC\n-----END SSH SIGNATURE-----\n";
        let text = format!("junk\n{one}{two}-----BEGIN SSH SIGNATURE-----\nunfinished\n");
        assert_eq!(
            split_signatures(&text),
            vec![one.to_string(), two.to_string()]
        );
    }

    #[test]
    fn the_operator_is_matched_by_name_or_local_part() {
        assert!(is_operator("alice", "alice"));
        assert!(is_operator("alice@example.com", "alice"));
        assert!(!is_operator("alicia@example.com", "alice"));
        assert!(!is_operator("bob@example.com", "alice"));
        assert!(!is_operator("alice", ""));
    }

    #[test]
    fn approvals_count_once_per_principal_and_never_the_operator() {
        let good = |p: &str| Verdict::Good {
            principal: p.into(),
            fingerprint: "SHA256:x".into(),
        };
        let verdicts = vec![
            good("alice@example.com"),
            good("bob@example.com"),
            Verdict::Bad("its key is not in `x`".into()),
            good("bob@example.com"),
        ];
        let (counted, not) = count_approvals(&verdicts, &["alice"]);
        assert_eq!(counted.len(), 1);
        assert_eq!(counted[0].principal, "bob@example.com");
        assert_eq!(not.len(), 3, "{not:?}");
        assert!(not[0].contains("no self-approval"));
        assert!(not[1].contains("not in"));
        assert!(not[2].contains("counts once"));
    }

    #[test]
    fn the_fingerprint_is_read_from_the_good_line() {
        let said =
            "Good \"deployer-plan\" signature for bob@example.com with ED25519 key SHA256:abc+/1\n";
        assert_eq!(good_fingerprint(said).as_deref(), Some("SHA256:abc+/1"));
        assert_eq!(good_fingerprint("Could not verify"), None);
    }

    #[test]
    fn the_plan_is_described_host_by_host() {
        let text = plan(&[("a", "1.0-1"), ("b", "1.1-1")]).describe();
        assert!(
            text.contains("deploy `foo` 1.1-1 on stage `prod`"),
            "{text}"
        );
        assert!(
            text.contains("  a: 1.0-1 -> 1.1-1\n      apt: Inst foo\n"),
            "{text}"
        );
        assert!(text.contains("  b: 1.1-1 (unchanged)"), "{text}");
    }

    #[test]
    fn the_signature_file_sits_beside_the_plan() {
        assert_eq!(
            sig_path(Path::new("/x/plan.json")),
            PathBuf::from("/x/plan.json.sig")
        );
    }
}
