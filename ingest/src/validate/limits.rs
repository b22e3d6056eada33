//! The `[ingest.validation]` configuration section: the limits every event is checked
//! against. Defaults match the documented wire contract (`camtrail/v1/detection.proto`).

use camtrail_common::ConfigError;
use serde::{Deserialize, Serialize};

/// Largest side a JPEG can declare (its SOF header stores dimensions as 16-bit numbers).
const JPEG_MAX_SIDE_PX: u32 = 65_535;

/// Per-event validation limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationLimits {
    /// How far `captured_at_ms` may lie ahead of the node's clock (camera clock skew), ms.
    pub max_future_skew_ms: i64,
    /// How far `captured_at_ms` may lie behind the node's clock, ms. Older events are
    /// rejected with TIMESTAMP_TOO_OLD (they would land in partitions retention drops).
    pub max_age_ms: i64,
    /// Longest accepted `plate`, in UTF-8 bytes.
    pub max_plate_bytes: usize,
    /// Longest accepted upstream `subject_key`, in UTF-8 bytes.
    pub max_subject_key_bytes: usize,
    /// Largest accepted `snapshot`, in bytes (before decoding).
    pub max_snapshot_bytes: usize,
    /// Largest accepted snapshot width or height, in pixels (checked from the JPEG header,
    /// before decoding).
    pub max_snapshot_side_px: u32,
    /// Memory budget for decoding one snapshot, in bytes: the decoder's peak need, read
    /// from the headers before decoding (`width × height × 3`, plus `× components × 2` for
    /// a progressive JPEG's coefficients), must fit; also the decoder's
    /// `image::Limits::max_alloc`. The decompression-bomb guard. Peak validation memory of
    /// a node is about this times the number of batches validated at once.
    pub max_decode_bytes: u64,
    /// Longest side of the stored thumbnail, in pixels (aspect ratio kept; smaller
    /// snapshots are not enlarged).
    pub thumbnail_side_px: u32,
    /// JPEG quality of the stored thumbnail, 1–100.
    pub thumbnail_quality: u8,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            max_future_skew_ms: 5 * 60 * 1000,
            max_age_ms: 7 * 24 * 60 * 60 * 1000,
            max_plate_bytes: 32,
            max_subject_key_bytes: 64,
            max_snapshot_bytes: 512 * 1024,
            max_snapshot_side_px: 4096,
            max_decode_bytes: 64 * 1024 * 1024,
            thumbnail_side_px: 256,
            thumbnail_quality: 80,
        }
    }
}

impl ValidationLimits {
    /// Check the limits make sense together; returns them unchanged, or what is wrong.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.max_future_skew_ms < 0 {
            return Err(ConfigError::new(
                "validation.max_future_skew_ms must not be negative",
            ));
        }
        if self.max_age_ms <= 0 {
            return Err(ConfigError::new("validation.max_age_ms must be positive"));
        }
        if self.max_plate_bytes == 0 || self.max_subject_key_bytes == 0 {
            return Err(ConfigError::new(
                "validation.max_plate_bytes and max_subject_key_bytes must be positive",
            ));
        }
        if self.max_snapshot_bytes == 0 {
            return Err(ConfigError::new(
                "validation.max_snapshot_bytes must be positive",
            ));
        }
        if !(1..=JPEG_MAX_SIDE_PX).contains(&self.max_snapshot_side_px) {
            return Err(ConfigError(format!(
                "validation.max_snapshot_side_px must be 1–{JPEG_MAX_SIDE_PX}"
            )));
        }
        if self.max_decode_bytes < 3 {
            return Err(ConfigError::new(
                "validation.max_decode_bytes must allow at least one rgb pixel",
            ));
        }
        if self.thumbnail_side_px == 0 || self.thumbnail_side_px > self.max_snapshot_side_px {
            return Err(ConfigError::new(
                "validation.thumbnail_side_px must be 1–max_snapshot_side_px",
            ));
        }
        if !(1..=100).contains(&self.thumbnail_quality) {
            return Err(ConfigError::new(
                "validation.thumbnail_quality must be 1–100",
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_wire_contract() {
        let limits = ValidationLimits::default()
            .validate()
            .expect("defaults valid");
        assert_eq!(limits.max_future_skew_ms, 300_000);
        assert_eq!(limits.max_age_ms, 604_800_000);
        assert_eq!(limits.max_plate_bytes, 32);
        assert_eq!(limits.max_subject_key_bytes, 64);
        assert_eq!(limits.max_snapshot_bytes, 524_288);
        assert_eq!(limits.max_snapshot_side_px, 4096);
        assert_eq!(limits.thumbnail_side_px, 256);
    }

    #[test]
    fn nonsense_limits_are_refused() {
        let base = ValidationLimits::default;
        let cases = [
            ValidationLimits {
                max_future_skew_ms: -1,
                ..base()
            },
            ValidationLimits {
                max_age_ms: 0,
                ..base()
            },
            ValidationLimits {
                max_plate_bytes: 0,
                ..base()
            },
            ValidationLimits {
                max_snapshot_bytes: 0,
                ..base()
            },
            ValidationLimits {
                max_snapshot_side_px: 70_000,
                ..base()
            },
            ValidationLimits {
                max_decode_bytes: 0,
                ..base()
            },
            ValidationLimits {
                thumbnail_side_px: 5000,
                ..base()
            },
            ValidationLimits {
                thumbnail_quality: 0,
                ..base()
            },
            ValidationLimits {
                thumbnail_quality: 101,
                ..base()
            },
        ];
        for limits in cases {
            assert!(limits.clone().validate().is_err(), "{limits:?}");
        }
    }
}
