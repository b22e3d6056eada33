//! Snapshot handling: check a gateway's JPEG crop and re-encode it as a bounded thumbnail.
//!
//! Order matters, cheapest and safest first:
//! 1. byte size (`SNAPSHOT_TOO_LARGE`);
//! 2. the JPEG signature `FF D8 FF` (`SNAPSHOT_NOT_JPEG`);
//! 3. the headers only: declared width and height against the side limit, and the
//!    decoder's peak memory (`width × height × 3`, more for progressive JPEGs, see
//!    `jpeg_frame`) against the decode budget (`SNAPSHOT_TOO_BIG_DECODED`). This is the
//!    decompression-bomb defence: a few hundred bytes can declare 65535 × 65535 pixels
//!    (12 GiB of RGB), and nothing of that size is allocated because the pixels are never
//!    decoded;
//! 4. decoding with `image::Limits` set as well (a limits error is again
//!    `SNAPSHOT_TOO_BIG_DECODED`, any other error `SNAPSHOT_UNDECODABLE`);
//! 5. downscaling so the longest side is at most `thumbnail_side_px` (aspect kept, never
//!    enlarged) and re-encoding as JPEG at `thumbnail_quality`. The original is dropped.
//!
//! Decoding hostile bytes is third-party code; a panic in it is caught and reported as
//! `SNAPSHOT_UNDECODABLE`, so one crafted snapshot cannot fail a whole batch (which the
//! gateway would resend forever).

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};

use camtrail_model::ErrorCode;
use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat};

use super::jpeg_frame::{self, Frame};
use super::{EventRejection, ValidationLimits};

/// Every JPEG starts with SOI (`FF D8`) followed by the next marker's `FF`.
const JPEG_SIGNATURE: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// Check a snapshot and turn it into a JPEG thumbnail whose longest side is at most
/// `limits.thumbnail_side_px`. CPU-heavy (decode + resize + encode): call it off the
/// async runtime.
pub fn make_thumbnail(jpeg: &[u8], limits: &ValidationLimits) -> Result<Vec<u8>, EventRejection> {
    panic::catch_unwind(AssertUnwindSafe(|| thumbnail_unguarded(jpeg, limits))).unwrap_or_else(
        |_| {
            tracing::warn!("jpeg decoder panicked on a snapshot; rejected as undecodable");
            Err(undecodable("snapshot could not be decoded"))
        },
    )
}

/// [`make_thumbnail`] without the panic guard (the fuzz tests call this one, so a decoder
/// panic fails them instead of being hidden).
fn thumbnail_unguarded(jpeg: &[u8], limits: &ValidationLimits) -> Result<Vec<u8>, EventRejection> {
    if jpeg.len() > limits.max_snapshot_bytes {
        return Err(EventRejection::new(
            ErrorCode::SnapshotTooLarge,
            format!(
                "snapshot is {} bytes, limit {}",
                jpeg.len(),
                limits.max_snapshot_bytes
            ),
        ));
    }
    if !jpeg.starts_with(&JPEG_SIGNATURE)
        || !matches!(image::guess_format(jpeg), Ok(ImageFormat::Jpeg))
    {
        return Err(EventRejection::new(
            ErrorCode::SnapshotNotJpeg,
            "snapshot is not a jpeg (no ff d8 ff signature)",
        ));
    }
    // Parses the markers up to the frame header; no pixel memory yet.
    let decoder = JpegDecoder::new(Cursor::new(jpeg))
        .map_err(|error| undecodable(&format!("snapshot header is invalid: {}", detail(&error))))?;
    let frame = jpeg_frame::read_frame(jpeg).unwrap_or(Frame::WORST_CASE);
    check_dimensions(decoder.dimensions(), frame, limits)?;
    let image = decode(decoder, limits)?;
    encode_thumbnail(&image, limits)
}

/// Reject declared dimensions above the side limit, or a frame whose decoding would need
/// more than the decode budget, before decoding.
fn check_dimensions(
    (width, height): (u32, u32),
    frame: Frame,
    limits: &ValidationLimits,
) -> Result<(), EventRejection> {
    if width == 0 || height == 0 {
        return Err(undecodable(&format!(
            "snapshot declares {width}x{height} px"
        )));
    }
    let side = limits.max_snapshot_side_px;
    if width > side || height > side {
        return Err(EventRejection::new(
            ErrorCode::SnapshotTooBigDecoded,
            format!("snapshot is {width}x{height} px, limit {side}x{side}"),
        ));
    }
    let decode_bytes = frame.decode_bytes(width, height);
    if decode_bytes > limits.max_decode_bytes {
        return Err(EventRejection::new(
            ErrorCode::SnapshotTooBigDecoded,
            format!(
                "snapshot of {width}x{height} px needs {decode_bytes} bytes to decode, limit {}",
                limits.max_decode_bytes
            ),
        ));
    }
    Ok(())
}

