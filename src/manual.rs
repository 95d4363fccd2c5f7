//! The manual pages, in roff: `deployer(1)` from the very `clap`
//! definitions `--help` is written from (with EXAMPLES, EXIT STATUS,
//! ENVIRONMENT, FILES and SEE ALSO sections, as ripgrep's page has them),
//! one `deployer-COMMAND(1)` per command, and `deployer.ini(5)` from the
//! configuration schema ([`crate::config::schema::SECTIONS`]). The exit
//! statuses come from [`crate::error::EXIT_STATUSES`], their one owner.
//!
//! Pure apart from [`write_pages`]: every page renders into any writer.

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, EXAMPLES};
use crate::config::schema::{Form, SECTIONS};
use crate::error::{EXIT_STATUSES, EXIT_STATUS_PRECEDENCE};

/// The environment variables deployer reads, and what for.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DEPLOYER_CONFIG",
        "The configuration file to read when `--config` is not given (before the search for `deployer.ini`).",
    ),
    (
        "DEPLOYER_COMPLETE",
        "Set by the scripts of `deployer completions SHELL --dynamic`: the run answers a completion request instead.",
    ),
    (
        "NO_COLOR, CLICOLOR, CLICOLOR_FORCE, TERM",
        "With `--color auto`: no colour when `NO_COLOR` is non-empty or `CLICOLOR=0`, colour when `CLICOLOR_FORCE` is non-empty, else colour on a terminal whose `TERM` is not `dumb`.",
    ),
    (
        "SSH_AUTH_SOCK",
        "The SSH agent whose keys are offered first, as `ssh` offers them.",
    ),
    (
        "HOME",
        "Where `~/.ssh/config`, `~/.ssh/known_hosts` and the default identity files are looked for.",
    ),
    (
        "SUDO_USER",
        "Run through `sudo`, the person recorded in the history is `SUDO_USER` (with `as_user` root); `USER` is never trusted.",
    ),
];

/// The files deployer reads or writes, here and on the hosts.
pub const FILES: &[(&str, &str)] = &[
    (
        "deployer.ini, .deployer.ini",
        "The configuration (see deployer.ini(5)), searched in the current directory and then in each parent up to /, unless `--config` or `DEPLOYER_CONFIG` names one.",
    ),
    (
        "deployer-history.jsonl",
        "The local audit log beside the configuration (`history_file`), one JSON record per attempt.",
    ),
    (
        "~/.ssh/config, /etc/ssh/ssh_config",
        "The OpenSSH client configuration, read as `ssh -G` reads it (or only the file `ssh_config` names).",
    ),
    (
        "~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts, /etc/ssh/ssh_known_hosts2",
        "The host keys checked before any login (`known_hosts`, `UserKnownHostsFile`, `GlobalKnownHostsFile`).",
    ),
    (
        "~/.ssh/id_ed25519, ~/.ssh/id_ecdsa, ~/.ssh/id_rsa",
        "The default identity files, tried after `ssh_identity_file` and `IdentityFile`.",
    ),
    (
        "/var/log/deployer/history.jsonl",
        "On each host: the attempts of every operator that touched it (`deployer history --hosts STAGE`).",
    ),
    (
        "/var/lib/deployer/freeze/STAGE",
        "On each host of a frozen stage: the freeze record (`deployer freeze`).",
    ),
    (
        "/run/deployer/deploy.lock, /run/deployer/install.lock",
        "On each host: the deploy lock of a running deploy, and the lock of a running install.",
    ),
    (
        "/var/lib/deployer/runs/",
        "On each host: one directory per detached install or rollback, with its output, pid and exit status.",
    ),
    (
        "/var/cache/deployer/debs/",
        "On each host: the .deb of the last three versions of each package that deployer changed, with their SHA256 (rollbacks when the repository dropped a version).",
    ),
    (
        "/etc/machine-info",
        "On each host: `DEPLOYMENT=` names the stage the host says it is in (`deployer check`).",
    ),
    (
        "/usr/share/doc/deployer/deployer.ini.example",
        "A working configuration with every key explained (Debian package).",
    ),
];

/// The command line as the manual shows it: without clap's `help`
/// subcommand, which has no page of its own.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Text for roff: backslashes and leading dots made literal, `code` in
/// bold, hyphens as hyphens.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    let mut out = String::new();
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("\\fB{part}\\fR"));
        } else {
            out.push_str(part);
        }
    }
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// One `.TP` entry: a bold tag and its paragraph.
fn tagged(out: &mut dyn Write, tag: &str, body: &str) -> io::Result<()> {
    writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff_text(tag), roff_text(body))
}

/// Write `deployer.1`.
pub fn write_deployer_1(out: &mut dyn Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(command());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;

    writeln!(out, ".SH EXAMPLES")?;
    for line in EXAMPLES.lines().skip(1) {
        let line = line.trim();
        let (example, what) = line
            .split_once("  ")
            .map_or((line, ""), |(e, w)| (e, w.trim()));
        let what = if what.is_empty() {
            "Read this configuration file instead of searching for one."
        } else {
            what
        };
        tagged(out, example, what)?;
    }

    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (status, meaning) in EXIT_STATUSES {
        tagged(out, &status.code().to_string(), meaning)?;
    }
    writeln!(out, ".PP\n{}", roff_text(EXIT_STATUS_PRECEDENCE))?;

    writeln!(out, ".SH ENVIRONMENT")?;
    for (name, what) in ENVIRONMENT {
        tagged(out, name, what)?;
    }
    writeln!(out, ".SH FILES")?;
    for (name, what) in FILES {
        tagged(out, name, what)?;
    }

    writeln!(out, ".SH \"SEE ALSO\"")?;
    let mut see: Vec<String> = vec!["\\fBdeployer.ini\\fR(5)".into()];
    see.extend(
        command()
            .get_subcommands()
            .map(|s| format!("\\fBdeployer\\-{}\\fR(1)", s.get_name().replace('-', "\\-"))),
    );
    see.extend(
        ["ssh_config(5)", "sshd(8)", "dpkg(1)", "apt-get(8)"]
            .iter()
            .map(|p| roff_text(p)),
    );
    writeln!(out, "{}", see.join(", "))?;
    man.render_version_section(out)
}

