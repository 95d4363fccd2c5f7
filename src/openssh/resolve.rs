//! Resolving one host as `ssh -G` does: which `Host` and `Match` blocks
//! apply, the first value obtained for each option, and the checks ssh
//! makes on what it obtained.

use super::config::{
    Criterion, Criterium, HostPattern, HostSettings, Item, ItemKind, ResolveContext,
    SshConfigError, SshConfigFile,
};
use super::options::{honoured, At, Kind, Obtained, Opt, Value};
use super::pattern::{match_pattern_list, wildcard_match};
use super::tokens::{
    expand_dollar, expand_host_name, expand_percent_dollar, expand_tilde, host_name_error,
    is_address, sha1_hex, CLIENT_TOKENS,
};
use super::values::{forward_socket_paths, forward_spec, refused_obtained_value, JumpHost, FLAG};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The route options, which share one slot in ssh: whichever of
/// `ProxyJump` and `ProxyCommand` comes first wins.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// `ProxyJump`: `Some(vec![])` for `none`.
    pub(crate) jump: Option<Vec<JumpHost>>,
    /// `ProxyCommand` (when not `none`).
    pub(crate) command: Option<String>,
    pub(crate) path: PathBuf,
    pub(crate) number: usize,
}

/// Options as found so far.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The options of the table, first value wins.
    pub(crate) first: Obtained,
    pub(crate) identity_files: Vec<String>,
    pub(crate) route: Option<Route>,
    /// Where each `IdentityFile` value obtained was set (key: keyword and
    /// value).
    pub(crate) lines: BTreeMap<String, At>,
    /// Every forwarding of the blocks that apply (they accumulate), with
    /// where: canonical keyword, arguments.
    pub(crate) forwards: Vec<(&'static str, Vec<String>, PathBuf, usize)>,
    /// Every `CertificateFile` of the blocks that apply, with where.
    pub(crate) certificate_files: Vec<(String, PathBuf, usize)>,
}

pub(crate) struct State<'a> {
    pub(crate) alias: &'a str,
    pub(crate) context: &'a ResolveContext,
    pub(crate) found: Found,
}

