//! Plans and their approvals in a deploy ([`crate::approval`]): the plan
//! written by `--dry-run --plan-out`, and `--plan FILE` checked before
//! any host is locked ([`before`]: what it is for, its expiry, the
//! configuration's digest, the version, the signatures), then under the
//! lock against the hosts' states read there ([`same_states`]) and
//! against the plan decided again ([`same_plan`]).
//!
//! A stage with `approvals = N` takes forward deploys and promotions only
//! through `--plan`; a rollback to a version the stage ran before needs
//! none. `--override-freeze` does not bypass approvals. Every refusal is
//! recorded ([`record::refuse`], exit status 6).

use crate::approval::{self, HostState, PlanFile};
use crate::error::Fatal;
use crate::plan::Wanted;

use super::attempt::Attempt;
use super::context::{Context, Facts};
use super::preflight::Prepared;
use super::record;
use super::request::Target;

/// The state of `package` on every host of `stage`, as a plan records it.
pub fn host_states(
    facts: &Facts,
    stage: &str,
    package: &crate::package::PackageName,
) -> Vec<HostState> {
    facts
        .reports
        .iter()
        .filter(|r| r.stage == stage)
        .map(|r| HostState {
            host: r.host.clone(),
            state: match &r.result {
                Ok(s) if s.held.contains(package) => format!("{} (held)", s.packages[package]),
                Ok(s) => s.packages[package].to_string(),
                Err(_) => "unreachable".to_string(),
            },
        })
        .collect()
}

/// Whether the attempt at `target` moves the stage forward (anything but
/// a rollback to a version the stage ran before): only those need
/// approvals, as only those are stopped by a freeze.
pub fn needs_approval(target: &Target) -> bool {
    target.back.as_ref().is_none_or(|b| b.ran_before.is_none())
}

/// The notes that show the two-person workflow.
fn workflow(package: &str, stage: &str, n: usize) -> Vec<String> {
    vec![
        format!(
            "stage `{stage}` takes a forward deploy or promotion only as a plan signed by {n} \
             person(s) other than the operator (`approvals = {n}`)"
        ),
        format!(
            "1. make the plan: `deployer deploy {package} {stage} VERSION --dry-run --plan-out plan.json`"
        ),
        "2. each approver reviews and signs it: `deployer approve plan.json` (appends to plan.json.sig)".into(),
        "3. carry it out: `deployer deploy --plan plan.json`; `--override-freeze` does not bypass approvals".into(),
    ]
}

/// The checks of `--plan` that need no host, in order: the plan is for
/// this action, package and stage; it has not expired; the configuration
/// is the one it was made with; the version is its version; and, where
/// the stage asks for approvals, enough of them verify. Without `--plan`,
/// a stage with `approvals` refuses a forward deploy or promotion (a dry
/// run goes through: it makes the plan). Recorded when refused.
pub fn before(cx: &Context<'_>, attempt: &mut Attempt, target: &Target) -> Result<(), Fatal> {
    let stage = &cx.config.stages[target.stage];
    let package = attempt.package.to_string();
    let Some(loaded) = &cx.opts.plan else {
        if stage.approvals > 0 && needs_approval(target) && !cx.opts.dry_run {
            return Err(record::refuse(
                cx,
                attempt,
                format!(
                    "stage `{}` needs {} approval(s) of the exact plan: deploy with `--plan FILE`",
                    stage.name, stage.approvals
                ),
                workflow(&package, &stage.name, stage.approvals),
            ));
        }
        return Ok(());
    };
    let p: &PlanFile = &loaded.plan;
    let file = loaded.path.display().to_string();
    let remake = format!(
        "make a new plan (`deployer {} {} {} --dry-run --plan-out FILE`) and have it approved again",
        p.action, p.package, p.stage
    );
    if p.action != attempt.action || p.package != package || p.stage != stage.name {
        return Err(record::refuse(
            cx,
            attempt,
            format!(
                "the plan in `{file}` is a {} of `{}` to `{}`, not a {} of `{package}` to `{}`",
                p.action, p.package, p.stage, attempt.action, stage.name
            ),
            Vec::new(),
        ));
    }
    if p.expired(crate::history::now_unix()) {
        return Err(record::refuse(
            cx,
            attempt,
            format!("the plan in `{file}` expired at {}", p.expires_at),
            vec![remake],
        ));
    }
    let now = approval::config_digest(&cx.config.path).map_err(|e| {
        record::refuse(
            cx,
            attempt,
            format!(
                "cannot read `{}` to check it against the plan: {e}",
                cx.config.path.display()
            ),
            Vec::new(),
        )
    })?;
    if now.sha256 != p.configuration.sha256 {
        return Err(record::refuse(
            cx,
            attempt,
            format!(
                "the configuration changed since the plan in `{file}` was made: `{}` has sha256 {}, \
                 the plan was made with `{}` at sha256 {}",
                now.path.display(),
                now.sha256,
                p.configuration.path.display(),
                p.configuration.sha256
            ),
            vec![remake],
        ));
    }
    if let Wanted::Exact(v) = &target.wanted {
        if v.to_string() != p.version {
            return Err(record::refuse(
                cx,
                attempt,
                format!(
                    "the candidate version changed since the plan in `{file}` was made: the plan \
                     installs {}, this {} would install {v}",
                    p.version, attempt.action
                ),
                vec![remake],
            ));
        }
    }
    if stage.approvals > 0 && needs_approval(target) {
        attempt.approvals = verified(cx, attempt, loaded, stage)?;
        for a in &attempt.approvals {
            cx.console.say(&format!(
                "Approved by {} (key {})",
                a.principal, a.fingerprint
            ));
        }
    }
    Ok(())
}