/// Write `deployer.ini.5`, from the configuration schema.
pub fn write_deployer_ini_5(out: &mut dyn Write) -> io::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    writeln!(
        out,
        ".TH deployer.ini 5 \"\" \"deployer {version}\" \"File Formats Manual\""
    )?;
    writeln!(
        out,
        ".SH NAME\ndeployer.ini \\- the configuration of deployer(1)"
    )?;
    writeln!(
        out,
        ".SH SYNOPSIS\n\\fBdeployer.ini\\fR, \\fB.deployer.ini\\fR"
    )?;
    writeln!(out, ".SH DESCRIPTION")?;
    for paragraph in [
        "deployer(1) reads its pipeline from an INI file, found through `--config PATH`, else `DEPLOYER_CONFIG`, else as `deployer.ini` or `.deployer.ini` in the current directory and then in each parent up to /.",
        "The file must be owned by the user running deployer or by root, and neither its group nor other users may write to it: it names the commands deployer runs and the host keys it trusts.",
        "The dialect is that of Python's ConfigParser with its defaults: `key = value` or `key: value`; keys in any case, section names as written; whole-line comments starting with `#` or `;`; a line indented deeper than its key continues a list value; values taken as written (no quotes, escapes or `%` interpolation); a section or key written twice is an error.",
        "Lists are separated by whitespace. Timeouts are whole seconds (`30`), or with a unit (`30s`, `2m`). Booleans are `yes` or `no`.",
    ] {
        writeln!(out, ".PP\n{}", roff_text(paragraph))?;
    }
    for kind in SECTIONS {
        writeln!(out, ".SH \"{}\"", kind.header())?;
        for key in kind.keys {
            let form = match key.form {
                Form::Single => "",
                Form::List => " (a list)",
                Form::Command => " (a shell command, kept as written)",
            };
            tagged(
                out,
                key.name,
                &format!("{}{form}. Default: {}.", key.meaning, key.default),
            )?;
        }
    }
    writeln!(out, ".SH EXAMPLE\n.nf")?;
    for line in [
        "[environment]",
        "deb_packages = ooni-api fastpath",
        "stages = test hel prod",
        "badges_path = /var/www/package_badges",
        "[stage:test]",
        "hosts = local",
        "[stage:hel]",
        "hosts = deployer@backend-hel.ooni.org",
        "[stage:prod]",
        "hosts = backend-fsn.ooni.org backend-fsn2.ooni.org:2222",
        "[package:fastpath]",
        "health_check = curl -fsS http://localhost:8080/health",
    ] {
        writeln!(out, "{}", roff_text(line))?;
    }
    writeln!(out, ".fi")?;
    writeln!(out, ".SH FILES")?;
    tagged(
        out,
        "/usr/share/doc/deployer/deployer.ini.example",
        "Every key with its default and accepted values, as a working configuration.",
    )?;
    writeln!(out, ".SH \"SEE ALSO\"\n\\fBdeployer\\fR(1), ssh_config(5)")
}

/// Write every page into `dir`: `deployer.1`, one `deployer-COMMAND.1` per
/// command and `deployer.ini.5`.
pub fn write_pages(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut top = io::BufWriter::new(std::fs::File::create(dir.join("deployer.1"))?);
    write_deployer_1(&mut top)?;
    top.flush()?;
    let mut ini = io::BufWriter::new(std::fs::File::create(dir.join("deployer.ini.5"))?);
    write_deployer_ini_5(&mut ini)?;
    ini.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(write: fn(&mut dyn Write) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn deployer_1_has_the_sections_of_a_man_page_and_every_exit_status() {
        let text = page(write_deployer_1);
        for section in [
            ".TH deployer 1",
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH EXAMPLES",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(text.contains(section), "no `{section}` in:\n{text}");
        }
        for (status, _) in EXIT_STATUSES {
            assert!(text.contains(&format!(".TP\n\\fB{}\\fR\n", status.code())));
        }
        assert!(text.contains("DEPLOYER_CONFIG"));
        assert!(
            !text.contains("deployer\\-help"),
            "a page that does not exist"
        );
    }

    #[test]
    fn deployer_ini_5_lists_every_key_of_the_schema() {
        let text = page(write_deployer_ini_5);
        assert!(text.starts_with(".TH deployer.ini 5"));
        for kind in SECTIONS {
            assert!(text.contains(&format!(".SH \"{}\"", kind.header())));
            for key in kind.keys {
                let tag = format!(".TP\n\\fB{}\\fR\n", roff_text(key.name));
                assert!(text.contains(&tag), "no `{}`", key.name);
            }
        }
    }

    #[test]
    fn roff_text_cannot_start_a_request_and_keeps_backslashes() {
        assert_eq!(roff_text(".x"), "\\&.x");
        assert_eq!(roff_text("a\\b"), "a\\eb");
        assert_eq!(roff_text("`--json` x"), "\\fB\\-\\-json\\fR x");
    }
}
