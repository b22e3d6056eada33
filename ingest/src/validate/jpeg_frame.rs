//! What decoding a JPEG would cost, read from its frame header before any pixel is decoded.
//!
//! A baseline JPEG decodes a row of blocks at a time, so its cost is the output buffer,
//! `width × height × 3` bytes. A *progressive* JPEG first collects every DCT coefficient of
//! the whole image (zune-jpeg keeps one `i16` per pixel per component, see its
//! `mcu_prog.rs`), which is up to `width × height × components × 2` bytes more, and
//! `image::Limits::max_alloc` does not cover that buffer. So the decode budget counts it.

/// Markers that start a frame (SOF0–SOF15 except DHT `C4`, JPG `C8` and DAC `CC`).
fn is_start_of_frame(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// The parts of a frame header (SOFn) that decide decoding cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Frame {
    /// Whether the frame is progressive (SOF2, SOF6, SOF10, SOF14).
    pub progressive: bool,
    /// Number of colour components, 1–4 in practice.
    pub components: u8,
}

impl Frame {
    /// Assumed when the header cannot be walked (the decoder is more lenient than this
    /// walker): the most expensive frame there is.
    pub const WORST_CASE: Frame = Frame {
        progressive: true,
        components: 4,
    };

    /// Peak bytes the decoder needs for a `width × height` image with this frame.
    pub fn decode_bytes(self, width: u32, height: u32) -> u64 {
        let pixels = u64::from(width) * u64::from(height);
        let output = pixels * 3;
        if self.progressive {
            output + pixels * u64::from(self.components) * 2
        } else {
            output
        }
    }
}

/// Walk the marker segments from SOI to the first frame header. `None` when the bytes do
/// not follow the segment structure before a frame header is found.
pub(super) fn read_frame(jpeg: &[u8]) -> Option<Frame> {
    let mut at = 2; // after SOI (FF D8)
    loop {
        if *jpeg.get(at)? != 0xFF {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        match marker {
            // Fill byte: markers may be preceded by any number of FF.
            0xFF => at += 1,
            // Standalone markers without a length (TEM, RSTn).
            0x01 | 0xD0..=0xD7 => at += 2,
            // Start of scan or end of image before any frame: not a valid image.
            0xDA | 0xD9 => return None,
            _ => {
                let length =
                    usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
                if is_start_of_frame(marker) {
                    // Payload: length (2), precision (1), height (2), width (2), components (1).
                    let components = *jpeg.get(at + 9)?;
                    let progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
                    return Some(Frame {
                        progressive,
                        components,
                    });
                }
                if length < 2 {
                    return None;
                }
                at += 2 + length;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::fixtures::{bomb_jpeg, jpeg, sof0_offset};
    use proptest::prelude::*;

    #[test]
    fn reads_baseline_frames_and_prices_them_by_output() {
        let frame = read_frame(&jpeg(32, 16)).expect("frame");
        assert_eq!(
            frame,
            Frame {
                progressive: false,
                components: 3
            }
        );
        assert_eq!(frame.decode_bytes(32, 16), 32 * 16 * 3);
    }

    #[test]
    fn progressive_frames_also_pay_for_coefficients() {
        let mut bytes = bomb_jpeg(1000, 1000);
        let sof = sof0_offset(&bytes);
        bytes[sof + 1] = 0xC2;
        let frame = read_frame(&bytes).expect("frame");
        assert_eq!(
            frame,
            Frame {
                progressive: true,
                components: 3
            }
        );
        assert_eq!(frame.decode_bytes(1000, 1000), 9_000_000);
        assert!(Frame::WORST_CASE.decode_bytes(10, 10) >= frame.decode_bytes(10, 10));
    }

    #[test]
    fn malformed_segments_give_none() {
        assert_eq!(read_frame(&[0xFF, 0xD8]), None);
        assert_eq!(read_frame(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]), None);
        assert_eq!(read_frame(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00]), None);
        assert_eq!(read_frame(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08]), None);
        assert_eq!(read_frame(&[0xFF, 0xD8, 0x00]), None);
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let bytes = [&[0xFF, 0xD8, 0xFF][..], &body].concat();
            let _ = read_frame(&bytes);
        }
    }
}
