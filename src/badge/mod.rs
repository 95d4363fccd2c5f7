//! One status badge as SVG, in the flat style of shields.io: a grey label
//! on the left (the package), a message on the right (what runs) on the
//! colour of its [`Meaning`]. Pure: text in, bytes out; the same badge
//! always gives the same bytes. The one exception is [`Badge::png`], which
//! needs fonts the caller loads at the edge ([`Fonts::system`]).
//!
//! The geometry is shields.io's flat style: 20 px high, corners rounded
//! with radius 3, 5 px of padding either side of each text, Verdana 11 px
//! (then Geneva, DejaVu Sans, any sans-serif) with a faint shadow one pixel
//! below. Box widths come from Verdana's real advance widths
//! (`verdana.rs`), and each text carries a `textLength` so a renderer with
//! another font still fits it to its box. Texts are drawn at ten times the
//! size under `scale(.1)`, which keeps every coordinate a whole number.
//!
//! It must not: number or randomise ids (they come from the content, so
//! many badges can share one HTML page and still be byte-identical across
//! runs), let a control character through, or write any file.

mod colour;
mod png;
mod verdana;

use std::borrow::Cow;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

pub use png::{Fonts, PngError};

/// The label's background colour.
pub const LABEL_COLOUR: &str = "#555";

/// The height of every badge, in pixels.
pub const HEIGHT: u32 = 20;

/// The fonts a badge asks for, in order.
pub const FONT_FAMILY: &str = "Verdana,Geneva,DejaVu Sans,sans-serif";

/// Padding either side of each text, in pixels.
const PADDING: u32 = 5;

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
    ///
    /// shields.io's palette, the blue and the red a shade darker so that
    /// every message reaches WCAG AA contrast (4.5) with its text colour.
    /// Severity reads red (broken) > orange (regression) > yellow (mixed);
    /// calm states are green, blue and ice blue; absent is grey.
    pub fn colour(self) -> &'static str {
        match self {
            Meaning::InStep => "#44cc11",
            Meaning::Pending => "#0071b9",
            Meaning::Regression => "#fe7d37",
            Meaning::Mixed => "#dfb317",
            Meaning::Broken => "#c9302c",
            Meaning::Frozen => "#9cd3f5",
            Meaning::Absent => "#9f9f9f",
        }
    }

    /// The message's text colour: white (`#fff`) or dark grey (`#333`),
    /// whichever has the higher WCAG contrast ratio against
    /// [`colour`](Meaning::colour).
    pub fn text_colour(self) -> &'static str {
        text_colour_on(self.colour())
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

/// The text colour (`#fff` or `#333`) with the higher WCAG contrast ratio
/// against `background` (`#rgb` or `#rrggbb`; anything else counts as
/// black).
pub fn text_colour_on(background: &str) -> &'static str {
    colour::text_on(colour::parse(background).unwrap_or([0; 3]))
}

/// The WCAG 2 contrast ratio of two colours (`#rgb` or `#rrggbb`), from 1
/// to 21; `None` if either is not such a colour.
pub fn contrast_ratio(a: &str, b: &str) -> Option<f64> {
    Some(colour::contrast([colour::parse(a)?, colour::parse(b)?]))
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

/// Where a badge's parts go, in pixels. `label_box + message_box` is the
/// badge's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The label's text width (odd, from Verdana's advances); 0 without a
    /// label.
    pub label_text: u32,
    /// The label's box: its text plus padding; 0 without a label.
    pub label_box: u32,
    /// The message's text width (odd).
    pub message_text: u32,
    /// The message's box: its text plus padding.
    pub message_box: u32,
}

impl Layout {
    /// The badge's width.
    pub fn width(&self) -> u32 {
        self.label_box + self.message_box
    }

    /// Where the label's text starts; it ends `label_text` further right.
    /// One pixel right of the padding, as shields.io draws it.
    pub fn label_text_x(&self) -> u32 {
        PADDING + 1
    }

