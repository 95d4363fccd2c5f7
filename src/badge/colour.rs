//! Which text colour reads best on a badge's background: WCAG 2 relative
//! luminance and contrast ratio. Pure arithmetic on `#rgb` / `#rrggbb`
//! strings; it knows nothing of meanings or SVG.

/// Light text, for dark backgrounds.
pub(crate) const LIGHT_TEXT: &str = "#fff";
/// Dark text, for light backgrounds.
pub(crate) const DARK_TEXT: &str = "#333";

/// `#rgb` or `#rrggbb` as three bytes, or `None` for anything else.
pub(crate) fn parse(hex: &str) -> Option<[u8; 3]> {
    let digits = hex.strip_prefix('#')?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |s: &str| u8::from_str_radix(s, 16).ok();
    match digits.len() {
        3 => {
            let mut out = [0; 3];
            for (o, i) in out.iter_mut().zip(0..3) {
                *o = byte(&digits[i..=i])? * 17;
            }
            Some(out)
        }
        6 => Some([
            byte(&digits[0..2])?,
            byte(&digits[2..4])?,
            byte(&digits[4..6])?,
        ]),
        _ => None,
    }
}

/// WCAG 2 relative luminance of an sRGB colour, from 0 (black) to 1
/// (white).
pub(crate) fn luminance([r, g, b]: [u8; 3]) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

/// WCAG 2 contrast ratio of two colours, from 1 (none) to 21 (black on
/// white). Order does not matter.
pub(crate) fn contrast([a, b]: [[u8; 3]; 2]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la >= lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// The text colour with the higher contrast against `background`
/// ([`LIGHT_TEXT`] on a tie).
pub(crate) fn text_on(background: [u8; 3]) -> &'static str {
    let light = contrast([background, parse(LIGHT_TEXT).unwrap_or([255; 3])]);
    let dark = contrast([background, parse(DARK_TEXT).unwrap_or([0x33; 3])]);
    if light >= dark {
        LIGHT_TEXT
    } else {
        DARK_TEXT
    }
}

/// The shadow under text of colour `text`: near-black under light text,
/// light grey under dark text (which would otherwise look smudged).
pub(crate) fn shadow_under(text: &str) -> &'static str {
    if text == DARK_TEXT {
        "#ccc"
    } else {
        "#010101"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_long_forms_only() {
        assert_eq!(parse("#4c1"), Some([0x44, 0xcc, 0x11]));
        assert_eq!(parse("#44cc11"), Some([0x44, 0xcc, 0x11]));
        assert_eq!(parse("#FFF"), Some([255, 255, 255]));
        for bad in ["", "#", "4c1", "#4c", "#44cc1", "#ggg", "#+1f"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn wcag_reference_values() {
        assert!((luminance([255; 3]) - 1.0).abs() < 1e-9);
        assert!(luminance([0; 3]).abs() < 1e-12);
        assert!((contrast([[0; 3], [255; 3]]) - 21.0).abs() < 1e-9);
        assert!((contrast([[255; 3], [255; 3]]) - 1.0).abs() < 1e-9);
        // #777 on white is the classic "just below 4.5" grey.
        let c = contrast([[0x77; 3], [255; 3]]);
        assert!((4.47..4.49).contains(&c), "{c}");
    }

    #[test]
    fn text_on_picks_the_higher_contrast() {
        assert_eq!(text_on([0; 3]), LIGHT_TEXT);
        assert_eq!(text_on([0x55; 3]), LIGHT_TEXT);
        assert_eq!(text_on([255; 3]), DARK_TEXT);
        assert_eq!(text_on([0xdf, 0xb3, 0x17]), DARK_TEXT);
    }
}