/// Decode with `image`'s limits set, as `ImageReader::decode` does: the output buffer is
/// reserved against `max_alloc` before the decoder runs.
fn decode(
    mut decoder: JpegDecoder<Cursor<&[u8]>>,
    limits: &ValidationLimits,
) -> Result<DynamicImage, EventRejection> {
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(limits.max_snapshot_side_px);
    decode_limits.max_image_height = Some(limits.max_snapshot_side_px);
    decode_limits.max_alloc = Some(limits.max_decode_bytes);
    let result = decode_limits
        .reserve(decoder.total_bytes())
        .and_then(|()| decoder.set_limits(decode_limits))
        .and_then(|()| DynamicImage::from_decoder(decoder));
    result.map_err(|error| match error {
        ImageError::Limits(limit) => EventRejection::new(
            ErrorCode::SnapshotTooBigDecoded,
            format!("snapshot exceeds the decode limits: {}", detail(&limit)),
        ),
        other => undecodable(&format!(
            "snapshot could not be decoded: {}",
            detail(&other)
        )),
    })
}

/// Downscale (never enlarge) and re-encode as JPEG.
fn encode_thumbnail(
    image: &DynamicImage,
    limits: &ValidationLimits,
) -> Result<Vec<u8>, EventRejection> {
    let side = limits.thumbnail_side_px;
    let resized;
    let thumbnail = if image.width() > side || image.height() > side {
        // Integer area averaging: fast, and fine for a strong downscale.
        resized = image.thumbnail(side, side);
        &resized
    } else {
        image
    };
    let mut out = Vec::with_capacity(16 * 1024);
    let encoder = JpegEncoder::new_with_quality(&mut out, limits.thumbnail_quality);
    // Converts colour types the encoder lacks (e.g. RGBA, 16-bit) to RGB first.
    thumbnail.write_with_encoder(encoder).map_err(|error| {
        undecodable(&format!(
            "snapshot could not be re-encoded: {}",
            detail(&error)
        ))
    })?;
    Ok(out)
}

/// Longest decoder detail copied into a rejection message.
const MAX_DETAIL_CHARS: usize = 160;

/// A decoder error as a rejection detail: one lower-case line of bounded length (the
/// decoder's own text is capitalised and may end in a newline).
fn detail(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string().to_lowercase();
    let words: Vec<&str> = text.split_whitespace().collect();
    words.join(" ").chars().take(MAX_DETAIL_CHARS).collect()
}

