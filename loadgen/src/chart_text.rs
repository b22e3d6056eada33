//! A plotters backend that draws text with `camtrail-render`'s font layout: plotters'
//! own `ab_glyph` text ignores each glyph's left side bearing (narrow letters such as `l`
//! and `t` land at the start of their cell: "answere d"), so the chart delegates every
//! drawing call to the bitmap backend except text, which it lays out itself (kerning and
//! bearings, the same code as the track map's labels).

use camtrail_render::font;
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

/// [`BitMapBackend`] with [`camtrail_render::font`] text.
pub struct TextFixed<'a>(pub BitMapBackend<'a>);

type Result<T, E> = std::result::Result<T, DrawingErrorKind<E>>;

impl<'a> DrawingBackend for TextFixed<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Self::ErrorType> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Self::ErrorType> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), Self::ErrorType> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Self::ErrorType> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Self::ErrorType> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Self::ErrorType> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Self::ErrorType> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Self::ErrorType> {
        self.0.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Self::ErrorType> {
        self.0.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), Self::ErrorType> {
        let (_, width, ascent, descent) = font::layout(text, style.size() as f32);
        Ok((width.ceil() as u32, (ascent + descent).ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), Self::ErrorType> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size() as f32;
        let (placed, width, ascent, descent) = font::layout(text, size);
        let anchor = style.anchor();
        let left = pos.0 as f32
            - match anchor.h_pos {
                HPos::Left => 0.0,
                HPos::Center => width / 2.0,
                HPos::Right => width,
            };
        let top = pos.1 as f32
            - match anchor.v_pos {
                VPos::Top => 0.0,
                VPos::Center => (ascent + descent) / 2.0,
                VPos::Bottom => ascent + descent,
            };
        let baseline = top + ascent;
        let mut failed = None;
        let mut plot = |x: i64, y: i64, coverage: f32| {
            if coverage > 0.02 && failed.is_none() {
                let point = (x as i32, y as i32);
                if let Err(error) = self
                    .0
                    .draw_pixel(point, color.mix(f64::from(coverage.min(1.0))))
                {
                    failed = Some(error);
                }
            }
        };
        for glyph in placed {
            font::draw_char(glyph.character, left + glyph.x, baseline, size, &mut plot);
        }
        failed.map_or(Ok(()), Err)
    }
}
