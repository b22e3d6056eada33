//! Synthetic JPEG snapshots: a coloured box on a grey road with a plate-like stripe for
//! vehicles, a plain upright box for persons. Nothing identifying — no faces, no text.
//!
//! Encoding a JPEG costs far more than generating an event, so [`SnapshotCache`] encodes one
//! image per (class, colour) and shares it between events.

use std::io::Cursor;
use std::sync::Arc;

use camtrail_model::ObjectClass;
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

/// Smallest snapshot side, px.
pub const MIN_SNAPSHOT_PX: u32 = 16;
/// Largest snapshot side, px (the ingest node accepts up to 4096).
pub const MAX_SNAPSHOT_PX: u32 = 4096;

/// RGB of a proto `VehicleColor` number (0 and unknown numbers: mid grey).
pub fn color_rgb(color: u8) -> Rgb<u8> {
    Rgb(match color {
        1 => [235, 235, 235],
        2 => [25, 25, 28],
        3 => [180, 184, 190],
        4 => [110, 112, 116],
        5 => [190, 30, 35],
        6 => [30, 70, 170],
        7 => [235, 200, 40],
        8 => [40, 140, 60],
        9 => [120, 80, 45],
        _ => [140, 120, 150],
    })
}

/// Encode one snapshot `size_px` wide (¾ as high) as JPEG.
pub fn render_snapshot(
    size_px: u32,
    class: ObjectClass,
    color: u8,
) -> Result<Vec<u8>, image::ImageError> {
    let width = size_px.clamp(MIN_SNAPSHOT_PX, MAX_SNAPSHOT_PX);
    let height = (width * 3 / 4).max(MIN_SNAPSHOT_PX);
    let mut image = RgbImage::from_pixel(width, height, Rgb([96, 98, 100]));
    let body = color_rgb(color);
    match class {
        ObjectClass::Vehicle => {
            fill(
                &mut image,
                (width / 8, height / 5),
                (width * 7 / 8, height * 9 / 10),
                body,
            );
            let stripe_top = height * 7 / 10;
            let (left, right) = (width * 2 / 5, width * 3 / 5);
            fill(
                &mut image,
                (left, stripe_top),
                (right, stripe_top + height / 12 + 1),
                Rgb([30, 80, 190]),
            );
            // Plate-like marks: white bars, not characters.
            let bar = ((right - left) / 9).max(1);
            for k in 0..4 {
                let x = left + bar * (2 * k + 1);
                fill(
                    &mut image,
                    (x, stripe_top + 1),
                    (x + bar / 2 + 1, stripe_top + height / 12),
                    Rgb([240, 240, 240]),
                );
            }
        }
        ObjectClass::Person | ObjectClass::NonMotor => {
            fill(
                &mut image,
                (width * 2 / 5, height / 8),
                (width * 3 / 5, height * 15 / 16),
                body,
            );
        }
    }
    let mut jpeg = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut jpeg, 75).encode_image(&image)?;
    Ok(jpeg.into_inner())
}

/// Fill the rectangle [from, to) clipped to the image.
fn fill(image: &mut RgbImage, from: (u32, u32), to: (u32, u32), color: Rgb<u8>) {
    for y in from.1..to.1.min(image.height()) {
        for x in from.0..to.0.min(image.width()) {
            image.put_pixel(x, y, color);
        }
    }
}

/// One encoded snapshot per (class, colour), made on first use.
#[derive(Debug, Clone)]
pub struct SnapshotCache {
    size_px: u32,
    images: Vec<Option<Arc<[u8]>>>,
}

impl SnapshotCache {
    /// An empty cache for snapshots `size_px` wide.
    pub fn new(size_px: u32) -> Self {
        Self {
            size_px,
            images: vec![None; 3 * 16],
        }
    }

    /// The snapshot for a class and colour; `None` if encoding failed.
    pub fn get(&mut self, class: ObjectClass, color: u8) -> Option<Arc<[u8]>> {
        let slot = usize::from(class.code().saturating_sub(1) % 3) * 16 + usize::from(color % 16);
        if self.images[slot].is_none() {
            let jpeg = render_snapshot(self.size_px, class, color).ok()?;
            self.images[slot] = Some(Arc::from(jpeg));
        }
        self.images[slot].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_decode_at_the_requested_size() {
        let jpeg = render_snapshot(320, ObjectClass::Vehicle, 5).expect("encodes");
        let decoded = image::load_from_memory(&jpeg).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (320, 240));
        let mut cache = SnapshotCache::new(64);
        let first = cache.get(ObjectClass::Person, 2).expect("encodes");
        let second = cache.get(ObjectClass::Person, 2).expect("cached");
        assert!(Arc::ptr_eq(&first, &second));
    }
}