fn undecodable(message: &str) -> EventRejection {
    EventRejection::new(ErrorCode::SnapshotUndecodable, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::fixtures::{bomb_jpeg, jpeg, png, sof0_offset};
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    fn code(result: Result<Vec<u8>, EventRejection>) -> ErrorCode {
        result.expect_err("must be rejected").code
    }

    fn decoded(thumbnail: &[u8]) -> DynamicImage {
        assert!(thumbnail.starts_with(&JPEG_SIGNATURE));
        image::load_from_memory_with_format(thumbnail, ImageFormat::Jpeg)
            .expect("thumbnail decodes")
    }

    #[test]
    fn large_snapshots_become_bounded_thumbnails_keeping_aspect() {
        let limits = ValidationLimits::default();
        let original = jpeg(1024, 512);
        let thumbnail = make_thumbnail(&original, &limits).expect("valid");
        let image = decoded(&thumbnail);
        assert_eq!((image.width(), image.height()), (256, 128));
        assert_ne!(thumbnail, original);
    }

    #[test]
    fn small_snapshots_are_reencoded_not_enlarged() {
        let thumbnail = make_thumbnail(&jpeg(40, 90), &ValidationLimits::default()).expect("valid");
        let image = decoded(&thumbnail);
        assert_eq!((image.width(), image.height()), (40, 90));
    }

    #[test]
    fn each_failure_has_its_code() {
        let limits = ValidationLimits::default();
        let too_large = ValidationLimits {
            max_snapshot_bytes: 100,
            ..limits.clone()
        };
        assert_eq!(
            code(make_thumbnail(&jpeg(64, 64), &too_large)),
            ErrorCode::SnapshotTooLarge
        );
        assert_eq!(
            code(make_thumbnail(&png(8, 8), &limits)),
            ErrorCode::SnapshotNotJpeg
        );
        assert_eq!(
            code(make_thumbnail(b"GIF89a....", &limits)),
            ErrorCode::SnapshotNotJpeg
        );
        assert_eq!(
            code(make_thumbnail(&[0xFF, 0xD8], &limits)),
            ErrorCode::SnapshotNotJpeg
        );
        let mut garbage = JPEG_SIGNATURE.to_vec();
        garbage.extend((0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        assert_eq!(
            code(make_thumbnail(&garbage, &limits)),
            ErrorCode::SnapshotUndecodable
        );
        let wide = jpeg(4100, 8);
        assert_eq!(
            code(make_thumbnail(&wide, &limits)),
            ErrorCode::SnapshotTooBigDecoded
        );
        let tight = ValidationLimits {
            max_decode_bytes: 64 * 64 * 3 - 1,
            ..limits
        };
        assert_eq!(
            code(make_thumbnail(&jpeg(64, 64), &tight)),
            ErrorCode::SnapshotTooBigDecoded
        );
    }

    #[test]
    fn decompression_bomb_is_refused_from_the_header() {
        let bomb = bomb_jpeg(60_000, 60_000);
        assert!(
            bomb.len() < 2048,
            "a bomb is small on the wire: {} bytes",
            bomb.len()
        );
        let started = Instant::now();
        let rejection = make_thumbnail(&bomb, &ValidationLimits::default()).expect_err("bomb");
        assert_eq!(rejection.code, ErrorCode::SnapshotTooBigDecoded);
        // This message comes from the header check only: the decoder never ran.
        let from_header_check = "snapshot is 60000x60000 px, limit 4096x4096";
        assert_eq!(rejection.message, from_header_check);
        // Decoding 60000² px would take minutes and 10 GB; the header check takes microseconds.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // Within the side limit but over the memory budget: same answer, same speed.
        let limits = ValidationLimits {
            max_decode_bytes: 1 << 20,
            ..Default::default()
        };
        let rejection = make_thumbnail(&bomb_jpeg(4000, 4000), &limits).expect_err("bomb");
        assert_eq!(rejection.code, ErrorCode::SnapshotTooBigDecoded);
        assert!(
            rejection
                .message
                .starts_with("snapshot of 4000x4000 px needs 48000000 bytes to decode")
        );
        // A progressive frame also pays for its coefficient buffer: 1000² px fit 4 MB as
        // baseline (3 MB), not as progressive (9 MB).
        let limits = ValidationLimits {
            max_decode_bytes: 4_000_000,
            ..Default::default()
        };
        let mut progressive = bomb_jpeg(1000, 1000);
        let baseline = make_thumbnail(&progressive, &limits).map_err(|rejection| rejection.code);
        assert_ne!(baseline, Err(ErrorCode::SnapshotTooBigDecoded));
        let sof = sof0_offset(&progressive);
        progressive[sof + 1] = 0xC2;
        let rejection = make_thumbnail(&progressive, &limits).expect_err("progressive bomb");
        assert_eq!(rejection.code, ErrorCode::SnapshotTooBigDecoded);
        assert!(
            rejection.message.contains("needs 9000000 bytes"),
            "{}",
            rejection.message
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Arbitrary bytes, with and without a JPEG signature: an answer, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..4096), signed in any::<bool>(),
        ) {
            let bytes = if signed { [&JPEG_SIGNATURE[..], &body].concat() } else { body };
            if let Ok(thumbnail) = thumbnail_unguarded(&bytes, &ValidationLimits::default()) {
                let image = decoded(&thumbnail);
                prop_assert!(image.width().max(image.height()) <= 256);
            }
        }

        /// A real JPEG with bytes overwritten and maybe truncated: reaches deep into the
        /// decoder. Any outcome but a panic or an oversized thumbnail is fine.
        #[test]
        fn corrupted_jpegs_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            keep in any::<prop::sample::Index>(),
        ) {
            let mut bytes = jpeg(300, 40);
            for (index, value) in edits {
                let at = index.index(bytes.len());
                bytes[at] = value;
            }
            let keep_len = keep.index(bytes.len()) + 1;
            bytes.truncate(keep_len.max(bytes.len() / 2));
            if let Ok(thumbnail) = thumbnail_unguarded(&bytes, &ValidationLimits::default()) {
                let image = decoded(&thumbnail);
                prop_assert!(image.width().max(image.height()) <= 256);
            }
        }
    }
}
