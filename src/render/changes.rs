//! The dashboard's "Last changes" section: the timeline of the last hours
//! (`deployer timeline`'s changes, `dashboard_changes` in deployer.ini),
//! newest first, written into the page after the matrix.
//!
//! Pure: it takes the changes already gathered and writes HTML. Every text
//! from a host (package names, versions, apt's command line, who asked) is
//! made one safe line ([`text::clipped_line`]) and HTML-escaped. It must
//! not decide the page's layout (that is `html`'s).

use std::fmt::Write as _;

use crate::text;
use crate::timeline::{By, Change, Event};

/// The most changes listed; older ones are counted, not listed.
pub const SHOWN: usize = 50;

/// What the section shows: the window and its changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastChanges {
    /// The window as configured (`6h`).
    pub window: String,
    /// The changes, oldest first (as [`crate::timeline::attribute`] gives
    /// them).
    pub events: Vec<Event>,
    /// Hosts whose logs could not be read, so whose changes are missing.
    pub unread: Vec<String>,
}

/// One line of host text, safe in HTML.
fn safe(s: &str) -> String {
    text::escape_markup(&text::clipped_line(s, text::REMOTE_TEXT_MAX)).into_owned()
}

/// Append the section for `changes` to `page`.
pub fn section(changes: &LastChanges, page: &mut String) {
    let _ = writeln!(
        page,
        "<section aria-labelledby=\"h-changes\" class=\"changes\">\n<h2 id=\"h-changes\">Last changes</h2>\n\
         <p class=\"meta\">Package changes on the hosts in the last {}, newest first, from dpkg's log, \
         apt's history and deployer's records; times are the hosts' clocks.</p>",
        safe(&changes.window)
    );
    if !changes.unread.is_empty() {
        let hosts: Vec<String> = changes.unread.iter().map(|h| safe(h)).collect();
        let _ = writeln!(
            page,
            "<p><strong>Not read:</strong> {} (their changes are missing)</p>",
            hosts.join(", ")
        );
    }
    if changes.events.is_empty() {
        page.push_str("<p>No package changes in this window.</p>\n</section>\n");
        return;
    }
    page.push_str("<ul class=\"hosts\">\n");
    for e in changes.events.iter().rev().take(SHOWN) {
        let to = match (&e.to, e.change) {
            (Some(v), _) => safe(v),
            (None, Some(Change::Purge)) => "purged".to_string(),
            (None, _) => "removed".to_string(),
        };
        let from = e.from.as_deref().map_or("(none)".to_string(), safe);
        let by = match &e.by {
            By::Deployer {
                action,
                who,
                attempt,
                ..
            } => format!(
                "{} by {} <span class=\"meta\">(attempt {})</span>",
                safe(action),
                safe(who),
                safe(attempt)
            ),
            By::Apt {
                commandline,
                requested_by,
            } => {
                let cmd = commandline.as_deref().map_or("apt".to_string(), safe);
                match requested_by {
                    Some(r) => format!("<code>{cmd}</code>, requested by {}", safe(r)),
                    None => format!("<code>{cmd}</code>"),
                }
            }
            By::Dpkg => "dpkg (unknown)".to_string(),
        };
        let hosts: Vec<String> = e.hosts.iter().map(|h| safe(h)).collect();
        let _ = writeln!(
            page,
            "<li><time datetime=\"{t}\">{t}</time> <span class=\"host\">{}</span> \
             <span class=\"meta\">({})</span> <strong>{}</strong> {from} → {to} · {by}</li>",
            hosts.join(", "),
            safe(&e.stage),
            safe(&e.package),
            t = safe(&e.time),
        );
    }
    page.push_str("</ul>\n");
    if changes.events.len() > SHOWN {
        let _ = writeln!(
            page,
            "<p class=\"meta\">and {} older changes (<code>deployer timeline --since {}</code> lists them)</p>",
            changes.events.len() - SHOWN,
            safe(&changes.window)
        );
    }
    page.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(package: &str, by: By) -> Event {
        Event {
            time: "2026-12-07T05:30:05+00:00".into(),
            epoch: 0,
            stage: "test".into(),
            hosts: vec!["test-1".into(), "<b>x</b>".into()],
            package: package.into(),
            from: Some("1.0".into()),
            to: None,
            change: Some(Change::Remove),
            unsettled: None,
            by,
            offset: 0,
        }
    }

    #[test]
    fn changes_are_listed_newest_first_and_escaped() {
        let changes = LastChanges {
            window: "6h".into(),
            events: vec![
                event("older", By::Dpkg),
                event(
                    "newer",
                    By::Apt {
                        commandline: Some("apt-get <evil> \u{1b}[2J".into()),
                        requested_by: Some("bob (1001)".into()),
                    },
                ),
            ],
            unread: vec!["prod-1".into()],
        };
        let mut page = String::new();
        section(&changes, &mut page);
        assert!(
            page.find("newer").unwrap() < page.find("older").unwrap(),
            "{page}"
        );
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"), "{page}");
        assert!(page.contains("apt-get &lt;evil&gt;"), "{page}");
        assert!(!page.contains('\u{1b}'), "{page}");
        assert!(page.contains("1.0 → removed"), "{page}");
        assert!(page.contains("requested by bob (1001)"), "{page}");
        assert!(page.contains("<strong>Not read:</strong> prod-1"), "{page}");
        assert!(page.contains("in the last 6h"), "{page}");
    }

    #[test]
    fn an_empty_window_says_so() {
        let mut page = String::new();
        section(&LastChanges::default(), &mut page);
        assert!(
            page.contains("No package changes in this window."),
            "{page}"
        );
    }
}
