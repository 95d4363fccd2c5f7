//! The part of the pipeline the status view's filters select (`--stage`,
//! `--package`, `--host`, each repeatable): which hosts to contact, which
//! packages to ask them about, and the columns of the matrix.
//!
//! Pure: checks the names typed against the configuration (unknown ones
//! are errors, with a did-you-mean note) before any host is contacted, and
//! answers questions about targets. Connecting is the caller's job.

use crate::config::Config;
use crate::error::Fatal;
use crate::package::PackageName;
use crate::transport::Target;

/// What the filters keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selection {
    /// The packages, in `deb_packages` order.
    pub packages: Vec<PackageName>,
    /// `(stage, host as written)` of every host kept, in configuration order.
    hosts: Vec<(String, String)>,
    /// The stages shown, in configuration order, each with its number of
    /// hosts kept.
    pub columns: Vec<(String, usize)>,
}

impl Selection {
    /// Check `stages`, `packages` and `hosts` (as typed; empty means all)
    /// against `config`. A host is named as written in its stage's `hosts`
    /// (`user@name:port`) or by its name alone; it selects that host in
    /// every stage that lists it, and with `stages` only in those.
    pub(crate) fn new(
        config: &Config,
        stages: &[String],
        packages: &[String],
        hosts: &[String],
    ) -> Result<Selection, Fatal> {
        let stage_ix: Vec<usize> = stages
            .iter()
            .map(|s| crate::deploy::check_stage(config, s))
            .collect::<Result<_, _>>()?;
        let chosen: Vec<PackageName> = packages
            .iter()
            .map(|p| crate::deploy::check_package(config, p))
            .collect::<Result<_, _>>()?;
        for typed in hosts {
            let known = config
                .stages
                .iter()
                .flat_map(|s| &s.hosts)
                .any(|h| h.to_string() == *typed || h.name == *typed);
            if !known {
                return Err(unknown_host(config, typed));
            }
        }
        let mut kept = Vec::new();
        let mut columns = Vec::new();
        for (i, stage) in config.stages.iter().enumerate() {
            if !stage_ix.is_empty() && !stage_ix.contains(&i) {
                continue;
            }
            let mine: Vec<String> = stage
                .hosts
                .iter()
                .filter(|h| {
                    hosts.is_empty() || hosts.iter().any(|t| h.to_string() == *t || h.name == *t)
                })
                .map(ToString::to_string)
                .collect();
            if mine.is_empty() && !hosts.is_empty() {
                continue;
            }
            columns.push((stage.name.clone(), mine.len()));
            kept.extend(mine.into_iter().map(|h| (stage.name.clone(), h)));
        }
        if columns.is_empty() {
            return Err(Fatal::usage(format!(
                "no host of {} is among {}",
                listed(stages.iter().map(String::as_str)),
                listed(hosts.iter().map(String::as_str)),
            ))
            .note("`deployer hosts` lists every stage's hosts"));
        }
        let packages = config
            .packages
            .iter()
            .filter(|p| chosen.is_empty() || chosen.contains(p))
            .cloned()
            .collect();
        Ok(Selection {
            packages,
            hosts: kept,
            columns,
        })
    }

    /// Whether `target` is one of the hosts kept.
    pub(crate) fn keeps(&self, target: &Target) -> bool {
        self.hosts
            .iter()
            .any(|(s, h)| *s == target.stage && *h == target.host)
    }
}

/// `` `a`, `b` ``.
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| {
            format!(
                "`{}`",
                crate::text::clipped_line(n, crate::text::REMOTE_TEXT_MAX)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_host(config: &Config, typed: &str) -> Fatal {
    let written: Vec<String> = config
        .stages
        .iter()
        .flat_map(|s| &s.hosts)
        .map(ToString::to_string)
        .collect();
    let mut names: Vec<&str> = written.iter().map(String::as_str).collect();
    names.dedup();
    let fatal = Fatal::usage(format!(
        "host `{}` is not in the `hosts` of any stage",
        crate::text::clipped_line(typed, crate::text::REMOTE_TEXT_MAX)
    ));
    let fatal = match crate::suggest::did_you_mean(typed, names.iter().copied()) {
        Some(guess) => fatal.note(guess),
        None => fatal,
    };
    fatal.note("`deployer hosts` lists every stage's hosts")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::parse(
            std::path::Path::new("/d/deployer.ini"),
            "[environment]\ndeb_packages = fastpath analysis detector\nstages = test hel prod\n\
             [stage:test]\nhosts = test-1 local\n[stage:hel]\nhosts = hel-1\n\
             [stage:prod]\nhosts = deployer@prod-1:2222 prod-2 local\n",
        )
        .expect("valid")
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    fn columns(s: &Selection) -> Vec<(&str, usize)> {
        s.columns.iter().map(|(n, c)| (n.as_str(), *c)).collect()
    }

    #[test]
    fn no_filter_keeps_everything() {
        let s = Selection::new(&config(), &[], &[], &[]).unwrap();
        assert_eq!(columns(&s), [("test", 2), ("hel", 1), ("prod", 3)]);
        assert_eq!(s.packages.len(), 3);
        assert_eq!(s.hosts.len(), 6);
    }

    #[test]
    fn stages_and_packages_keep_configuration_order() {
        let s = Selection::new(
            &config(),
            &strings(&["prod", "test"]),
            &strings(&["detector", "fastpath"]),
            &[],
        )
        .unwrap();
        assert_eq!(columns(&s), [("test", 2), ("prod", 3)]);
        let p: Vec<&str> = s.packages.iter().map(PackageName::as_str).collect();
        assert_eq!(p, ["fastpath", "detector"]);
    }

    #[test]
    fn a_host_is_kept_in_every_stage_that_lists_it() {
        let s = Selection::new(&config(), &[], &[], &strings(&["local", "prod-1"])).unwrap();
        assert_eq!(columns(&s), [("test", 1), ("prod", 2)]);
        assert_eq!(
            s.hosts,
            [
                ("test".into(), "local".into()),
                ("prod".into(), "deployer@prod-1:2222".into()),
                ("prod".into(), "local".into()),
            ]
        );
        let s = Selection::new(&config(), &strings(&["prod"]), &[], &strings(&["local"])).unwrap();
        assert_eq!(columns(&s), [("prod", 1)]);
    }

    #[test]
    fn unknown_names_are_refused_with_a_suggestion() {
        let c = config();
        let e = Selection::new(&c, &[], &[], &strings(&["prod-3x"])).unwrap_err();
        assert_eq!(
            e.message,
            "host `prod-3x` is not in the `hosts` of any stage"
        );
        let e = Selection::new(&c, &[], &[], &strings(&["prdo-2"])).unwrap_err();
        assert_eq!(e.notes[0], "did you mean `prod-2`?");
        let e = Selection::new(&c, &strings(&["prdo"]), &[], &[]).unwrap_err();
        assert_eq!(e.notes[0], "did you mean `prod`?");
        let e = Selection::new(&c, &[], &strings(&["fastpth"]), &[]).unwrap_err();
        assert_eq!(e.notes[0], "did you mean `fastpath`?");
        let e = Selection::new(&c, &strings(&["hel"]), &[], &strings(&["test-1"])).unwrap_err();
        assert_eq!(e.message, "no host of `hel` is among `test-1`");
    }
}
