//! Vehicle attributes in the query APIs: the lower-case names HTTP, GeoJSON, the CLI and the
//! audit parameters use for the stored codes (the `camtrail.v1` enum numbers of
//! `detection.proto`), the JSON form of a sighting's attributes, and the parsing of the
//! Passes filters. Unknown attributes (code 0, empty brand, speed 0, no confidences) are
//! `null` in JSON; an unknown name or number in a filter is `invalid_class`.

use camtrail_model::{Error, ErrorCode, VehicleAttributes};
use serde::Serialize;

use crate::service::QueryError;

/// `VehicleColor` numbers and names.
pub const VEHICLE_COLORS: &[(u8, &str)] = &[
    (1, "white"),
    (2, "black"),
    (3, "silver"),
    (4, "grey"),
    (5, "red"),
    (6, "blue"),
    (7, "yellow"),
    (8, "green"),
    (9, "brown"),
    (15, "other"),
];

/// `VehicleType` numbers and names.
pub const VEHICLE_TYPES: &[(u8, &str)] = &[
    (1, "car"),
    (2, "suv"),
    (3, "van"),
    (4, "bus"),
    (5, "truck"),
    (6, "motorcycle"),
    (15, "other"),
];

/// `PlateColor` numbers and names.
pub const PLATE_COLORS: &[(u8, &str)] = &[
    (1, "blue"),
    (2, "yellow"),
    (3, "white"),
    (4, "black"),
    (5, "green"),
    (6, "yellow_green"),
    (15, "other"),
];

/// `Direction` numbers and names (direction of travel).
pub const DIRECTIONS: &[(u8, &str)] = &[
    (1, "north"),
    (2, "northeast"),
    (3, "east"),
    (4, "southeast"),
    (5, "south"),
    (6, "southwest"),
    (7, "west"),
    (8, "northwest"),
];

/// Longest brand a filter may name, in bytes (as at ingest).
pub const MAX_BRAND_BYTES: usize = 32;

/// The name of `code` in `table`; `None` for 0 (unknown) or a number it does not list.
pub fn name(table: &[(u8, &'static str)], code: u8) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// The code named `text` in `table` (one of the names above), or `invalid_class`.
pub fn parse_name(table: &[(u8, &'static str)], field: &str, text: &str) -> Result<u8, QueryError> {
    table
        .iter()
        .find(|(_, n)| *n == text)
        .map(|(c, _)| *c)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(_, n)| *n).collect();
            Error::new(
                ErrorCode::InvalidClass,
                format!("{field} must be one of {}", names.join(", ")),
            )
        })
}

/// A wire enum number as a filter: 0 (UNSPECIFIED) is no filter, a number `table` does not
/// list is `invalid_class`.
pub fn filter_code(
    table: &[(u8, &'static str)],
    field: &str,
    number: i32,
) -> Result<Option<u8>, QueryError> {
    if number == 0 {
        return Ok(None);
    }
    u8::try_from(number)
        .ok()
        .filter(|code| name(table, *code).is_some())
        .map(Some)
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidClass,
                format!("{field} holds an unknown value"),
            )
        })
}

/// A brand filter: empty is no filter; at most [`MAX_BRAND_BYTES`], no control or invisible
/// formatting characters (`invalid_text`), matched exactly.
pub fn parse_brand(text: &str) -> Result<Option<String>, QueryError> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_BRAND_BYTES
        || text.chars().any(char::is_control)
        || camtrail_model::text::has_hidden(text)
    {
        return Err(Error::new(
            ErrorCode::InvalidText,
            format!("vehicle_brand is 1-{MAX_BRAND_BYTES} bytes of visible text"),
        ));
    }
    Ok(Some(text.to_string()))
}