impl State<'_> {
    fn unsupported(&self, item: &Item, message: String) -> SshConfigError {
        SshConfigError::Unsupported {
            host: self.alias.to_string(),
            path: item.path.clone(),
            line: item.number,
            message,
        }
    }

    /// Walks the items of one file; `active` is shared with the including
    /// file, as in ssh; `never` is set inside an `Include` from an inactive
    /// block (its `Host` and `Match` lines never activate anything).
    fn walk(
        &mut self,
        items: &[Item],
        active: &mut bool,
        never: bool,
    ) -> Result<(), SshConfigError> {
        for item in items {
            match &item.kind {
                ItemKind::Host(patterns) => {
                    *active = !never && host_line_matches(patterns, self.alias);
                }
                // Inside an `Include` from a block that does not apply,
                // nothing can apply, whatever the criteria say.
                ItemKind::Match(_) if never => *active = false,
                ItemKind::Match(criteria) => *active = self.match_line(item, criteria)?,
                ItemKind::Include(_, files) => {
                    let outer = *active;
                    for file in files {
                        self.walk(file, active, never || !outer)?;
                        *active = outer;
                    }
                }
                ItemKind::NeedsEnv(names) => {
                    if let Some(name) = names.iter().find(|n| !self.context.env.contains_key(*n)) {
                        return Err(SshConfigError::Invalid {
                            path: item.path.clone(),
                            line: item.number,
                            message: format!(
                                "`${{{name}}}` is not set; ssh expands it when it reads this \
                                 line and refuses the file (\"env var has no value\")"
                            ),
                        });
                    }
                }
                ItemKind::Set(opt) if *active => self.set(item, opt),
                ItemKind::Set(_) => {}
                // ssh checks every line, whether its block applies or not,
                // against the `IgnoreUnknown` obtained so far.
                ItemKind::Unknown(keyword) => {
                    let ignored = self
                        .found
                        .first
                        .text("IgnoreUnknown")
                        .is_some_and(|list| match_pattern_list(keyword, list, true));
                    if !ignored {
                        return Err(SshConfigError::Invalid {
                            path: item.path.clone(),
                            line: item.number,
                            message: format!(
                                "`{keyword}` is not an option of OpenSSH 9.2, which refuses the \
                                 file (\"Bad configuration option\"); list it in `IgnoreUnknown` \
                                 before this line if it is meant for another ssh"
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Evaluates a `Match` line with the options found so far, as ssh
    /// does; refuses when the outcome depends on a criterion deployer
    /// cannot evaluate.
    fn match_line(&self, item: &Item, criteria: &[Criterion]) -> Result<bool, SshConfigError> {
        let host = match self.found.first.text("HostName") {
            Some(h) => expand_host_name(h, self.alias)
                .map_err(|m| host_name_error(self.found.first.at("HostName"), item, m))?,
            None => self.alias.to_string(),
        }
        .to_ascii_lowercase();
        let original = self.alias.to_ascii_lowercase();
        let user = self
            .found
            .first
            .text("User")
            .unwrap_or(&self.context.local_user);
        let mut result = true;
        let mut unknown: Option<&str> = None;
        for c in criteria {
            let r = match &c.what {
                Criterium::All => {
                    // `all` ends the line, and only counts when all before
                    // it matched.
                    if result {
                        result = !c.negated;
                    }
                    break;
                }
                Criterium::Host(list) => match_pattern_list(&host, list, true),
                Criterium::OriginalHost(list) => match_pattern_list(&original, list, true),
                Criterium::User(list) => match_pattern_list(user, list, false),
                Criterium::LocalUser(list) => {
                    match_pattern_list(&self.context.local_user, list, false)
                }
                Criterium::Unsupported(what) => {
                    if what == "final" || what == "canonical" {
                        // Their mere presence makes ssh read the config
                        // twice, which changes what matches.
                        return Err(self.refuse_match(item, what));
                    }
                    unknown.get_or_insert(what);
                    continue;
                }
            };
            if r == c.negated {
                result = false;
            }
        }
        match (result, unknown) {
            (true, Some(what)) => Err(self.refuse_match(item, what)),
            _ => Ok(result),
        }
    }

    fn refuse_match(&self, item: &Item, what: &str) -> SshConfigError {
        self.unsupported(
            item,
            format!(
                "`Match {what}`: whether this block applies depends on something deployer \
                 does not evaluate (it never runs commands or resolves names to decide), \
                 so the host is refused rather than reached with other settings than ssh's; \
                 use `Host` or `Match host`/`user` instead"
            ),
        )
    }

    fn set(&mut self, item: &Item, opt: &Opt) {
        let f = &mut self.found;
        match opt {
            Opt::First(name, value) => {
                f.first.offer(name, value, (item.path.clone(), item.number));
            }
            Opt::IdentityFile(v) => {
                if !f.identity_files.contains(v) {
                    f.identity_files.push(v.clone());
                    f.lines.insert(
                        format!("IdentityFile {v}"),
                        (item.path.clone(), item.number),
                    );
                }
            }
            Opt::ProxyJump(hops) => {
                f.route.get_or_insert_with(|| Route {
                    jump: Some(hops.clone().unwrap_or_default()),
                    command: None,
                    path: item.path.clone(),
                    number: item.number,
                });
            }
            Opt::ProxyCommand(command) => {
                f.route.get_or_insert_with(|| Route {
                    jump: None,
                    command: (!command.eq_ignore_ascii_case("none")).then(|| command.clone()),
                    path: item.path.clone(),
                    number: item.number,
                });
            }
            Opt::CertificateFile(v) => {
                f.certificate_files
                    .push((v.clone(), item.path.clone(), item.number));
            }
            Opt::Forward(keyword, args) => {
                f.forwards
                    .push((keyword, args.clone(), item.path.clone(), item.number));
            }
        }
    }

    /// What ssh does after reading the files: fill in the host name,
    /// refuse what deployer cannot do, expand tokens in paths.
    fn finish(self) -> Result<HostSettings, SshConfigError> {
        let f = self.found;
        let cx = self.context;
        let alias = self.alias;
        let at = |path: &Path, line: usize, message: String| SshConfigError::Unsupported {
            host: alias.to_string(),
            path: path.to_path_buf(),
            line,
            message,
        };
        for (keyword, value, (path, line)) in f.first.iter() {
            let checked = honoured_kind(keyword)
                .is_some_and(|k| matches!(k, Kind::Checked | Kind::CheckedRaw));
            if let (true, Value::Text(value)) = (checked, value) {
                if let Some(message) = refused_obtained_value(keyword, value) {
                    return Err(at(path, *line, message));
                }
            }
        }
        if let Some((Value::Text(value), (path, line))) = f.first.get("KexAlgorithms") {
            if let Err(message) = super::kex::assemble(Some(value), super::kex::DEFAULT) {
                return Err(SshConfigError::Invalid {
                    path: path.clone(),
                    line: *line,
                    message,
                });
            }
        }
        if let Some((Value::Text(value), (path, line))) = f.first.get("CanonicalizeHostname") {
            if value != "no" && value != "false" {
                return Err(at(
                    path,
                    *line,
                    format!(
                        "`CanonicalizeHostname {value}`: ssh would look the name up in DNS \
                         and read the configuration again for the name it finds; deployer \
                         does not, so it refuses the host rather than reach another one \
                         (set `CanonicalizeHostname no` for this host, or write its full \
                         name in deployer.ini)"
                    ),
                ));
            }
        }
        if let Some(Route {
            command: Some(command),
            path,
            number,
            ..
        }) = &f.route
        {
            return Err(at(
                path,
                *number,
                format!(
                    "`ProxyCommand {command}` is not supported: deployer never runs a \
                     command to connect, and never ignores one that decides the route; \
                     use `ProxyJump` (supported) instead, or `ProxyCommand none` for a \
                     host that must be reached directly"
                ),
            ));
        }
        let mut host = match f.first.get("HostName") {
            Some((Value::Text(h), (path, line))) => {
                expand_host_name(h, alias).map_err(|m| SshConfigError::Invalid {
                    path: path.clone(),
                    line: *line,
                    message: m,
                })?
            }
            _ => alias.to_string(),
        };
        if !is_address(&host) {
            host = host.to_ascii_lowercase();
        }
        let user = f
            .first
            .text("User")
            .map_or_else(|| cx.local_user.clone(), String::from);
        let port = f.first.port("Port").unwrap_or(22);
        let host_key_alias = f.first.text("HostKeyAlias").map(str::to_ascii_lowercase);
        let short = cx.local_host.split('.').next().unwrap_or("").to_string();
        let port_text = port.to_string();
        let uid = cx.uid.to_string();
        let home = cx.home.to_string_lossy().into_owned();
        let conn_hash = sha1_hex(format!("{}{host}{port}{user}", cx.local_host).as_bytes());
        let tokens: [(char, &str); 11] = [
            ('C', &conn_hash),
            ('L', &short),
            ('i', &uid),
            ('k', host_key_alias.as_deref().unwrap_or(alias)),
            ('l', &cx.local_host),
            ('n', alias),
            ('p', &port_text),
            ('d', &home),
            ('h', &host),
            ('r', &user),
            ('u', &cx.local_user),
        ];
        debug_assert!(tokens
            .iter()
            .map(|(k, _)| *k)
            .eq(CLIENT_TOKENS.iter().copied()));
        let path_of = |text: &str, what: &str| -> Result<PathBuf, SshConfigError> {
            let set_at = match what {
                "IdentityFile" => f.lines.get(&format!("{what} {text}")),
                _ => f.first.at(what),
            };
            let (path, line) = set_at.cloned().unwrap_or_else(|| (PathBuf::from(what), 0));
            let tilde = expand_tilde(text, &cx.home).map_err(|m| SshConfigError::Invalid {
                path: path.clone(),
                line,
                message: format!("`{what} {text}`: {m}"),
            })?;
            expand_percent_dollar(&tilde, &tokens, Some(&cx.env))
                .map(PathBuf::from)
                .map_err(|m| SshConfigError::Unsupported {
                    host: alias.to_string(),
                    path,
                    line,
                    message: format!("`{what} {text}`: {m}"),
                })
        };
        let identity_files = f
            .identity_files
            .iter()
            .map(|p| path_of(p, "IdentityFile"))
            .collect::<Result<Vec<_>, _>>()?;
        // ssh drops a line naming a file exactly as an earlier one did,
        // but offers a file twice when two lines spell it differently: a
        // second offer of a key the server refused cannot succeed and
        // spends one of its `MaxAuthTries`, so deployer offers it once.
        let mut unique = Vec::new();
        let mut repeated = Vec::new();
        for p in identity_files {
            if !unique.contains(&p) {
                unique.push(p);
            } else if !repeated.contains(&p) {
                repeated.push(p);
            }
        }
        let user_known_hosts_files = match f.first.files("UserKnownHostsFile") {
            Some(list) if list.len() == 1 && list[0].eq_ignore_ascii_case("none") => {
                vec![PathBuf::from("/dev/null")]
            }
            Some(list) => list
                .iter()
                .map(|p| path_of(p, "UserKnownHostsFile"))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let global_known_hosts_files = match f.first.files("GlobalKnownHostsFile") {
            Some(list) if list.len() == 1 && list[0].eq_ignore_ascii_case("none") => Some(vec![]),
            Some(list) => Some(
                list.iter()
                    .map(|p| {
                        expand_tilde(p, &cx.home).map(PathBuf::from).map_err(|m| {
                            SshConfigError::Invalid {
                                path: PathBuf::from("GlobalKnownHostsFile"),
                                line: 0,
                                message: m,
                            }
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        // ssh expands these paths (unless `none`, or a flag) before it
        // connects, and refuses unknown `%` tokens and unset variables.
        for keyword in ["ControlPath", "IdentityAgent", "ForwardAgent"] {
            let Some((Value::Text(value), (path, line))) = f.first.get(keyword) else {
                continue;
            };
            let skip = match keyword {
                "ControlPath" => value.eq_ignore_ascii_case("none"),
                "ForwardAgent" => FLAG.iter().any(|v| v.eq_ignore_ascii_case(value)),
                _ => false,
            };
            if !skip {
                if let Err(m) = expand_percent_dollar(value, &tokens, Some(&cx.env)) {
                    return Err(at(
                        path,
                        *line,
                        format!("`{keyword} {value}`: {m}; ssh refuses it when connecting"),
                    ));
                }
            }
        }
        // ssh expands `RemoteCommand` and the socket paths of forwardings
        // before it connects (without `${VAR}`, which it expanded when
        // reading the line), and `CertificateFile` (with `${VAR}`) when
        // it loads the keys.
        let mut expanded: Vec<(String, &PathBuf, usize, String, bool)> = Vec::new();
        if let Some((Value::Text(value), (path, line))) = f.first.get("RemoteCommand") {
            if !value.eq_ignore_ascii_case("none") {
                let what = format!("RemoteCommand {value}");
                expanded.push((what, path, *line, value.clone(), false));
            }
        }
        for (keyword, args, path, line) in &f.forwards {
            let args: Vec<String> = args.iter().map(|a| expand_dollar(a, &cx.env)).collect();
            if let Ok((spec, _, _)) = forward_spec(keyword, &args) {
                for socket in forward_socket_paths(&spec) {
                    let what = format!("{keyword} {}", args.join(" "));
                    expanded.push((what, path, *line, socket, false));
                }
            }
        }
        for (value, path, line) in &f.certificate_files {
            let what = format!("CertificateFile {value}");
            expanded.push((what, path, *line, value.clone(), true));
        }
        for (what, path, line, value, dollar) in expanded {
            let env = dollar.then_some(&cx.env);
            if let Err(m) = expand_percent_dollar(&value, &tokens, env) {
                return Err(SshConfigError::Invalid {
                    path: path.clone(),
                    line,
                    message: format!("`{what}`: {m}"),
                });
            }
        }
        // ssh refuses a last hop that is the destination itself.
        if let Some(Route {
            jump: Some(hops),
            path,
            number,
            ..
        }) = &f.route
        {
            if let Some(last) = hops.last() {
                if last.host == host
                    && last.port.unwrap_or(22) == port
                    && last.user.as_deref().unwrap_or(&user) == user
                {
                    return Err(at(
                        path,
                        *number,
                        format!(
                            "`ProxyJump`: the last jump host `{last}` is `{user}@{host}:{port}` \
                             itself (ssh refuses this \"jumphost loop\")"
                        ),
                    ));
                }
            }
        }
        Ok(HostSettings {
            host_name: Some(host),
            user: f.first.text("User").map(String::from),
            port: f.first.port("Port"),
            identity_files: unique,
            identity_files_repeated: repeated,
            user_known_hosts_files,
            global_known_hosts_files,
            strict_host_key_checking: f.first.strict("StrictHostKeyChecking"),
            hash_known_hosts: f.first.flag("HashKnownHosts"),
            connect_timeout: f.first.time("ConnectTimeout"),
            host_key_alias,
            identities_only: f.first.flag("IdentitiesOnly"),
            server_alive_interval: f.first.time("ServerAliveInterval"),
            server_alive_count_max: f.first.count("ServerAliveCountMax"),
            kex_algorithms: f.first.text("KexAlgorithms").map(String::from),
            proxy_jump: f.route.and_then(|r| r.jump),
        })
    }
}

/// Whether ssh's `Host` line matches: any matching negated pattern vetoes
/// the line, and otherwise one positive match is needed; patterns are
/// matched against the name as typed, case-sensitively.
pub(crate) fn host_line_matches(patterns: &[HostPattern], alias: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if wildcard_match(&p.pattern, alias) {
            if p.negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

impl SshConfigFile {
    /// The settings for `alias` (the host as typed, e.g. in deployer.ini),
    /// as `ssh -G` would print them with `context`'s user, port and jump
    /// hosts given on its command line.
    ///
    /// # Errors
    ///
    /// [`SshConfigError::Unsupported`] when the answer depends on what
    /// deployer does not do as ssh would: a `Match exec` (or `canonical`,
    /// `final`, `localnetwork`, `tagged`…) whose outcome matters,
    /// `ProxyCommand`, `CanonicalizeHostname yes`; and
    /// [`SshConfigError::Invalid`] for a value ssh would refuse once
    /// expanded (an unknown `%` token, an unset `${VAR}`, a `~user` path).
    pub fn resolve(
        &self,
        alias: &str,
        context: &ResolveContext,
    ) -> Result<HostSettings, SshConfigError> {
        let mut state = State {
            alias,
            context,
            found: Found {
                first: given(context),
                route: context.proxy_jump.clone().map(|hops| Route {
                    jump: Some(hops),
                    command: None,
                    path: PathBuf::new(),
                    number: 0,
                }),
                ..Found::default()
            },
        };
        for file in &self.files {
            let mut active = true;
            state.walk(file, &mut active, false)?;
        }
        state.finish()
    }
}

/// The kind of the option of the table named `name`.
fn honoured_kind(name: &str) -> Option<Kind> {
    honoured(&name.to_ascii_lowercase()).map(|o| o.kind)
}

/// The values given on ssh's command line (`-l`, `-p`), which win over
/// every line.
fn given(context: &ResolveContext) -> Obtained {
    let mut first = Obtained::default();
    if let Some(user) = &context.user {
        first.offer("User", &Value::Text(user.clone()), (PathBuf::new(), 0));
    }
    if let Some(port) = context.port {
        first.offer("Port", &Value::Port(port), (PathBuf::new(), 0));
    }
    first
}
