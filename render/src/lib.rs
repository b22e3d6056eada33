//! Drawing for camtrail's pictures: a [`Canvas`] (clipped pixels, lines, discs, rings,
//! labels) over the `image` crate, and text in an embedded subset of Noto Sans CJK SC
//! ([`font`], rasterised by `ab_glyph`), so PNGs need no font files on the machine and
//! plates print with their Chinese characters. The track map (`camtrail-query`) draws with
//! the canvas; the load chart (`camtrail-loadgen`) is drawn by `plotters` with the same
//! font.

pub mod canvas;
pub mod font;

pub use canvas::{Canvas, fit_width, text_size};
