//! Text that came from a host, made safe to print on a terminal.
//!
//! Hosts are not trusted to write on the operator's terminal: a freeze
//! reason, a lock holder or a command's stderr could carry escape sequences
//! that retitle the window, clear the screen, move the cursor over earlier
//! lines, or reorder what is shown with bidirectional controls. Every
//! control character is therefore shown as a visible escape (`\x1b`,
//! `\u{202e}`...), and long remote text is clipped for error lines.
//!
//! Pure functions on strings; this module prints nothing. JSON output does
//! not go through here: serde escapes control characters itself and a
//! script must get the exact text.

use std::fmt::Write as _;

/// `s` with every control character (except newline and tab) replaced by a
/// visible escape; for multi-line text such as a command's stderr.
pub fn for_terminal(s: &str) -> String {
    escape(s, true)
}

/// `s` on one line: like [`for_terminal`], and newlines and tabs are
/// escaped as well (`\n`, `\t`), so that host text cannot start a line
/// that looks like deployer's own output.
pub fn one_line(s: &str) -> String {
    escape(s, false)
}

/// At most `max_chars` characters of `s`, followed by `… (N more
/// characters)` when some were cut. Cuts between characters, never inside
/// one.
pub fn clip(s: &str, max_chars: usize) -> String {
    let total = s.chars().count();
    if total <= max_chars {
        return s.to_string();
    }
    let kept: String = s.chars().take(max_chars).collect();
    format!("{kept}… ({} more characters)", total - max_chars)
}

/// Whether `c` must not reach a terminal as it is.
fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}' | '\u{80}'..='\u{9f}'
        // bidirectional embeddings, overrides and isolates ("Trojan Source")
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // bidirectional marks
        | '\u{200e}' | '\u{200f}' | '\u{61c}'
        // line and paragraph separators: newlines in some viewers
        | '\u{2028}' | '\u{2029}')
}

fn escape(s: &str, multi_line: bool) -> String {
    if !s.chars().any(is_unsafe) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' | '\t' if multi_line => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c <= '\u{7f}' && is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// `s` safe inside XML or HTML text and single- or double-quoted
/// attribute values: `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape_markup(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// What a terminal shows of `s`, the output of a program that redraws a
/// progress meter with carriage returns (dpkg's `(Reading database ...
/// 45%`, run by apt through a pseudo-terminal, whose lines all end in
/// `\r\n`): of each line, the text after its last `\r` (one at the end
/// of the line does not count). For apt and dpkg output quoted to the
/// operator, before [`for_terminal`] or [`one_line`] escapes what is left;
/// not for text whose every character matters (a reason, a name), where
/// a `\r` is shown escaped.
pub fn settle_progress(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\r') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let body = body.trim_end_matches('\r');
        out.push_str(body.rsplit('\r').next().unwrap_or_default());
        out.push_str(end);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of `apt-get install` (see tests/data/apt/README.md):
    /// dpkg's lines end in `\r\n`, its database meter redraws with `\r`.
    #[test]
    fn settled_apt_output_reads_as_the_terminal_showed_it() {
        let captured = include_str!("../tests/data/apt/hold-cycle-install.txt");
        assert!(captured.contains('\r'), "the capture lost its \\r");
        let settled = settle_progress(captured);
        assert!(!settled.contains('\r'), "{settled}");
        let lines: Vec<&str> = settled.lines().collect();
        assert_eq!(lines.len(), captured.lines().count());
        assert!(lines
            .contains(&"(Reading database ... 6713 files and directories currently installed.)"));
        assert!(lines.contains(&"Setting up fastpath (0.77~pr705-119) ..."));
        assert!(lines.contains(&"Reading package lists..."));
        assert!(!settled.contains("5%"), "{settled}");
    }

    #[test]
    fn settle_progress_keeps_what_a_terminal_keeps() {
        let cases = [
            ("plain\ntext", "plain\ntext"),
            ("line\r\nnext\r\n", "line\nnext\n"),
            ("10%\r50%\r100%\r\ndone", "100%\ndone"),
            ("a\rb\r", "b"),
            ("\r\r\n", "\n"),
            ("no end\rlast", "last"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(settle_progress(input), want, "settle_progress({input:?})");
        }
        // other control characters are left for the escaping that follows
        assert_eq!(
            for_terminal(&settle_progress("x\ry\x1b[2J\r\n")),
            "y\\x1b[2J\n"
        );
    }

    #[test]
    fn control_characters_become_visible() {
        // (input, for_terminal, one_line)
        let cases = [
            ("plain text", "plain text", "plain text"),
            ("día ✓ 日本", "día ✓ 日本", "día ✓ 日本"),
            ("a\nb\tc", "a\nb\tc", "a\\nb\\tc"),
            // an xterm title change, then a bell
            (
                "\x1b]0;pwned\x07",
                "\\x1b]0;pwned\\x07",
                "\\x1b]0;pwned\\x07",
            ),
            // clear the screen
            ("\x1b[2J", "\\x1b[2J", "\\x1b[2J"),
            // carriage return overwriting the line, backspace, delete
            ("ok\rFAIL", "ok\\rFAIL", "ok\\rFAIL"),
            ("ab\x08c\x7f", "ab\\x08c\\x7f", "ab\\x08c\\x7f"),
            ("nul\0", "nul\\x00", "nul\\x00"),
            // C1 controls, CSI among them
            ("\u{9b}31m", "\\u{9b}31m", "\\u{9b}31m"),
            ("\u{85}", "\\u{85}", "\\u{85}"),
            // bidirectional override and isolate
            (
                "fine\u{202e}gnp.exe",
                "fine\\u{202e}gnp.exe",
                "fine\\u{202e}gnp.exe",
            ),
            (
                "\u{2066}x\u{2069}",
                "\\u{2066}x\\u{2069}",
                "\\u{2066}x\\u{2069}",
            ),
            ("\u{202a}", "\\u{202a}", "\\u{202a}"),
            // a backslash stays as it is: it cannot act on a terminal
            ("C:\\x1b", "C:\\x1b", "C:\\x1b"),
        ];
        for (input, multi, single) in cases {
            assert_eq!(for_terminal(input), multi, "for_terminal({input:?})");
            assert_eq!(one_line(input), single, "one_line({input:?})");
        }
    }

    #[test]
    fn nothing_unsafe_survives() {
        let nasty: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        for out in [for_terminal(&nasty), one_line(&nasty)] {
            assert!(!out.contains('\x1b'));
            assert!(!out.contains('\u{9b}'));
            assert!(!out.contains('\r'));
            assert!(!out.chars().any(|c| c != '\n' && c != '\t' && is_unsafe(c)));
        }
        assert!(!one_line(&nasty).contains('\n'));
    }

    #[test]
    fn clip_says_how_much_was_cut() {
        let cases = [
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("0123456789abc", 10, "0123456789… (3 more characters)"),
            ("ééééé", 2, "éé… (3 more characters)"),
            ("", 0, ""),
        ];
        for (input, max, want) in cases {
            assert_eq!(clip(input, max), want, "clip({input:?}, {max})");
        }
    }
}
