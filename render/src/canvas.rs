//! Drawing primitives on an RGB image: clipped pixels, lines, discs, rings and
//! anti-aliased text in the embedded font ([`font`]). Coordinates are `f64` pixels; everything outside the image is ignored.

use image::{Rgb, RgbImage};

use crate::font;

/// An RGB image being drawn on.
pub struct Canvas {
    /// The pixels.
    pub image: RgbImage,
}

impl Canvas {
    /// A `width`×`height` canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb<u8>) -> Self {
        Self {
            image: RgbImage::from_pixel(width, height, background),
        }
    }

    /// Set one pixel (clipped).
    pub fn put(&mut self, x: i64, y: i64, color: Rgb<u8>) {
        if x >= 0
            && y >= 0
            && x < i64::from(self.image.width())
            && y < i64::from(self.image.height())
        {
            self.image.put_pixel(x as u32, y as u32, color);
        }
    }

    /// Blend `color` over one pixel with opacity `alpha` (0–1).
    pub fn blend(&mut self, x: i64, y: i64, color: Rgb<u8>, alpha: f32) {
        if x < 0
            || y < 0
            || x >= i64::from(self.image.width())
            || y >= i64::from(self.image.height())
        {
            return;
        }
        let pixel = self.image.get_pixel_mut(x as u32, y as u32);
        for channel in 0..3 {
            let under = f32::from(pixel.0[channel]);
            let over = f32::from(color.0[channel]);
            pixel.0[channel] = (under + (over - under) * alpha).round() as u8;
        }
    }

    /// A filled rectangle.
    pub fn fill_rect(&mut self, x: i64, y: i64, width: i64, height: i64, color: Rgb<u8>) {
        for yy in y..y + height {
            for xx in x..x + width {
                self.put(xx, yy, color);
            }
        }
    }

    /// A line `thickness` pixels wide; with `dash` (on, off) in pixels, a dashed one.
    pub fn line(
        &mut self,
        from: (f64, f64),
        to: (f64, f64),
        thickness: f64,
        color: Rgb<u8>,
        dash: Option<(f64, f64)>,
    ) {
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        let length = dx.hypot(dy);
        let steps = length.ceil().max(1.0) as usize;
        let radius = (thickness / 2.0).max(0.5);
        for step in 0..=steps {
            let t = step as f64 / steps as f64;
            if let Some((on, off)) = dash
                && (t * length) % (on + off) > on
            {
                continue;
            }
            self.disc((from.0 + dx * t, from.1 + dy * t), radius, color);
        }
    }

    /// A filled disc.
    pub fn disc(&mut self, center: (f64, f64), radius: f64, color: Rgb<u8>) {
        let r = radius.ceil() as i64;
        let (cx, cy) = (center.0.round() as i64, center.1.round() as i64);
        for y in -r..=r {
            for x in -r..=r {
                if ((x * x + y * y) as f64) <= radius * radius + 0.25 {
                    self.put(cx + x, cy + y, color);
                }
            }
        }
    }

    /// A ring (circle outline) `width` pixels wide.
    pub fn ring(&mut self, center: (f64, f64), radius: f64, width: f64, color: Rgb<u8>) {
        let r = (radius + width).ceil() as i64;
        let (cx, cy) = (center.0.round() as i64, center.1.round() as i64);
        for y in -r..=r {
            for x in -r..=r {
                let d = ((x * x + y * y) as f64).sqrt();
                if d >= radius - width / 2.0 && d <= radius + width / 2.0 {
                    self.put(cx + x, cy + y, color);
                }
            }
        }
    }

    /// Text with its top-left corner at `at` (the top of the line's ascent), in the
    /// embedded font at `scale` ([`font::px`]), anti-aliased.
    pub fn text(&mut self, at: (i64, i64), text: &str, scale: i64, color: Rgb<u8>) {
        let size = font::px(scale);
        let (placed, _, ascent, _) = font::layout(text, size);
        let baseline = at.1 as f32 + ascent;
        let mut plot = |x: i64, y: i64, coverage: f32| {
            if coverage > 0.02 {
                self.blend(x, y, color, coverage.min(1.0));
            }
        };
        for glyph in placed {
            font::draw_char(
                glyph.character,
                at.0 as f32 + glyph.x,
                baseline,
                size,
                &mut plot,
            );
        }
    }

    /// Text on a filled box (a label readable over the map).
    pub fn label(&mut self, at: (i64, i64), text: &str, scale: i64, color: Rgb<u8>, fill: Rgb<u8>) {
        let (width, height) = text_size(text, scale);
        self.fill_rect(at.0 - 2, at.1 - 1, width + 4, height + 2, fill);
        self.text(at, text, scale, color);
    }
}

