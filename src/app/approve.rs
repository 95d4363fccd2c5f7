//! `deployer approve FILE`: show the plan, ask, sign its exact bytes with
//! the approver's SSH key and append the signature to `FILE.sig`
//! ([`crate::approval`]).

use std::path::Path;

use crate::approval::{self, SigningKey};
use crate::console::Console;
use crate::error::{ExitStatus, Fatal};

pub(super) fn command(
    console: &Console,
    file: &Path,
    identity: Option<&Path>,
    yes: bool,
) -> Result<ExitStatus, Fatal> {
    let loaded = approval::load(file).map_err(|e| {
        Fatal::usage(e).note("write one with `deployer deploy PKG STAGE --dry-run --plan-out FILE`")
    })?;
    let plan = &loaded.plan;
    if plan.expired(crate::history::now_unix()) {
        return Err(Fatal::usage(format!(
            "the plan in `{}` expired at {}: an expired plan cannot be approved",
            file.display(),
            plan.expires_at
        ))
        .status(ExitStatus::Refused)
        .note(
            "ask for a new plan (`--dry-run --plan-out FILE`, `--expires` sets how long it holds)",
        ));
    }
    let key = match identity {
        Some(path) => SigningKey::File(path.to_path_buf()),
        None => match approval::agent_first_key() {
            Some(line) => SigningKey::Agent(line),
            None => SigningKey::File(approval::default_identity().ok_or_else(|| {
                Fatal::usage("no key to sign with: no agent holds a key, and there is no ~/.ssh/id_ed25519, id_ecdsa or id_rsa")
                    .note("name the private key with `-i KEY`, or add one to your agent (`ssh-add`)")
            })?),
        },
    };
    console.say(plan.describe().trim_end());
    let with = match &key {
        SigningKey::File(p) => format!("key `{}`", p.display()),
        SigningKey::Agent(line) => {
            format!("the agent's key `{}`", crate::text::clipped_line(line, 80))
        }
    };
    if !yes {
        let question = format!("Approve this plan, signing it with {with}? Type `yes` to sign: ");
        match console.ask(&question) {
            Some(answer) if answer.trim() == "yes" => {}
            Some(_) => {
                return Err(
                    Fatal::usage("not approved: nothing was signed").status(ExitStatus::Refused)
                )
            }
            None => {
                return Err(Fatal::usage("there is no terminal to confirm on")
                    .note("pass `--yes` to sign without confirmation"))
            }
        }
    }
    let signature = approval::sign(&loaded.bytes, &key).map_err(|e| {
        Fatal::usage(e).note("check the key (`ssh-keygen -l -f KEY`) or your agent (`ssh-add -l`)")
    })?;
    let sig = approval::sig_path(file);
    crate::local_file::append_line(&sig, 0o644, signature.as_bytes(), |_| Ok(())).map_err(|e| {
        Fatal::usage(format!(
            "cannot append the signature to `{}`: {e}",
            sig.display()
        ))
    })?;
    console.say(&format!(
        "Signed with {with}: the signature is appended to `{}`. Commit it beside the plan.",
        sig.display()
    ));
    Ok(ExitStatus::Success)
}
