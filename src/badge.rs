//! One status badge as SVG, in the flat style of shields.io: a grey label
//! on the left (the package), a coloured message on the right (what runs),
//! and the meaning of the colour. Pure: text in, bytes out.
//!
//! SKELETON: the geometry, the width table and the PNG rendering are being
//! written; the API below is what the rest of the tool uses.

use std::fmt::Write as _;

/// What a badge's colour says. One colour per meaning, documented in the
/// legend (`Meaning::legend`), in this order of precedence when several
/// apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Meaning {
    /// Not installed, or no host answered.
    Absent,
    /// A broken dpkg state (half-configured, unpacked, ...).
    Broken,
    /// Newer than anything on the previous stage.
    Regression,
    /// The hosts of the stage do not all run the same.
    Mixed,
    /// The stage is frozen.
    Frozen,
    /// Newer than what the next stage runs: a rollout is pending.
    Pending,
    /// In step with the previous stage (or the first stage).
    InStep,
}

impl Meaning {
    /// Every meaning, in legend order.
    pub const ALL: [Meaning; 7] = [
        Meaning::InStep,
        Meaning::Pending,
        Meaning::Regression,
        Meaning::Mixed,
        Meaning::Broken,
        Meaning::Frozen,
        Meaning::Absent,
    ];

    /// The message's background colour, `#rrggbb`.
    pub fn colour(self) -> &'static str {
        match self {
            Meaning::InStep => "#4c1",
            Meaning::Pending => "#007ec6",
            Meaning::Regression => "#e05d44",
            Meaning::Mixed => "#fe7d37",
            Meaning::Broken => "#8b0000",
            Meaning::Frozen => "#9cd3f5",
            Meaning::Absent => "#9f9f9f",
        }
    }

    /// A short name, for CSS classes and JSON: `in-step`, `pending`...
    pub fn name(self) -> &'static str {
        match self {
            Meaning::InStep => "in-step",
            Meaning::Pending => "pending",
            Meaning::Regression => "regression",
            Meaning::Mixed => "mixed",
            Meaning::Broken => "broken",
            Meaning::Frozen => "frozen",
            Meaning::Absent => "absent",
        }
    }

    /// One line for the legend.
    pub fn legend(self) -> &'static str {
        match self {
            Meaning::InStep => "in step with the previous stage",
            Meaning::Pending => "newer than the next stage: a rollout is pending",
            Meaning::Regression => "newer than anything on the previous stage: a regression",
            Meaning::Mixed => "the hosts of the stage do not all run the same",
            Meaning::Broken => "broken dpkg state (half-configured, unpacked...)",
            Meaning::Frozen => "the stage is frozen",
            Meaning::Absent => "not installed, or unreachable",
        }
    }
}

/// One badge: `label | message`, coloured by its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    /// The left part (the package name).
    pub label: String,
    /// The right part (the version, or why there is none).
    pub message: String,
    /// What the colour says.
    pub meaning: Meaning,
}

impl Badge {
    /// The badge as a standalone SVG document (UTF-8). Identical badges
    /// give identical bytes.
    pub fn svg(&self) -> String {
        let w = |s: &str| 7 * s.chars().count() as u32 + 10;
        let (lw, mw) = (w(&self.label), w(&self.message));
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{t}\" height=\"20\" role=\"img\" aria-label=\"{l}: {m}\"><title>{l}: {m}</title><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/><rect x=\"{lw}\" width=\"{mw}\" height=\"20\" fill=\"{c}\"/><g fill=\"#fff\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\"><text x=\"5\" y=\"14\">{l}</text><text x=\"{mx}\" y=\"14\">{m}</text></g></svg>",
            t = lw + mw,
            l = escape(&self.label),
            m = escape(&self.message),
            c = self.meaning.colour(),
            mx = lw + 5,
        );
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
