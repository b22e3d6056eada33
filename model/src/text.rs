//! Which characters free text from outside may hold.
//!
//! A plate, a subject key or a search reason is shown to people (map labels, the audit
//! review, a case file) and compared byte for byte. Control characters (Cc), format
//! characters (Cf: the bidirectional overrides U+202A–U+202E and isolates U+2066–U+2069,
//! zero-width spaces and joiners, the byte-order mark, invisible tags) and the line and
//! paragraph separators (Zl, Zp) either do not show or reorder what is around them, so a
//! value holding one can display differently from its bytes (a plate that reads as another
//! plate). They are refused wherever such text enters. The categories come from the
//! `unicode-properties` crate (Unicode's own tables), not from a hand-kept list.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// True for a character free text must not hold: a control, format, line-separator or
/// paragraph-separator character.
pub fn is_hidden(c: char) -> bool {
    // ASCII first: no table search for the characters most text is made of (the search
    // was 4% of the ingest node's CPU in the issue-14 profile).
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    c.is_control() || is_format(c)
}

/// True for a format, line-separator or paragraph-separator character: invisible, or
/// reordering what is around it. (Control characters are [`char::is_control`].)
pub fn is_format(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// True when `text` holds a character [`is_hidden`] refuses.
pub fn has_hidden(text: &str) -> bool {
    text.chars().any(is_hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_shortcut_agrees_with_the_tables() {
        for c in (0u8..128).map(char::from) {
            assert_eq!(is_hidden(c), c.is_control() || is_format(c), "{c:?}");
        }
    }

    #[test]
    fn bidi_overrides_isolates_and_invisibles_are_hidden() {
        let hidden = [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}', // embeddings, overrides
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}', // isolates
            '\u{200B}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{061C}', // ZWSP, ZWJ, marks
            '\u{FEFF}',
            '\u{00AD}',
            '\u{2060}',
            '\u{E0041}', // BOM, soft hyphen, tags
            '\u{2028}',
            '\u{2029}', // line and paragraph separators
            '\n',
            '\t',
            '\u{7F}',
            '\u{85}', // controls
        ];
        for c in hidden {
            assert!(is_hidden(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn plates_as_read_are_not_hidden() {
        for plate in [
            "粤S·12345",
            "粤Ｓ１２３４５",
            "WJ 01234",
            "粤B1234学",
            "京A\u{3000}12345",
        ] {
            assert!(!has_hidden(plate), "{plate}");
        }
        // A right-to-left override makes "粤S" + U+202E + "54321" display as "粤S12345".
        assert!(has_hidden("粤S\u{202E}54321"));
    }
}