    /// Where the message's text starts; it ends `message_text` further
    /// right. One pixel left of the padding when there is a label, as
    /// shields.io draws it.
    pub fn message_text_x(&self) -> u32 {
        if self.label_box == 0 {
            PADDING
        } else {
            self.label_box + PADDING - 1
        }
    }
}

/// Which texts to draw; the tests leave one out to see where it lands.
#[derive(Debug, Clone, Copy)]
struct Texts {
    label: bool,
    message: bool,
}

impl Badge {
    /// The label as drawn: control characters replaced.
    fn shown_label(&self) -> Cow<'_, str> {
        printable(&self.label)
    }

    /// The message as drawn: control characters replaced.
    fn shown_message(&self) -> Cow<'_, str> {
        printable(&self.message)
    }

    /// The widths of the badge's boxes and texts.
    pub fn layout(&self) -> Layout {
        let label = self.shown_label();
        let label_text = if label.is_empty() {
            0
        } else {
            verdana::text_width(&label)
        };
        let message_text = verdana::text_width(&self.shown_message());
        Layout {
            label_text,
            label_box: if label.is_empty() {
                0
            } else {
                label_text + 2 * PADDING
            },
            message_text,
            message_box: message_text + 2 * PADDING,
        }
    }

    /// The badge's width in pixels.
    pub fn width(&self) -> u32 {
        self.layout().width()
    }

    /// What a screen reader says: `label: message`.
    pub fn accessible_text(&self) -> String {
        let (label, message) = (self.shown_label(), self.shown_message());
        if label.is_empty() {
            message.into_owned()
        } else {
            format!("{label}: {message}")
        }
    }

    /// The prefix of the ids inside this badge's SVG: `b` and twelve hex
    /// digits of a SHA-256 of the label, message and meaning. Badges that
    /// differ get different ids, so they can sit in one HTML page; the same
    /// badge always gets the same ids (and identical defs, so sharing them
    /// is harmless).
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.label.as_bytes(),
            self.message.as_bytes(),
            self.meaning.name().as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let digest = h.finalize();
        let mut id = String::from("b");
        for byte in &digest[..6] {
            let _ = write!(id, "{byte:02x}");
        }
        id
    }

    /// The badge as a standalone SVG document (UTF-8). Identical badges
    /// give identical bytes.
    pub fn svg(&self) -> String {
        self.svg_with(Texts {
            label: true,
            message: true,
        })
    }

    /// The SVG, drawing only the texts `texts` asks for.
    fn svg_with(&self, texts: Texts) -> String {
        let layout = self.layout();
        let (width, lw) = (layout.width(), layout.label_box);
        let id = self.id();
        let accessible = self.accessible_text();
        let title = escape(&accessible);
        let mut s = String::with_capacity(1200);
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{HEIGHT}\" \
             role=\"img\" aria-label=\"{title}\"><title>{title}</title>\
             <linearGradient id=\"{id}-s\" x2=\"0\" y2=\"100%\">\
             <stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/>\
             <stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
             <clipPath id=\"{id}-r\"><rect width=\"{width}\" height=\"{HEIGHT}\" rx=\"3\" \
             fill=\"#fff\"/></clipPath><g clip-path=\"url(#{id}-r)\">"
        );
        if lw > 0 {
            let _ = write!(
                s,
                "<rect width=\"{lw}\" height=\"{HEIGHT}\" fill=\"{LABEL_COLOUR}\"/>"
            );
        }
        let _ = write!(
            s,
            "<rect x=\"{lw}\" width=\"{mw}\" height=\"{HEIGHT}\" fill=\"{colour}\"/>\
             <rect width=\"{width}\" height=\"{HEIGHT}\" fill=\"url(#{id}-s)\"/></g>\
             <g text-anchor=\"middle\" font-family=\"{FONT_FAMILY}\" \
             text-rendering=\"geometricPrecision\" font-size=\"110\">",
            mw = layout.message_box,
            colour = self.meaning.colour(),
        );
        let label = self.shown_label();
        if texts.label && !label.is_empty() {
            write_text(
                &mut s,
                &label,
                layout.label_text_x(),
                layout.label_text,
                text_colour_on(LABEL_COLOUR),
            );
        }
        let message = self.shown_message();
        if texts.message && !message.is_empty() {
            write_text(
                &mut s,
                &message,
                layout.message_text_x(),
                layout.message_text,
                self.meaning.text_colour(),
            );
        }
        s.push_str("</g></svg>");
        s
    }

    /// The badge as a PNG image, `scale` times its size in pixels (2.0 for
    /// sharp images on high-density screens), its text drawn with `fonts`.
    /// Identical badges give identical bytes with the same fonts.
    ///
    /// # Errors
    ///
    /// [`PngError::Scale`] when `scale` gives an empty image or one wider
    /// than 16384 px; the other variants only on a bug.
    pub fn png(&self, fonts: &Fonts, scale: f32) -> Result<Vec<u8>, PngError> {
        png::render(&self.svg(), fonts, scale)
    }
}

