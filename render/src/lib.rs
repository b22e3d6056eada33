//! Drawing for camtrail's pictures, with nothing but the `image` crate: a [`Canvas`]
//! (clipped pixels, lines, discs, rings, labels) and a 5×7 bitmap [`font`], so PNGs need no
//! font files. The track map (`camtrail-query`) and the load chart (`camtrail-loadgen`) draw
//! with it; neither needs the other's stack.

pub mod canvas;
pub mod font;

pub use canvas::{Canvas, text_size};
