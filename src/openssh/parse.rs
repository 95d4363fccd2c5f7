//! ssh_config text into items: `Host` and `Match` lines, `Include`s and
//! the options deployer uses ([`Opt`]), each line's values checked.

use super::config::{
    Criterion, Criterium, HostPattern, Item, ItemKind, SshConfigError, SshConfigFile,
    SshConfigWarning,
};
use super::keywords::{is_known_keyword, UNSUPPORTED_KEYWORDS};
use super::lexer::split_line;
use super::options::{honoured, Opt};
use super::values::{check_values, parse_proxy_jump, required_env, single};
use std::path::Path;

/// A `Match` line's criteria, checked as ssh checks them.
pub(crate) fn parse_match(args: &[String]) -> Result<Vec<Criterion>, String> {
    let mut criteria = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let (negated, name) = match word.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, word.as_str()),
        };
        let name = name.to_ascii_lowercase();
        if name == "all" {
            if criteria.len() > 1 || words.next().is_some() {
                return Err(format!(
                    "`Match {word}` cannot be combined with other `Match` criteria"
                ));
            }
            criteria.push(Criterion {
                negated,
                what: Criterium::All,
            });
            break;
        }
        if name == "canonical" || name == "final" {
            criteria.push(Criterion {
                negated,
                what: Criterium::Unsupported(name),
            });
            continue;
        }
        let Some(arg) = words.next() else {
            return Err(format!("`Match {name}` needs an argument"));
        };
        let what = match name.as_str() {
            "host" => Criterium::Host(arg.clone()),
            "originalhost" => Criterium::OriginalHost(arg.clone()),
            "user" => Criterium::User(arg.clone()),
            "localuser" => Criterium::LocalUser(arg.clone()),
            "exec" | "localnetwork" | "tagged" | "command" | "version" | "sessiontype" => {
                Criterium::Unsupported(format!("{name} {arg}"))
            }
            _ => return Err(format!("unsupported `Match` criterion `{name}`")),
        };
        criteria.push(Criterion { negated, what });
    }
    if criteria.is_empty() {
        return Err("`Match` needs criteria, such as `host NAME` or `all`".to_string());
    }
    Ok(criteria)
}

/// Parses one option line of ours; `None` for a keyword deployer does not
/// use.
pub(crate) fn parse_option(
    keyword: &str,
    args: &[String],
    raw: &str,
) -> Result<Option<Opt>, String> {
    if let Some(option) = honoured(keyword) {
        return Ok(Some(Opt::First(
            option.name,
            option.read(keyword, args, raw)?,
        )));
    }
    let opt = match keyword {
        // `IdentityFile2` is an obsolete alias ssh still honours.
        "identityfile" | "identityfile2" => {
            Opt::IdentityFile(single("IdentityFile", args)?.to_string())
        }
        "proxyjump" => {
            if args.is_empty() {
                return Err("`ProxyJump` needs a value".to_string());
            }
            Opt::ProxyJump(parse_proxy_jump(raw).ok_or_else(|| {
                format!(
                    "`ProxyJump` must be `none` or `[user@]host[:port]` hops separated \
                     by commas, not `{raw}`"
                )
            })?)
        }
        "proxycommand" => {
            if args.is_empty() {
                return Err("`ProxyCommand` needs a value".to_string());
            }
            Opt::ProxyCommand(raw.to_string())
        }
        "certificatefile" => Opt::CertificateFile(single("CertificateFile", args)?.to_string()),
        "localforward" => Opt::Forward("LocalForward", args.to_vec()),
        "remoteforward" => Opt::Forward("RemoteForward", args.to_vec()),
        "dynamicforward" => Opt::Forward("DynamicForward", args.to_vec()),
        // The values of ssh's other options are checked by `check_values`
        // and not used.
        _ => return Ok(None),
    };
    Ok(Some(opt))
}

/// Parses the text of one file into items (`Include`s unresolved); the
/// keywords ssh accepts but does not support add to `warnings`.
pub(crate) fn parse_items(
    text: &str,
    source: &Path,
    warnings: &mut Vec<SshConfigWarning>,
) -> Result<Vec<Item>, SshConfigError> {
    let mut items = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let invalid = |message: String| SshConfigError::Invalid {
            path: source.to_path_buf(),
            line: number,
            message,
        };
        let Some((keyword, args, rest)) = split_line(raw).map_err(invalid)? else {
            continue;
        };
        let needs = required_env(&keyword, &args);
        let kind = match keyword.as_str() {
            "host" => {
                if args.is_empty() {
                    return Err(invalid("`Host` needs at least one pattern".to_string()));
                }
                if args.iter().any(String::is_empty) {
                    return Err(invalid("`Host` has an empty pattern".to_string()));
                }
                ItemKind::Host(
                    args.iter()
                        .map(|arg| match arg.strip_prefix('!') {
                            Some(p) => HostPattern {
                                negated: true,
                                pattern: p.to_string(),
                            },
                            None => HostPattern {
                                negated: false,
                                pattern: arg.clone(),
                            },
                        })
                        .collect(),
                )
            }
            "match" => ItemKind::Match(parse_match(&args).map_err(invalid)?),
            "include" => {
                if args.is_empty() {
                    return Err(invalid("`Include` needs a file name".to_string()));
                }
                ItemKind::Include(args, Vec::new())
            }
            _ => match parse_option(&keyword, &args, &rest)
                .and_then(|opt| {
                    if is_known_keyword(&keyword) && !rest.is_empty() {
                        check_values(&keyword, &args)?;
                    }
                    Ok(opt)
                })
                .map_err(invalid)?
            {
                Some(opt) => ItemKind::Set(opt),
                None if rest.is_empty() => {
                    return Err(invalid(format!(
                        "`{keyword}` needs a value (ssh refuses a keyword without one)"
                    )))
                }
                None if is_known_keyword(&keyword) => {
                    if UNSUPPORTED_KEYWORDS.contains(&keyword.as_str()) {
                        warnings.push(SshConfigWarning {
                            path: source.to_path_buf(),
                            line: number,
                            message: format!(
                                "`{keyword}` is not supported by OpenSSH; ignored, as ssh does"
                            ),
                        });
                    }
                    ItemKind::NeedsEnv(Vec::new())
                }
                None => ItemKind::Unknown(keyword),
            },
        };
        let mut push = |kind| {
            items.push(Item {
                kind,
                path: source.to_path_buf(),
                number,
            })
        };
        match kind {
            ItemKind::NeedsEnv(_) if needs.is_empty() => {}
            ItemKind::NeedsEnv(_) => push(ItemKind::NeedsEnv(needs)),
            kind => {
                push(kind);
                if !needs.is_empty() {
                    push(ItemKind::NeedsEnv(needs));
                }
            }
        }
    }
    Ok(items)
}

impl SshConfigFile {
    /// Parses the text of one (user) config file; `source` is only used to
    /// say where problems are.
    ///
    /// `Include` lines are kept unresolved (and ignored by
    /// [`resolve`](Self::resolve)); [`load`](Self::load) resolves them.
    ///
    /// # Errors
    ///
    /// [`SshConfigError::Invalid`] for a line ssh would reject: an option
    /// of ours with a bad value, a `Host` without patterns, a bad `Match`,
    /// an unterminated quote.
    pub fn parse(text: &str, source: &Path) -> Result<SshConfigFile, SshConfigError> {
        let mut warnings = Vec::new();
        Ok(SshConfigFile {
            files: vec![parse_items(text, source, &mut warnings)?],
            warnings,
        })
    }
}