/// The approvals of `loaded` that count for `stage`, at least its
/// `approvals`, else refused naming each signature that does not count.
fn verified(
    cx: &Context<'_>,
    attempt: &Attempt,
    loaded: &approval::Loaded,
    stage: &crate::config::Stage,
) -> Result<Vec<crate::history::Approval>, Fatal> {
    let sig = approval::sig_path(&loaded.path);
    let allowed = stage
        .allowed_signers
        .as_deref()
        .expect("the configuration asks for allowed_signers with approvals");
    if let Err(e) = std::fs::File::open(allowed) {
        return Err(record::refuse(
            cx,
            attempt,
            format!(
                "cannot read `{}`, the `allowed_signers` of stage `{}`: {e}",
                allowed.display(),
                stage.name
            ),
            vec![
                "it lists the approvers' public keys, one `principal key` line each, as \
                 `ssh-keygen -Y verify` reads it; the path is relative to deployer.ini's directory"
                    .to_string(),
            ],
        ));
    }
    let text = match std::fs::read_to_string(&sig) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(record::refuse(
                cx,
                attempt,
                format!("cannot read the approvals in `{}`: {e}", sig.display()),
                Vec::new(),
            ))
        }
    };
    let verdicts: Vec<approval::Verdict> = approval::split_signatures(&text)
        .iter()
        .map(|s| approval::verify(&loaded.bytes, s, allowed))
        .collect();
    let me = crate::operator::Operator::current().user;
    let operators = [loaded.plan.made_by.as_str(), me.as_str()];
    let (counted, mut not) = approval::count_approvals(&verdicts, &operators);
    if counted.len() >= stage.approvals {
        return Ok(counted);
    }
    if verdicts.is_empty() {
        not.push(format!("`{}` holds no signature", sig.display()));
    }
    not.push(format!(
        "an approver (a principal of `{}` other than the operator) signs with `deployer approve {}`",
        allowed.display(),
        loaded.path.display()
    ));
    Err(record::refuse(
        cx,
        attempt,
        format!(
            "the plan in `{}` has {} of the {} approval(s) stage `{}` needs",
            loaded.path.display(),
            counted.len(),
            stage.approvals,
            stage.name
        ),
        not,
    ))
}

/// Under the lock: the hosts of the stage are in the states the plan was
/// made from, else refused naming each host that differs.
pub fn same_states(
    cx: &Context<'_>,
    attempt: &Attempt,
    facts: &Facts,
    stage: &str,
) -> Result<(), Fatal> {
    let Some(loaded) = &cx.opts.plan else {
        return Ok(());
    };
    let stale = loaded
        .plan
        .stale(&host_states(facts, stage, &attempt.package));
    if stale.is_empty() {
        return Ok(());
    }
    let mut notes = stale;
    notes.push(
        "a plan is carried out only on the hosts it was made from: make a new plan \
         (`--dry-run --plan-out FILE`) and have it approved again"
            .to_string(),
    );
    Err(record::refuse(
        cx,
        attempt,
        format!(
            "the hosts of `{stage}` changed since the plan in `{}` was made",
            loaded.path.display()
        ),
        notes,
    ))
}

