//! A host's output cut into lines as it arrives, each line bounded.
//!
//! Hosts are not trusted to end their lines: a command printing a line
//! that never ends must not make deployer hold more and more of it. A
//! [`Lines`] keeps at most its bound of the line in progress, counts what
//! it leaves out, and says so at the end of the line. Pure: it prints
//! nothing and does not make text safe for a terminal (see
//! [`crate::text`]).

/// The most bytes of one line kept for `-v` output; the rest of a longer
/// line is counted, not kept.
pub const LINE_KEPT: usize = 4096;

/// Splits a stream into lines of at most a bound of bytes each.
#[derive(Debug)]
pub struct Lines {
    partial: Vec<u8>,
    max: usize,
    cut: u64,
}

impl Lines {
    /// A splitter keeping at most `max` bytes of each line.
    pub fn new(max: usize) -> Self {
        Lines {
            partial: Vec::new(),
            max,
            cut: 0,
        }
    }

    /// Take `bytes`; each line they complete goes to `line`, without its
    /// `\n`, decoded lossily, ending with `… (N more bytes)` when it was
    /// longer than the bound.
    pub fn feed(&mut self, bytes: &[u8], mut line: impl FnMut(String)) {
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            self.keep(&rest[..pos]);
            line(self.take());
            rest = &rest[pos + 1..];
        }
        self.keep(rest);
    }

    /// The line in progress when the stream ends, if any, as
    /// [`Lines::feed`] gives lines.
    pub fn finish(mut self) -> Option<String> {
        (!self.partial.is_empty() || self.cut > 0).then(|| self.take())
    }

    /// How many bytes of the line in progress are held.
    pub fn held(&self) -> usize {
        self.partial.len()
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max.saturating_sub(self.partial.len());
        let kept = bytes.len().min(room);
        self.partial.extend_from_slice(&bytes[..kept]);
        self.cut += (bytes.len() - kept) as u64;
    }

    fn take(&mut self) -> String {
        let mut text = String::from_utf8_lossy(&self.partial).into_owned();
        if self.cut > 0 {
            text.push_str(&format!("… ({} more bytes)", self.cut));
        }
        self.partial.clear();
        self.cut = 0;
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut lines = Lines::new(max);
        let mut out = Vec::new();
        for c in chunks {
            lines.feed(c, |l| out.push(l));
        }
        out.extend(lines.finish());
        out
    }

    #[test]
    fn lines_are_cut_where_they_end_whatever_the_chunks() {
        assert_eq!(split(&[b"a\nbc", b"d\n\ne"], 10), ["a", "bcd", "", "e"]);
        assert_eq!(split(&[b"a\n"], 10), ["a"]);
        assert_eq!(split(&[b""], 10), Vec::<String>::new());
        assert_eq!(
            split(&[b"0123", b"456789", b"ab\nz\n"], 4),
            ["0123… (8 more bytes)", "z"]
        );
    }

    #[test]
    fn a_line_that_never_ends_holds_no_more_than_the_bound() {
        let mut lines = Lines::new(LINE_KEPT);
        let chunk = vec![b'x'; 64 * 1024];
        let mut seen = 0;
        // 64 MiB without a newline
        for _ in 0..1024 {
            lines.feed(&chunk, |_| seen += 1);
            assert!(lines.held() <= LINE_KEPT, "{}", lines.held());
        }
        assert_eq!(seen, 0);
        let last = lines.finish().unwrap();
        assert!(last.starts_with(&"x".repeat(LINE_KEPT)), "kept the start");
        let more = (1024 * 64 * 1024 - LINE_KEPT).to_string();
        assert!(
            last.ends_with(&format!("… ({more} more bytes)")),
            "{}",
            &last[LINE_KEPT..]
        );
        assert_eq!(
            last.len(),
            LINE_KEPT + format!("… ({more} more bytes)").len()
        );
    }
}
