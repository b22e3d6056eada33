//! Test fixtures shared by the validation tests: a two-gateway registry, a valid event and
//! in-memory images (JPEG, PNG, and a JPEG whose header lies about its size).

use std::io::Cursor;
use std::sync::Arc;

use camtrail_model::{Camera, CameraRegistry};
use camtrail_proto::v1::BoundingBox;
use camtrail_proto::wire::RawDetectionEvent;
use image::{ImageFormat, Rgb, RgbImage};

/// The gateway the tests authenticate as.
pub const GATEWAY: &str = "gw-a";
/// A camera owned by [`GATEWAY`].
pub const OWN_CAMERA: &str = "44030000001310000001";
/// A camera owned by the other gateway, `gw-b`.
pub const OTHER_CAMERA: &str = "44030000001310000002";
/// The node clock in the tests (2025-11-24).
pub const NOW_MS: i64 = 1_764_000_000_000;
/// A plate as a reader might send it; normalises to [`PLATE_KEY`].
pub const PLATE: &str = "粤s·12345";
/// `normalize(PLATE)`.
pub const PLATE_KEY: &str = "粤S12345";

fn camera(camera_id: &str, gateway_id: &str) -> Camera {
    Camera {
        camera_id: camera_id.into(),
        district: "Futian".into(),
        lat: 22.54,
        lon: 114.05,
        heading_deg: 90.0,
        road: "Shennan Rd".into(),
        gateway_id: gateway_id.into(),
    }
}

/// Two cameras: [`OWN_CAMERA`] on `gw-a`, [`OTHER_CAMERA`] on `gw-b`.
pub fn registry() -> Arc<CameraRegistry> {
    let cameras = vec![camera(OWN_CAMERA, GATEWAY), camera(OTHER_CAMERA, "gw-b")];
    Arc::new(CameraRegistry::new(cameras).expect("valid registry"))
}

/// A valid vehicle event from [`GATEWAY`], without snapshot; `seed` varies the event id.
pub fn vehicle_event(seed: u8) -> RawDetectionEvent {
    RawDetectionEvent {
        event_id: [seed.max(1); 16].to_vec(),
        camera_id: OWN_CAMERA.as_bytes().to_vec(),
        captured_at_ms: NOW_MS - 1_000,
        object_class: 1,
        plate: PLATE.as_bytes().to_vec(),
        plate_confidence: 0.93,
        subject_key: Vec::new(),
        vehicle_color: 2,
        vehicle_type: 1,
        bbox: Some(BoundingBox {
            x: 10,
            y: 20,
            width: 300,
            height: 150,
        }),
        snapshot: Vec::new(),
        plate_color: 1,
        vehicle_brand: "大众".as_bytes().to_vec(),
        direction: 3,
        speed_kmh: 48.0,
        plate_char_confidence: vec![91, 92, 93, 94, 95, 96, 97],
    }
}

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    })
}

/// A valid baseline JPEG of the given size.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    gradient(width, height)
        .write_to(&mut out, ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

/// A valid PNG of the given size.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    gradient(width, height)
        .write_to(&mut out, ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// Offset of the baseline frame header (`FF C0`) in a JPEG made by [`jpeg`].
pub fn sof0_offset(bytes: &[u8]) -> usize {
    // Walk the marker segments after SOI: FF xx, then a big-endian length that counts itself.
    let mut at = 2;
    while bytes[at + 1] != 0xC0 {
        assert_eq!(bytes[at], 0xFF, "marker expected at {at}");
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        at += 2 + length;
    }
    at
}

/// A small real JPEG whose frame header (SOF0) is patched to claim `width × height`:
/// the classic decompression bomb, a few hundred bytes on the wire.
pub fn bomb_jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg(16, 16);
    let at = sof0_offset(&bytes);
    // SOF0: FF C0, length (2), precision (1), height (2), width (2).
    bytes[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
    bytes[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}