/// What must be the same in the plan decided again as in the plan file
/// (keys of [`Prepared::to_json`]): the hosts it changes and how, beside
/// the version and the steps' hosts.
pub const SAME: &[&str] = &[
    "batches",
    "batch_size",
    "max_failures",
    "allow_dependency_changes",
    "allowed",
    "overridden",
    "rollback_on_failure",
    "unchanged",
];

/// The differences between the plan decided now (`now`, as
/// [`Prepared::to_json`] gives it, installing `version`) and the plan
/// file `p`, one line each: the version, the hosts changed, then each key
/// of [`SAME`] and the hosts left out.
pub fn plan_differences(p: &PlanFile, version: &str, now: &serde_json::Value) -> Vec<String> {
    let mut lines = Vec::new();
    if version != p.version {
        lines.push(format!(
            "the candidate version changed: the plan installs {}, now {version}",
            p.version
        ));
    }
    let hosts = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["host"].as_str().map(str::to_string))
            .collect()
    };
    for key in ["steps", "left_out"] {
        let (planned, decided) = (hosts(&p.plan[key]), hosts(&now[key]));
        if planned != decided {
            lines.push(format!(
                "`{key}`: the plan has {}, now {}",
                list(&planned),
                list(&decided)
            ));
        }
    }
    for key in SAME {
        if p.plan[key] != now[key] {
            lines.push(format!(
                "`{key}`: the plan has {}, now {}",
                crate::text::clipped_line(&p.plan[key].to_string(), 200),
                crate::text::clipped_line(&now[key].to_string(), 200)
            ));
        }
    }
    lines
}

/// Once decided again, before any change: the plan is the plan file's
/// ([`plan_differences`]), else refused naming each difference (options
/// such as `--batch`, `--exclude` or `--allow-dependency-changes` given
/// differently from when the plan was made, or the version).
pub fn same_plan(cx: &Context<'_>, attempt: &Attempt, prepared: &Prepared) -> Result<(), Fatal> {
    let Some(loaded) = &cx.opts.plan else {
        return Ok(());
    };
    let version = prepared.plan.version.to_string();
    let mut notes = plan_differences(&loaded.plan, &version, &prepared.to_json(cx));
    if notes.is_empty() {
        return Ok(());
    }
    let why = if version != loaded.plan.version {
        format!(
            "the candidate version changed since the plan in `{}` was made",
            loaded.path.display()
        )
    } else {
        format!(
            "the plan decided now is not the plan in `{}`",
            loaded.path.display()
        )
    };
    notes.push(
        "give the options the plan was made with, or make a new plan \
         (`--dry-run --plan-out FILE`) and have it approved again"
            .into(),
    );
    Err(record::refuse(cx, attempt, why, notes))
}

fn list(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "no host".into()
    } else {
        hosts.join(", ")
    }
}