/// `text` cut (with an ellipsis) to fit `max_width` px at `scale`.
pub fn fit_width(text: &str, scale: i64, max_width: i64) -> String {
    if text_size(text, scale).0 <= max_width {
        return text.to_string();
    }
    let mut cut: String = text.to_string();
    while !cut.is_empty() {
        cut.pop();
        let candidate = format!("{}…", cut.trim_end());
        if text_size(&candidate, scale).0 <= max_width {
            return candidate;
        }
    }
    String::new()
}

/// Width and height of `text` drawn at `scale` (height: ascent + descent), px.
pub fn text_size(text: &str, scale: i64) -> (i64, i64) {
    let (_, width, ascent, descent) = font::layout(text, font::px(scale));
    (width.ceil() as i64, (ascent + descent).ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
    const BLACK: Rgb<u8> = Rgb([0, 0, 0]);

    fn ink(canvas: &Canvas) -> usize {
        canvas.image.pixels().filter(|p| **p != WHITE).count()
    }

    #[test]
    fn drawing_outside_the_image_is_clipped_not_a_panic() {
        let mut canvas = Canvas::new(20, 20, WHITE);
        canvas.line((-50.0, -50.0), (100.0, 100.0), 3.0, BLACK, None);
        canvas.disc((25.0, 25.0), 10.0, BLACK);
        canvas.text((15, 15), "OUTSIDE", 2, BLACK);
        assert!(ink(&canvas) > 0);
    }

    #[test]
    fn dashed_lines_have_less_ink_than_solid_ones() {
        let mut solid = Canvas::new(100, 10, WHITE);
        solid.line((0.0, 5.0), (99.0, 5.0), 1.0, BLACK, None);
        let mut dashed = Canvas::new(100, 10, WHITE);
        dashed.line((0.0, 5.0), (99.0, 5.0), 1.0, BLACK, Some((4.0, 4.0)));
        assert!(ink(&dashed) < ink(&solid));
        assert!(ink(&dashed) > ink(&solid) / 3);
    }

    #[test]
    fn long_text_is_cut_to_fit() {
        let reason = "事由：跟踪一辆在福田区多次出现的车辆，核实其行驶路线和停留地点";
        let fitted = fit_width(reason, 1, 200);
        assert!(text_size(&fitted, 1).0 <= 200);
        assert!(fitted.ends_with('…') && fitted.len() < reason.len());
        assert_eq!(fit_width("short", 1, 200), "short");
    }

    #[test]
    fn text_size_matches_what_is_drawn() {
        let mut canvas = Canvas::new(200, 40, WHITE);
        canvas.text((0, 0), "12:34", 2, BLACK);
        let (width, height) = text_size("12:34", 2);
        let inked: Vec<(i64, i64)> = canvas
            .image
            .enumerate_pixels()
            .filter(|(_, _, p)| **p != WHITE)
            .map(|(x, y, _)| (i64::from(x), i64::from(y)))
            .collect();
        let right = inked.iter().map(|p| p.0).max().expect("ink");
        let bottom = inked.iter().map(|p| p.1).max().expect("ink");
        assert!(right <= width && right > width / 2, "{right} of {width}");
        assert!(bottom <= height, "{bottom} of {height}");
        assert_eq!(height, text_size("粤B", 2).1, "one line height per scale");
    }
}
