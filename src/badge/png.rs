//! Badges as PNG images, for chat notifications and e-mail that cannot
//! show SVG: the badge's SVG rendered by `resvg` with fonts this machine
//! really has. [`Fonts`] is the edge: it scans the font directories once
//! (the caller keeps it for every badge); rendering itself reads nothing
//! but the font files already found.
//!
//! It must not: fall back silently to drawing no text (a machine without a
//! usable font is an error that says what to install), or guess a font
//! from the network.

use std::path::Path;
use std::sync::Arc;

use resvg::tiny_skia;
use resvg::usvg::{self, fontdb};

/// The families tried first, in the order the badge's SVG names them.
const PREFERRED: [&str; 2] = ["Verdana", "DejaVu Sans"];

/// Where `Fonts::system` looks, for the error message.
const SYSTEM_DIRS: &str = "the directories of /etc/fonts/fonts.conf, else /usr/share/fonts, \
                           /usr/local/share/fonts, ~/.fonts and ~/.local/share/fonts";

/// The largest PNG side we draw, in pixels.
const MAX_SIDE: f32 = 16_384.0;

/// Why a badge could not be drawn as PNG.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    /// No face to draw the text with.
    #[error(
        "no font to draw badge text with: none of Verdana, DejaVu Sans or another sans-serif \
         face is installed ({faces} font faces found in {searched})"
    )]
    NoFont {
        /// Where fonts were looked for.
        searched: String,
        /// How many faces (of any family) were found there.
        faces: usize,
    },
    /// The scale gives an empty or absurdly large image.
    #[error("cannot draw a badge {width} px wide at scale `{scale}`")]
    Scale {
        /// The badge's width in SVG pixels.
        width: u32,
        /// The scale asked for.
        scale: f32,
    },
    /// `resvg` could not read the SVG (a bug: `Badge::svg` made it).
    #[error("cannot render badge SVG: {0}")]
    Svg(String),
    /// The PNG encoder failed.
    #[error("cannot encode badge PNG: {0}")]
    Encode(String),
}

impl PngError {
    /// How to fix it, for a `note:` line.
    pub fn note(&self) -> &'static str {
        match self {
            PngError::NoFont { .. } => {
                "install a font, e.g. `apt-get install fonts-dejavu-core`, or leave out `--png`"
            }
            PngError::Scale { .. } => "use a scale such as 1 or 2",
            PngError::Svg(_) | PngError::Encode(_) => {
                "this is a bug in deployer; please report it with the badge's text"
            }
        }
    }
}

/// The fonts badges are drawn with: a font database that has at least one
/// face the badge's `font-family` list resolves to.
#[derive(Clone)]
pub struct Fonts {
    db: Arc<fontdb::Database>,
    family: String,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fonts")
            .field("faces", &self.db.len())
            .field("family", &self.family)
            .finish()
    }
}

impl Fonts {
    /// The machine's fonts (fontconfig's directories, or the usual ones).
    ///
    /// # Errors
    ///
    /// [`PngError::NoFont`] when none is Verdana, DejaVu Sans or another
    /// sans-serif face; its [`note`](PngError::note) says what to install.
    pub fn system() -> Result<Fonts, PngError> {
        let mut db = fontdb::Database::new();
        db.load_system_fonts();
        Fonts::choose(db, SYSTEM_DIRS.to_string())
    }

    /// The fonts in `dir` and below, for a machine whose fonts live
    /// elsewhere.
    ///
    /// # Errors
    ///
    /// [`PngError::NoFont`], as [`Fonts::system`].
    pub fn from_dir(dir: &Path) -> Result<Fonts, PngError> {
        let mut db = fontdb::Database::new();
        db.load_fonts_dir(dir);
        Fonts::choose(db, format!("`{}`", dir.display()))
    }

    /// The family that draws the text when the machine has no Verdana,
    /// e.g. `DejaVu Sans`.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// Pick the family the badge text will be drawn with, and make the SVG's
    /// last resort, `sans-serif`, mean it.
    fn choose(mut db: fontdb::Database, searched: String) -> Result<Fonts, PngError> {
        let has = |db: &fontdb::Database, family: &str| {
            db.faces().any(|f| {
                f.families
                    .iter()
                    .any(|(name, _)| name.eq_ignore_ascii_case(family))
            })
        };
        let configured = db.family_name(&fontdb::Family::SansSerif).to_string();
        let any_sans = || {
            db.faces()
                .flat_map(|f| f.families.iter().map(|(name, _)| name))
                .filter(|name| is_sans(name))
                .min()
                .cloned()
        };
        let family = PREFERRED
            .iter()
            .map(ToString::to_string)
            .chain(std::iter::once(configured))
            .find(|f| has(&db, f))
            .or_else(any_sans);
        let Some(family) = family else {
            return Err(PngError::NoFont {
                searched,
                faces: db.len(),
            });
        };
        db.set_sans_serif_family(family.clone());
        keep_in_memory(&mut db, &family);
        Ok(Fonts {
            db: Arc::new(db),
            family,
        })
    }
}

