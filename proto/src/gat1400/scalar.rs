//! A JSON value of one GA/T 1400 field, read without failing the object it belongs to.
//!
//! Platforms disagree about JSON types (`"LaneNo": 1` and `"LaneNo": "1"`, `"Speed": "48"`),
//! so text fields accept numbers and number fields accept numeric text. What no reading can
//! fix (an object or an array where text belongs, text that is not a number) is kept as
//! [`Scalar::Wrong`], and the mapping turns it into a per-object `INVALID_FIELD` naming the
//! field — the rest of the request is still answered.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One field's value as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Scalar<'a> {
    /// Not sent, or `null`.
    #[default]
    Absent,
    /// A JSON string (borrowed from the request when it holds no escapes).
    Text(Cow<'a, str>),
    /// A JSON number.
    Number(f64),
    /// Anything else: the JSON type that was found (`"boolean"`, `"object"`, `"array"`).
    Wrong(&'static str),
}

/// Why a field could not be read; the message names the field, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// GA/T 1400 field name, e.g. `PassTime`.
    pub field: &'static str,
    /// Lower-case sentence, without the field's value.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.message)
    }
}

impl<'a> Scalar<'a> {
    /// The field as text: strings as they are, numbers in their shortest form.
    pub fn text(&self, field: &'static str) -> Result<Option<Cow<'a, str>>, FieldError> {
        match self {
            Self::Absent => Ok(None),
            Self::Text(text) => Ok(Some(text.clone())),
            Self::Number(number) => Ok(Some(Cow::Owned(number_text(*number)))),
            Self::Wrong(kind) => Err(wrong(field, "a string", kind)),
        }
    }

    /// The field as text, `None` also when it is empty or blank.
    pub fn non_blank(&self, field: &'static str) -> Result<Option<Cow<'a, str>>, FieldError> {
        Ok(self.text(field)?.filter(|text| !text.trim().is_empty()))
    }

    /// The field as a number: numbers as they are, strings that parse as one.
    pub fn number(&self, field: &'static str) -> Result<Option<f64>, FieldError> {
        match self {
            Self::Absent => Ok(None),
            Self::Number(number) => Ok(Some(*number)),
            Self::Text(text) if text.trim().is_empty() => Ok(None),
            Self::Text(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Some)
                .ok_or_else(|| FieldError {
                    field,
                    message: "must be a number".into(),
                }),
            Self::Wrong(kind) => Err(wrong(field, "a number", kind)),
        }
    }
}

fn wrong(field: &'static str, expected: &str, found: &str) -> FieldError {
    FieldError {
        field,
        message: format!("must be {expected}, found {found}"),
    }
}

/// `48` for 48.0, `48.5` for 48.5.
fn number_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        format!("{number}")
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(value as f64))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(value as f64))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(value))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Wrong("a boolean"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Absent)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Absent)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Wrong("an object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Wrong("an array"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Scalar<'_> {
        serde_json::from_str(json).expect("any JSON value")
    }

    #[test]
    fn text_and_numbers_cross_over_where_platforms_disagree() {
        assert_eq!(read("\"1\"").number("LaneNo"), Ok(Some(1.0)));
        assert_eq!(
            read("1").text("LaneNo").map(|t| t.map(String::from)),
            Ok(Some("1".into()))
        );
        assert_eq!(
            read("48.5").text("Speed").map(|t| t.map(String::from)),
            Ok(Some("48.5".into()))
        );
        assert_eq!(read("null").text("PlateNo"), Ok(None));
        assert_eq!(read("\"  \"").non_blank("PlateNo"), Ok(None));
        assert_eq!(read("\"\"").number("Speed"), Ok(None));
        assert!(matches!(
            read("\"abc\"").text("PlateNo"),
            Ok(Some(Cow::Borrowed("abc")))
        ));
    }

    #[test]
    fn wrong_types_name_the_field_not_the_value() {
        let error = read("{\"a\": [1, 2]}")
            .text("PassTime")
            .expect_err("object");
        assert_eq!(
            error.to_string(),
            "PassTime must be a string, found an object"
        );
        let error = read("[\"粤B12345\"]").text("PlateNo").expect_err("array");
        assert!(!error.to_string().contains("粤B"));
        let error = read("\"fast\"").number("Speed").expect_err("not a number");
        assert_eq!(error.to_string(), "Speed must be a number");
        assert!(read("true").number("Speed").is_err());
        assert!(read("\"NaN\"").number("Speed").is_err());
    }
}
