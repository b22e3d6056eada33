//! Text for the pictures: an embedded subset of Noto Sans CJK SC (`fonts/`, SIL Open Font
//! License) rasterised with `ab_glyph` — Latin, digits and punctuation, the Chinese
//! characters plates carry (the 31 province abbreviations, 学 警 挂 港 澳 使 领 …) and the
//! 3,755 common hanzi of GB2312 level 1 (district and road names, reasons written in
//! Chinese; `fonts/SUBSET.txt`), so a plate such as `粤B·12345` prints as written, on any
//! machine, with no font installed.
//! Characters outside the subset are drawn as a box, so a label never silently loses one.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};

/// The embedded font file (also registered with `plotters` for the charts).
pub static FONT_BYTES: &[u8] = include_bytes!("../fonts/NotoSansSC-camtrail-subset.otf");

/// The parsed embedded font.
pub fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).expect("the embedded font parses"))
}

/// Pixel size of text drawn at `scale` (1: labels, 2: titles, 3: headlines).
pub fn px(scale: i64) -> f32 {
    match scale {
        ..=1 => 13.0,
        2 => 20.0,
        s => 10.0 * s as f32,
    }
}

/// Whether the embedded font has a glyph for `character`.
pub fn covers(character: char) -> bool {
    font().glyph_id(character) != GlyphId(0) || character == ' '
}

/// One positioned character of a laid-out line.
pub struct Placed {
    /// The character.
    pub character: char,
    /// Its pen position (left edge on the baseline), px from the line's start.
    pub x: f32,
    /// Its advance, px.
    pub advance: f32,
}

/// Lay `text` out on one line at `size` px: each character's position (with kerning), the
/// line's width, and its ascent and descent (positive), px.
pub fn layout(text: &str, size: f32) -> (Vec<Placed>, f32, f32, f32) {
    let scaled = font().as_scaled(PxScale::from(size));
    let mut placed = Vec::with_capacity(text.len());
    let mut x = 0.0;
    let mut previous: Option<GlyphId> = None;
    for character in text.chars() {
        let id = scaled.glyph_id(character);
        if let Some(before) = previous {
            x += scaled.kern(before, id);
        }
        let advance = if covers(character) {
            scaled.h_advance(id)
        } else {
            scaled.height() * 0.6
        };
        placed.push(Placed {
            character,
            x,
            advance,
        });
        x += advance;
        previous = Some(id);
    }
    (placed, x, scaled.ascent(), -scaled.descent())
}

/// Rasterise `character` at `size` px with its pen at (`x`, `baseline`), calling
/// `plot(x, y, coverage)`.
pub fn draw_char(
    character: char,
    x: f32,
    baseline: f32,
    size: f32,
    plot: &mut impl FnMut(i64, i64, f32),
) {
    if !covers(character) {
        // A box as tall as a capital, so the missing character is visible.
        let (left, top) = (x.round() as i64 + 1, (baseline - size * 0.7).round() as i64);
        let (width, height) = ((size * 0.45) as i64, (size * 0.7) as i64);
        for dx in 0..width {
            plot(left + dx, top, 1.0);
            plot(left + dx, top + height - 1, 1.0);
        }
        for dy in 0..height {
            plot(left, top + dy, 1.0);
            plot(left + width - 1, top + dy, 1.0);
        }
        return;
    }
    let glyph = font()
        .glyph_id(character)
        .with_scale_and_position(PxScale::from(size), point(x, baseline));
    if let Some(outline) = font().outline_glyph(glyph) {
        let bounds = outline.px_bounds();
        let (left, top) = (bounds.min.x as i64, bounds.min.y as i64);
        outline.draw(|gx, gy, coverage| plot(left + i64::from(gx), top + i64::from(gy), coverage));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_and_latin_are_covered() {
        for character in "粤京沪学警挂港澳使领·ABCxyz0123456789:-→福田区深南大道，。".chars()
        {
            assert!(covers(character), "{character}");
        }
        assert!(!covers('龍'), "outside the subset");
    }

    #[test]
    fn lines_grow_with_text_and_scale() {
        let (_, short, ascent, descent) = layout("12", px(1));
        let (_, long, _, _) = layout("12:34:56", px(1));
        let (_, big, _, _) = layout("12", px(2));
        assert!(short > 0.0 && long > short * 3.0 && big > short * 1.4);
        assert!(ascent > 8.0 && descent > 1.0);
    }
}