/// Write the plan of a dry run to `--plan-out` (when given): through a
/// temporary file renamed into place, mode 0644, never through a symbolic
/// link.
pub fn write_plan(cx: &Context<'_>, attempt: &Attempt, prepared: &Prepared) -> Result<(), Fatal> {
    let Some(out) = &cx.opts.plan_out else {
        return Ok(());
    };
    let configuration = approval::config_digest(&cx.config.path)
        .map_err(|e| Fatal::usage(format!("cannot read `{}`: {e}", cx.config.path.display())))?;
    let operator = crate::operator::Operator::current();
    let now = u64::try_from(crate::history::now_unix()).unwrap_or(0);
    let file = PlanFile {
        format: approval::FORMAT,
        action: attempt.action.to_string(),
        package: prepared.plan.package.to_string(),
        stage: prepared.plan.stage.clone(),
        version: prepared.plan.version.to_string(),
        hosts: prepared.states.clone(),
        configuration,
        made_by: operator.user.clone(),
        made_by_display: operator.display(),
        made_at: crate::history::format_rfc3339(now),
        expires_at: crate::history::format_rfc3339(now.saturating_add(cx.opts.expires.as_secs())),
        plan: prepared.to_json(cx),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).expect("a plan is JSON");
    bytes.push(b'\n');
    let dir = crate::local_file::parent_dir(out);
    let name = out.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        Fatal::usage(format!(
            "`--plan-out {}` does not name a file",
            out.display()
        ))
    })?;
    crate::badges::publish::write_local(dir, name, &bytes)
        .map_err(|e| Fatal::usage(format!("cannot write the plan to `{}`: {e}", out.display())))?;
    cx.console.say(&format!(
        "Plan written to `{}` (good until {}). Approvers sign it with `deployer approve {}`.",
        out.display(),
        file.expires_at,
        out.display()
    ));
    let sig = approval::sig_path(out);
    if sig.exists() {
        cx.console.say(&format!(
            "note: `{}` holds signatures of an earlier plan; they do not sign this one: remove it",
            sig.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::previous::Origin;
    use crate::deploy::request::Back;

    fn target(back: Option<Option<Origin>>) -> Target {
        Target {
            stage: 1,
            wanted: Wanted::Exact("1.0-1".parse().unwrap()),
            back: back.map(|ran_before| Back {
                origin: "1.0-1, as named".into(),
                ran_before,
            }),
        }
    }

    #[test]
    fn only_a_rollback_to_a_version_the_stage_ran_before_needs_no_approval() {
        assert!(needs_approval(&target(None)), "a deploy or promotion");
        assert!(
            needs_approval(&target(Some(None))),
            "a rollback to a version the stage never ran"
        );
        let ran = Origin {
            id: "x".into(),
            action: "deploy".into(),
            version: Some("1.1-1".into()),
            who: "alice@laptop".into(),
            time: "2026-12-07T10:00:00Z".into(),
        };
        assert!(!needs_approval(&target(Some(Some(ran)))));
    }

    #[test]
    fn the_workflow_names_each_step() {
        let notes = workflow("foo", "prod", 2);
        assert!(notes[0].contains("`approvals = 2`"));
        assert!(
            notes[1].contains("deployer deploy foo prod VERSION --dry-run --plan-out plan.json")
        );
        assert!(notes[2].contains("deployer approve plan.json"));
        assert!(notes[3].contains("deployer deploy --plan plan.json"));
        assert!(notes[3].contains("--override-freeze"));
    }
}

#[cfg(test)]
mod differences {
    use super::*;

    #[test]
    fn each_difference_of_the_plan_decided_again_is_named() {
        let plan_json = serde_json::json!({
            "steps": [{"host": "a"}, {"host": "b"}], "left_out": [],
            "batches": [["a"], ["b"]], "batch_size": "1", "max_failures": "0",
            "allow_dependency_changes": false, "allowed": [], "overridden": [],
            "rollback_on_failure": false, "unchanged": [],
        });
        let file: PlanFile = serde_json::from_value(serde_json::json!({
            "format": 1, "action": "deploy", "package": "foo", "stage": "prod",
            "version": "1.1-1", "hosts": [],
            "configuration": {"path": "/d.ini", "sha256": "00"},
            "made_by": "alice", "made_by_display": "alice@laptop",
            "made_at": "2026-12-07T10:00:00Z", "expires_at": "2026-12-08T10:00:00Z",
            "plan": plan_json.clone(),
        }))
        .unwrap();
        assert!(plan_differences(&file, "1.1-1", &plan_json).is_empty());
        let mut now = plan_json.clone();
        now["steps"] = serde_json::json!([{"host": "a"}]);
        now["left_out"] = serde_json::json!([{"host": "b"}]);
        now["batches"] = serde_json::json!([["a"]]);
        now["allow_dependency_changes"] = serde_json::json!(true);
        let lines = plan_differences(&file, "1.2-1", &now);
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(lines[0].contains("the plan installs 1.1-1, now 1.2-1"));
        assert_eq!(lines[1], "`steps`: the plan has a, b, now a");
        assert_eq!(lines[2], "`left_out`: the plan has no host, now b");
        assert!(lines[3].starts_with("`batches`"));
        assert!(lines[4].starts_with("`allow_dependency_changes`: the plan has false, now true"));
    }
}