/// A sighting's attributes as the JSON answers carry them (flattened into the sighting):
/// names, not numbers; `null` when unknown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributesJson<'a> {
    /// Direction of travel.
    pub direction: Option<&'static str>,
    /// Reader's confidence per plate character, 0–100.
    pub plate_char_confidence: Option<&'a [u8]>,
    /// Plate background colour.
    pub plate_color: Option<&'static str>,
    /// Measured speed, km/h.
    pub speed_kmh: Option<f32>,
    /// Make as classified.
    pub vehicle_brand: Option<&'a str>,
    /// Body colour.
    pub vehicle_color: Option<&'static str>,
    /// Body type.
    pub vehicle_type: Option<&'static str>,
}

impl<'a> AttributesJson<'a> {
    /// The JSON form of `attributes` and `plate_char_confidence`.
    pub fn new(attributes: &'a VehicleAttributes, plate_char_confidence: &'a [u8]) -> Self {
        Self {
            direction: name(DIRECTIONS, attributes.direction),
            plate_char_confidence: (!plate_char_confidence.is_empty())
                .then_some(plate_char_confidence),
            plate_color: name(PLATE_COLORS, attributes.plate_color),
            speed_kmh: (attributes.speed_kmh > 0.0).then_some(attributes.speed_kmh),
            vehicle_brand: (!attributes.brand.is_empty()).then_some(attributes.brand.as_str()),
            vehicle_color: name(VEHICLE_COLORS, attributes.color),
            vehicle_type: name(VEHICLE_TYPES, attributes.kind),
        }
    }

    /// Add the fields to a JSON object (the GeoJSON properties, the passes answer).
    pub fn insert_into(&self, object: &mut serde_json::Map<String, serde_json::Value>) {
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(self) {
            object.extend(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_proto_enums_and_parse_back() {
        for table in [VEHICLE_COLORS, VEHICLE_TYPES, PLATE_COLORS, DIRECTIONS] {
            for &(code, text) in table {
                assert_eq!(name(table, code), Some(text));
                assert_eq!(parse_name(table, "f", text).ok(), Some(code));
                assert_eq!(
                    filter_code(table, "f", i32::from(code)).ok(),
                    Some(Some(code))
                );
                assert!(text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            }
            assert_eq!(name(table, 0), None);
            assert_eq!(filter_code(table, "f", 0).ok(), Some(None));
            for bad in [-1, 16, 256, 1_000] {
                let error = filter_code(table, "f", bad).expect_err("unknown number");
                assert_eq!(error.code, ErrorCode::InvalidClass);
            }
            let error = parse_name(table, "f", "Blue ").expect_err("unknown name");
            assert_eq!(error.code, ErrorCode::InvalidClass);
        }
        assert_eq!(name(PLATE_COLORS, 6), Some("yellow_green"));
        assert_eq!(name(DIRECTIONS, 3), Some("east"));
        assert_eq!(name(VEHICLE_COLORS, 6), Some("blue"));
    }

    #[test]
    fn brands_are_checked_like_at_ingest() {
        assert_eq!(parse_brand("").ok(), Some(None));
        assert_eq!(parse_brand("比亚迪").ok(), Some(Some("比亚迪".into())));
        for bad in ["b".repeat(33), "a\u{0007}".into(), "a\u{202E}b".into()] {
            assert_eq!(
                parse_brand(&bad).expect_err("refused").code,
                ErrorCode::InvalidText
            );
        }
    }

    #[test]
    fn unknown_attributes_are_null_in_json() {
        let unknown = VehicleAttributes::default();
        let value = serde_json::to_value(AttributesJson::new(&unknown, &[])).expect("json");
        assert!(
            value
                .as_object()
                .expect("object")
                .values()
                .all(|v| v.is_null())
        );
        let attributes = VehicleAttributes {
            color: 6,
            kind: 2,
            plate_color: 5,
            direction: 3,
            speed_kmh: 42.5,
            brand: "大众".into(),
        };
        let value =
            serde_json::to_value(AttributesJson::new(&attributes, &[90, 91])).expect("json");
        assert_eq!(
            value,
            serde_json::json!({
                "direction": "east", "plate_char_confidence": [90, 91], "plate_color": "green",
                "speed_kmh": 42.5, "vehicle_brand": "大众", "vehicle_color": "blue",
                "vehicle_type": "suv",
            })
        );
    }
}
