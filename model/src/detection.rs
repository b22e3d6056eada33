//! A detection event after validation: the shape every component past the ingest door
//! works with, whatever the wire or storage format.

use std::fmt;

/// The 16-byte idempotency key a gateway gives each event (UUID or ULID bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub [u8; 16]);

impl EventId {
    /// Parse from wire bytes: exactly 16 bytes, not all zero.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; 16] = bytes.try_into().ok()?;
        (array != [0; 16]).then_some(Self(array))
    }

    /// Parse 32 hex digits (dashes allowed, as in a UUID).
    pub fn parse_hex(text: &str) -> Option<Self> {
        let digits: String = text.chars().filter(|&c| c != '-').collect();
        let bytes = hex::decode(digits).ok()?;
        Self::from_slice(&bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Lower-case hex, 32 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.to_hex())
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What kind of subject was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectClass {
    /// A motor vehicle, normally with a plate.
    Vehicle,
    /// A pedestrian (linked only by an upstream subject key).
    Person,
    /// Bicycle, e-bike, tricycle.
    NonMotor,
}

impl ObjectClass {
    /// Stable storage code (matches the proto enum numbers).
    pub fn code(self) -> u8 {
        match self {
            Self::Vehicle => 1,
            Self::Person => 2,
            Self::NonMotor => 3,
        }
    }

    /// Inverse of [`ObjectClass::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Vehicle),
            2 => Some(Self::Person),
            3 => Some(Self::NonMotor),
            _ => None,
        }
    }
}

/// Camera-classified vehicle attributes, as stable codes (proto enum numbers; 0 unknown).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VehicleAttributes {
    /// `VehicleColor` number.
    pub color: u8,
    /// `VehicleType` number.
    pub kind: u8,
    /// `PlateColor` number.
    pub plate_color: u8,
    /// `Direction` number (direction of travel).
    pub direction: u8,
    /// Measured speed, km/h (0 unknown).
    pub speed_kmh: f32,
    /// Make, as the camera classified it (empty: unknown).
    pub brand: String,
}

/// A validated detection, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Idempotency key.
    pub event_id: EventId,
    /// Registry camera id.
    pub camera_id: String,
    /// Capture instant, unix ms UTC (camera clock).
    pub captured_at_ms: i64,
    /// What was seen.
    pub object_class: ObjectClass,
    /// Plate as read (may be empty for persons).
    pub plate: String,
    /// Reader confidence, 0–1.
    pub plate_confidence: f32,
    /// Normalised lookup key (normalised plate or upstream key).
    pub subject_key: String,
    /// Vehicle attributes.
    pub attributes: VehicleAttributes,
    /// Reader's confidence per plate character, 0–100 (empty: unknown).
    pub plate_char_confidence: Vec<u8>,
    /// Bounding box in the source frame: x, y, width, height (pixels).
    pub bbox: [u32; 4],
    /// Re-encoded JPEG thumbnail, when the gateway sent a snapshot.
    pub thumbnail_jpeg: Option<Vec<u8>>,
    /// Publishing gateway.
    pub gateway_id: String,
    /// When the ingest node accepted it, unix ms.
    pub received_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_must_be_sixteen_nonzero_bytes() {
        assert!(EventId::from_slice(&[0; 16]).is_none());
        assert!(EventId::from_slice(&[1; 15]).is_none());
        assert!(EventId::from_slice(&[1; 17]).is_none());
        let id = EventId::from_slice(&[0xab; 16]).expect("valid");
        assert_eq!(EventId::parse_hex(&id.to_hex()), Some(id));
        assert_eq!(
            EventId::parse_hex("abababab-abab-abab-abab-abababababab"),
            Some(id)
        );
    }

    #[test]
    fn object_class_codes_round_trip() {
        for class in [
            ObjectClass::Vehicle,
            ObjectClass::Person,
            ObjectClass::NonMotor,
        ] {
            assert_eq!(ObjectClass::from_code(class.code()), Some(class));
        }
        assert_eq!(ObjectClass::from_code(0), None);
    }
}