/// Read the regular faces of `family` into memory once, instead of from
/// disk for every text drawn (which is what a face known by its path
/// costs). A file that cannot be read stays known by its path.
fn keep_in_memory(db: &mut fontdb::Database, family: &str) {
    let regular = |f: &fontdb::FaceInfo| {
        f.style == fontdb::Style::Normal
            && f.weight == fontdb::Weight::NORMAL
            && f.stretch == fontdb::Stretch::Normal
            && f.families
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(family))
    };
    let mut paths: Vec<std::path::PathBuf> = db
        .faces()
        .filter(|f| regular(f))
        .filter_map(|f| match &f.source {
            fontdb::Source::File(path) => Some(path.clone()),
            _ => None,
        })
        .collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let ids: Vec<fontdb::ID> = db
            .faces()
            .filter(|f| matches!(&f.source, fontdb::Source::File(p) if *p == path))
            .map(|f| f.id)
            .collect();
        for id in ids {
            db.remove_face(id);
        }
        db.load_font_source(fontdb::Source::Binary(Arc::new(data)));
    }
}

/// Whether a family name says it is a proportional sans-serif face.
fn is_sans(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    (n.contains("sans") || n.contains("arial") || n.contains("helvetica")) && !n.contains("mono")
}

/// Render `svg` at `scale` into an RGBA pixmap.
pub(crate) fn rasterise(
    svg: &str,
    fonts: &Fonts,
    scale: f32,
) -> Result<tiny_skia::Pixmap, PngError> {
    let options = usvg::Options {
        fontdb: Arc::clone(&fonts.db),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| PngError::Svg(e.to_string()))?;
    let size = tree.size();
    let too_big = |side: f32| !(side * scale >= 1.0 && side * scale <= MAX_SIDE);
    if !scale.is_finite() || too_big(size.width()) || too_big(size.height()) {
        return Err(PngError::Scale {
            width: size.width() as u32,
            scale,
        });
    }
    let (w, h) = (
        (size.width() * scale).round() as u32,
        (size.height() * scale).round() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or(PngError::Scale {
        width: size.width() as u32,
        scale,
    })?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    Ok(pixmap)
}

/// Render `svg` at `scale` as PNG bytes.
pub(crate) fn render(svg: &str, fonts: &Fonts, scale: f32) -> Result<Vec<u8>, PngError> {
    rasterise(svg, fonts, scale)?
        .encode_png()
        .map_err(|e| PngError::Encode(e.to_string()))
}

/// The machine's fonts for a test, or `None` after printing why the test
/// skips; under `CI=true` a missing font fails the test instead
/// (`tests/run-all` installs fonts-dejavu-core).
#[cfg(test)]
pub(crate) fn fonts_or_skip() -> Option<Fonts> {
    match Fonts::system() {
        Ok(f) => Some(f),
        Err(e) => {
            crate::test_skip::skip(&format!("{e} (note: {})", e.note()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::badge::{Badge, Meaning};

    fn badge() -> Badge {
        Badge {
            label: "fastpath".into(),
            message: "0.81~pr748-191".into(),
            meaning: Meaning::Pending,
        }
    }

    #[test]
    fn png_has_the_badge_size_times_the_scale_and_is_deterministic() {
        let Some(fonts) = fonts_or_skip() else { return };
        let b = badge();
        for scale in [1.0, 2.0] {
            let png = b.png(&fonts, scale).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            // IHDR: width and height, big-endian, at bytes 16..24.
            let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
            let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
            assert_eq!(
                (w, h),
                ((b.width() as f32 * scale) as u32, (20.0 * scale) as u32)
            );
            assert_eq!(png, b.png(&fonts, scale).unwrap(), "scale {scale}");
        }
    }

    #[test]
    fn system_fonts_prefer_verdana_then_dejavu_sans() {
        let Some(fonts) = fonts_or_skip() else { return };
        let has = |family: &str| {
            fonts
                .db
                .faces()
                .any(|f| f.families.iter().any(|(n, _)| n == family))
        };
        let want = if has("Verdana") {
            "Verdana"
        } else if has("DejaVu Sans") {
            "DejaVu Sans"
        } else {
            return; // some other sans-serif face: checked by is_sans
        };
        assert_eq!(fonts.family(), want);
        assert_eq!(fonts.db.family_name(&fontdb::Family::SansSerif), want);
    }

    #[test]
    fn a_directory_without_fonts_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README"), "not a font").unwrap();
        let e = Fonts::from_dir(dir.path()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("Verdana, DejaVu Sans"), "{text}");
        assert!(
            text.contains(&format!("`{}`", dir.path().display())),
            "{text}"
        );
        assert!(text.contains("0 font faces"), "{text}");
        assert!(e.note().contains("apt-get install fonts-dejavu-core"));
        let system = PngError::NoFont {
            searched: SYSTEM_DIRS.into(),
            faces: 3,
        };
        assert!(system.to_string().contains("/usr/share/fonts"));
    }

    #[test]
    fn serif_or_monospace_faces_alone_are_not_enough() {
        for (name, sans) in [
            ("DejaVu Sans", true),
            ("Noto Sans CJK JP", true),
            ("Liberation Sans", true),
            ("Arial", true),
            ("DejaVu Sans Mono", false),
            ("DejaVu Serif", false),
            ("Liberation Mono", false),
        ] {
            assert_eq!(is_sans(name), sans, "{name}");
        }
    }

    #[test]
    fn absurd_scales_are_refused() {
        let Some(fonts) = fonts_or_skip() else { return };
        for scale in [0.0, -1.0, f32::NAN, f32::INFINITY, 1000.0] {
            let e = badge().png(&fonts, scale).unwrap_err();
            assert!(matches!(e, PngError::Scale { .. }), "{scale}: {e}");
        }
    }
}