/// One text and its shadow, `width` pixels wide from `x`, centred there.
/// Coordinates are in tenths of a pixel (the group is drawn at 110 px
/// under `scale(.1)`): the baseline is at 14 px, the shadow's at 15 px.
fn write_text(s: &mut String, text: &str, x: u32, width: u32, fill: &str) {
    // Centre = x + width / 2; width is odd, so in tenths it is whole.
    let centre = 10 * x + 5 * width;
    let length = 10 * width;
    let text = escape(text);
    let shadow = colour::shadow_under(fill);
    let _ = write!(
        s,
        "<text aria-hidden=\"true\" x=\"{centre}\" y=\"150\" fill=\"{shadow}\" \
         fill-opacity=\".3\" transform=\"scale(.1)\" textLength=\"{length}\">{text}</text>\
         <text x=\"{centre}\" y=\"140\" transform=\"scale(.1)\" fill=\"{fill}\" \
         textLength=\"{length}\">{text}</text>"
    );
}

/// `s` with every character that must not reach an SVG replaced by U+FFFD:
/// control characters (C0, DEL, C1: XML forbids most, and the rest would
/// move the text) and the non-characters U+FFFE and U+FFFF (not XML).
fn printable(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() || c == '\u{fffe}' || c == '\u{ffff}';
    if s.chars().any(bad) {
        Cow::Owned(
            s.chars()
                .map(|c| if bad(c) { '\u{fffd}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// `s` safe inside XML text and quoted attributes.
fn escape(s: &str) -> Cow<'_, str> {
    crate::text::escape_markup(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn badge(label: &str, message: &str, meaning: Meaning) -> Badge {
        Badge {
            label: label.to_string(),
            message: message.to_string(),
            meaning,
        }
    }

    /// The SVG parsed as XML, so a test sees what a renderer sees.
    fn parsed(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}\n{svg}"))
    }

    /// The texts that are drawn (not the shadows): label then message.
    fn drawn_texts(svg: &str) -> Vec<String> {
        parsed(svg)
            .descendants()
            .filter(|n| n.has_tag_name("text") && n.attribute("aria-hidden").is_none())
            .map(|n| n.text().unwrap_or("").to_string())
            .collect()
    }

    fn attr<'a>(doc: &'a roxmltree::Document<'_>, tag: &str, name: &str) -> Vec<&'a str> {
        doc.descendants()
            .filter(|n| n.has_tag_name(tag))
            .filter_map(|n| n.attribute(name))
            .collect()
    }

    #[test]
    fn flat_style_geometry() {
        let b = badge("fastpath", "0.81~pr748-191", Meaning::InStep);
        let l = b.layout();
        // Text widths from Verdana 11 px (see verdana.rs), 5 px either side.
        assert_eq!((l.label_text, l.label_box), (45, 55));
        assert_eq!((l.message_text, l.message_box), (93, 103));
        assert_eq!(b.width(), 158);
        let svg = b.svg();
        let doc = parsed(&svg);
        let root = doc.root_element();
        assert_eq!(root.attribute("width"), Some("158"));
        assert_eq!(root.attribute("height"), Some("20"));
        assert_eq!(root.attribute("role"), Some("img"));
        assert_eq!(
            root.attribute("aria-label"),
            Some("fastpath: 0.81~pr748-191")
        );
        let titles = doc.descendants().filter(|n| n.has_tag_name("title"));
        assert_eq!(titles.count(), 1);
        assert_eq!(attr(&doc, "rect", "rx"), ["3"]);
        assert_eq!(attr(&doc, "rect", "fill")[1..3], ["#555", "#44cc11"]);
        // Label centred at 1 + 5 + 45/2 px, message at 55 - 1 + 5 + 93/2 px,
        // in tenths; shadows 1 px below the text.
        assert_eq!(attr(&doc, "text", "x"), ["285", "285", "1055", "1055"]);
        assert_eq!(attr(&doc, "text", "y"), ["150", "140", "150", "140"]);
        assert_eq!(
            attr(&doc, "text", "textLength"),
            ["450", "450", "930", "930"]
        );
        assert!(attr(&doc, "text", "transform")
            .iter()
            .all(|t| *t == "scale(.1)"));
        assert_eq!(attr(&doc, "g", "font-family"), [FONT_FAMILY]);
        assert_eq!(attr(&doc, "g", "font-size"), ["110"]);
        assert_eq!(attr(&doc, "text", "fill-opacity"), [".3", ".3"]);
        assert_eq!(drawn_texts(&svg), ["fastpath", "0.81~pr748-191"]);
    }

    #[test]
    fn long_labels_and_messages_make_wider_badges_and_widths_add_up() {
        let short = "1.0";
        let long = "2:1.2.3-4+deb12u1~bpo11+1.really.long.version.string+git20240101.abcdef0";
        let short_label = "ok";
        let long_label = "a-very-long-package-name-that-keeps-going-and-going";
        let mut widths = Vec::new();
        for label in [short_label, long_label] {
            for message in [short, long] {
                let b = badge(label, message, Meaning::Pending);
                let l = b.layout();
                assert_eq!(l.width(), l.label_box + l.message_box);
                assert_eq!(l.label_box, l.label_text + 10);
                assert_eq!(l.message_box, l.message_text + 10);
                let svg = b.svg();
                let doc = parsed(&svg);
                let width: u32 = doc
                    .root_element()
                    .attribute("width")
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(width, l.width(), "{label} | {message}");
                // The background rects tile the badge exactly.
                let rects: Vec<u32> = attr(&doc, "rect", "width")[1..3]
                    .iter()
                    .map(|w| w.parse().unwrap())
                    .collect();
                assert_eq!(rects, [l.label_box, l.message_box]);
                widths.push((label, message, l));
            }
        }
        let w = |label: &str, message: &str| {
            widths
                .iter()
                .find(|(l, m, _)| *l == label && *m == message)
                .unwrap()
                .2
        };
        assert!(w(short_label, long).message_box > w(short_label, short).message_box);
        assert!(w(long_label, short).label_box > w(short_label, short).label_box);
        assert!(w(long_label, long).width() > w(short_label, long).width());
        assert!(w(long_label, long).width() > w(long_label, short).width());
        // Real metrics, not a character count: as many `i`s as `m`s are far
        // narrower.
        let narrow = badge("x", "iiiiiiiiii", Meaning::InStep).layout();
        let wide = badge("x", "mmmmmmmmmm", Meaning::InStep).layout();
        assert!(3 * narrow.message_text < wide.message_text);
        // The long version: 72 characters, around 440 px.
        assert!((400..480).contains(&w(short_label, long).message_text));
    }

    #[test]
    fn empty_label_gives_a_message_only_badge() {
        let b = badge("", "1.0", Meaning::InStep);
        let l = b.layout();
        assert_eq!((l.label_box, l.width()), (0, l.message_box));
        let svg = b.svg();
        assert_eq!(drawn_texts(&svg), ["1.0"]);
        assert_eq!(
            parsed(&svg).root_element().attribute("aria-label"),
            Some("1.0")
        );
    }

    #[test]
    fn markup_in_texts_is_escaped_and_comes_back_intact() {
        for (label, message) in [
            ("a<b", "1&2"),
            ("\"quoted\"", "it's"),
            ("</text><script>alert(1)</script>", "&amp; \"'<>"),
            ("]]>", "<!-- x -->"),
        ] {
            let b = badge(label, message, Meaning::Regression);
            let svg = b.svg();
            assert!(!svg.contains("<script"), "{svg}");
            let doc = parsed(&svg);
            assert_eq!(drawn_texts(&svg), [label, message]);
            let accessible = format!("{label}: {message}");
            assert_eq!(
                doc.root_element().attribute("aria-label"),
                Some(&*accessible)
            );
            let title = doc.descendants().find(|n| n.has_tag_name("title")).unwrap();
            assert_eq!(title.text(), Some(&*accessible));
            // Nothing but the expected elements: no injected markup.
            let tags: std::collections::BTreeSet<&str> = doc
                .descendants()
                .filter(|n| n.is_element())
                .map(|n| n.tag_name().name())
                .collect();
            let want = [
                "clipPath",
                "g",
                "linearGradient",
                "rect",
                "stop",
                "svg",
                "text",
                "title",
            ];
            assert_eq!(tags.into_iter().collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn control_characters_never_reach_the_svg() {
        let b = badge(
            "pkg\u{1b}[31m",
            "1.0\n\u{7}\u{0}\u{85}\u{ffff}",
            Meaning::Broken,
        );
        let svg = b.svg();
        assert!(
            !svg.chars().any(|c| c.is_control() || c == '\u{ffff}'),
            "{svg:?}"
        );
        assert_eq!(
            drawn_texts(&svg),
            [
                "pkg\u{fffd}[31m",
                "1.0\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}"
            ]
        );
        // The replacement is measured like any other character.
        assert!(b.layout().message_text > badge("", "1.0", Meaning::Broken).layout().message_text);
    }

    #[test]
    fn colour_per_meaning() {
        for m in Meaning::ALL {
            let b = badge("pkg", "1.0", m);
            let svg = b.svg();
            let doc = parsed(&svg);
            let fills = attr(&doc, "rect", "fill");
            assert_eq!(fills[1..3], [LABEL_COLOUR, m.colour()], "{m:?}");
            let text_fills: Vec<&str> = doc
                .descendants()
                .filter(|n| n.has_tag_name("text") && n.attribute("aria-hidden").is_none())
                .filter_map(|n| n.attribute("fill"))
                .collect();
            assert_eq!(text_fills, ["#fff", m.text_colour()], "{m:?}");
        }
        assert_eq!(Meaning::Absent.colour(), "#9f9f9f", "absent is grey");
        assert_eq!(
            Meaning::InStep.colour(),
            "#44cc11",
            "in step is shields' green"
        );
    }

    #[test]
    fn meanings_have_distinct_colours_and_names() {
        let rgb = |m: Meaning| colour::parse(m.colour()).unwrap();
        for (i, a) in Meaning::ALL.iter().enumerate() {
            assert!(a.colour().len() == 7, "{a:?}: #rrggbb");
            for b in &Meaning::ALL[i + 1..] {
                let (x, y) = (rgb(*a), rgb(*b));
                let d2: i32 = (0..3)
                    .map(|k| (i32::from(x[k]) - i32::from(y[k])).pow(2))
                    .sum();
                assert!(d2 > 60 * 60, "{a:?} and {b:?} look alike");
                assert_ne!(a.name(), b.name());
                assert_ne!(a.legend(), b.legend());
            }
            let label = rgb(Meaning::Absent);
            assert_ne!(label, colour::parse(LABEL_COLOUR).unwrap());
        }
    }

    #[test]
    fn text_colour_has_the_better_contrast_and_reads_well() {
        let mut backgrounds: Vec<&str> = Meaning::ALL.iter().map(|m| m.colour()).collect();
        backgrounds.push(LABEL_COLOUR);
        for bg in backgrounds {
            let chosen = text_colour_on(bg);
            let other = if chosen == "#fff" { "#333" } else { "#fff" };
            assert!(chosen == "#fff" || chosen == "#333");
            let (c, o) = (
                contrast_ratio(bg, chosen).unwrap(),
                contrast_ratio(bg, other).unwrap(),
            );
            assert!(c >= o, "{bg}: {chosen} {c:.2} < {other} {o:.2}");
            // WCAG AA for normal text.
            assert!(c >= 4.5, "{bg}: {chosen} only {c:.2}");
        }
        assert_eq!(Meaning::Mixed.text_colour(), "#333");
        assert_eq!(Meaning::Pending.text_colour(), "#fff");
    }

    #[test]
    fn shadow_follows_the_text_colour() {
        let svg = badge("pkg", "1.0", Meaning::Frozen).svg();
        let doc = parsed(&svg);
        let fills: Vec<(&str, Option<&str>)> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| (n.attribute("fill").unwrap(), n.attribute("aria-hidden")))
            .collect();
        assert_eq!(
            fills,
            [
                ("#010101", Some("true")),
                ("#fff", None),
                ("#ccc", Some("true")),
                ("#333", None)
            ]
        );
    }

    #[test]
    fn identical_input_gives_identical_bytes() {
        let a = badge("fastpath", "0.81~pr748-191", Meaning::Mixed);
        assert_eq!(a.svg(), a.clone().svg());
        assert_eq!(
            a.svg(),
            badge("fastpath", "0.81~pr748-191", Meaning::Mixed).svg()
        );
        insta::assert_snapshot!(a.svg());
    }

    /// `badges/examples/MEANING.svg`, one badge per meaning for the README,
    /// are what the code draws today (`BLESS=1` rewrites them).
    #[test]
    fn examples_in_the_badges_folder_are_current() {
        let messages = [
            (Meaning::InStep, "0.81~pr748-191"),
            (Meaning::Pending, "0.81~pr748-190"),
            (Meaning::Regression, "0.82~pr750-3"),
            (Meaning::Mixed, "0.81~pr748-191 +2 others"),
            (Meaning::Broken, "0.80-1 half-configured"),
            (Meaning::Frozen, "0.79-2"),
            (Meaning::Absent, "not installed"),
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("badges/examples");
        for (meaning, message) in messages {
            let svg = badge("fastpath", message, meaning).svg();
            let path = dir.join(format!("{}.svg", meaning.name()));
            if std::env::var_os("BLESS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &svg).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == svg,
                "{} is stale: run with BLESS=1",
                path.display()
            );
        }
    }

    #[test]
    fn distinct_badges_get_distinct_ids() {
        let badges = [
            badge("a", "1", Meaning::InStep),
            badge("a", "1", Meaning::Pending),
            badge("a", "2", Meaning::InStep),
            badge("b", "1", Meaning::InStep),
            // The fields' boundaries count: "ab|c" is not "a|bc".
            badge("ab", "c", Meaning::InStep),
            badge("a", "bc", Meaning::InStep),
        ];
        let mut ids = std::collections::BTreeSet::new();
        for b in &badges {
            let svg = b.svg();
            let doc = parsed(&svg);
            let own = attr(&doc, "linearGradient", "id")[0].to_string();
            assert!(own.starts_with(&b.id()));
            assert_eq!(attr(&doc, "clipPath", "id"), [format!("{}-r", b.id())]);
            assert!(svg.contains(&format!("url(#{}-r)", b.id())));
            assert!(svg.contains(&format!("url(#{}-s)", b.id())));
            assert!(ids.insert(b.id()), "{b:?}");
        }
        assert_eq!(badges[0].id(), badge("a", "1", Meaning::InStep).id());
    }
}

/// The badges drawn by `resvg`: every text lands inside its own box.
#[cfg(test)]
mod drawn {
    use super::*;
    use resvg::tiny_skia::Pixmap;

    /// Columns (in badge pixels at `scale`) where `a` and `b` differ, and
    /// how many pixels differ.
    fn differing_columns(a: &Pixmap, b: &Pixmap) -> (Vec<u32>, usize) {
        let w = a.width();
        let mut cols = std::collections::BTreeSet::new();
        let mut n = 0;
        for (i, (p, q)) in a.pixels().iter().zip(b.pixels()).enumerate() {
            if p != q {
                cols.insert(i as u32 % w);
                n += 1;
            }
        }
        (cols.into_iter().collect(), n)
    }

    #[test]
    fn every_text_lies_inside_its_box() {
        let Some(fonts) = png::fonts_or_skip() else {
            return;
        };
        let scale = 2.0;
        let labels = ["a", "fastpath", "a-very-long-package-name-for-the-wall"];
        let messages = [
            "1",
            "0.81~pr748-191",
            "not installed",
            "2:1.2.3-4+deb12u1~bpo11+1.really.long.version.string",
            "<&\"'> WWWW mmmm",
        ];
        let mut i = 0;
        for label in labels {
            for message in messages {
                for meaning in Meaning::ALL {
                    i += 1;
                    let b = Badge {
                        label: label.into(),
                        message: message.into(),
                        meaning,
                    };
                    let l = b.layout();
                    let draw = |label, message| {
                        png::rasterise(&b.svg_with(Texts { label, message }), &fonts, scale)
                            .unwrap()
                    };
                    let (full, no_label, no_message) =
                        (draw(true, true), draw(false, true), draw(true, false));
                    assert_eq!(full.width(), (l.width() as f32 * scale) as u32);
                    let px = |x: u32| (x as f32 * scale) as u32;
                    let what = format!("#{i} {label:?} | {message:?} ({meaning:?}), {l:?}");

                    let (cols, n) = differing_columns(&full, &no_label);
                    assert!(n > 20, "label text not drawn: {what}");
                    // Inside the label box, and within a pixel of the text's
                    // own rectangle (textLength fits it there).
                    let (lo, hi) = (cols[0], *cols.last().unwrap());
                    assert!(hi < px(l.label_box), "label spills right: {hi}: {what}");
                    assert!(
                        lo + px(1) >= px(l.label_text_x()),
                        "label starts at {lo}: {what}"
                    );
                    let end = l.label_text_x() + l.label_text;
                    assert!(hi <= px(end + 1), "label ends at {hi}: {what}");
                    assert!(hi + px(3) >= px(end), "label too short, ends {hi}: {what}");

                    let (cols, n) = differing_columns(&full, &no_message);
                    assert!(n > 20, "message text not drawn: {what}");
                    let (lo, hi) = (cols[0], *cols.last().unwrap());
                    assert!(lo >= px(l.label_box), "message spills left: {lo}: {what}");
                    assert!(hi < px(l.width()), "message spills right: {hi}: {what}");
                    assert!(
                        lo + px(1) >= px(l.message_text_x()),
                        "message at {lo}: {what}"
                    );
                    let end = l.message_text_x() + l.message_text;
                    assert!(hi <= px(end + 1), "message ends at {hi}: {what}");
                    assert!(
                        hi + px(3) >= px(end),
                        "message too short, ends {hi}: {what}"
                    );
                }
            }
        }
    }
}
