//! Conversions between wire messages and domain types.

use camtrail_model::{Camera, ErrorCode, ObjectClass};

use crate::v1;

/// Domain class of a wire enum value; `None` for UNSPECIFIED or values this build does not
/// know.
pub fn object_class_from_wire(value: i32) -> Option<ObjectClass> {
    match v1::ObjectClass::try_from(value).ok()? {
        v1::ObjectClass::Vehicle => Some(ObjectClass::Vehicle),
        v1::ObjectClass::Person => Some(ObjectClass::Person),
        v1::ObjectClass::NonMotor => Some(ObjectClass::NonMotor),
        v1::ObjectClass::Unspecified => None,
    }
}

/// Wire enum of a domain class.
pub fn object_class_to_wire(class: ObjectClass) -> v1::ObjectClass {
    match class {
        ObjectClass::Vehicle => v1::ObjectClass::Vehicle,
        ObjectClass::Person => v1::ObjectClass::Person,
        ObjectClass::NonMotor => v1::ObjectClass::NonMotor,
    }
}

/// The wire's per-event rejection code of an error code; `None` for codes that are not
/// about one event (they end a request instead).
pub fn rejection_code(code: ErrorCode) -> Option<v1::RejectionCode> {
    use v1::RejectionCode as R;
    Some(match code {
        ErrorCode::UnknownCamera => R::UnknownCamera,
        ErrorCode::CameraNotOwned => R::CameraNotOwned,
        ErrorCode::TimestampInFuture => R::TimestampInFuture,
        ErrorCode::TimestampTooOld => R::TimestampTooOld,
        ErrorCode::InvalidEventId => R::InvalidEventId,
        ErrorCode::MissingPlate => R::MissingPlate,
        ErrorCode::InvalidUtf8 => R::InvalidUtf8,
        ErrorCode::InvalidText => R::InvalidText,
        ErrorCode::SnapshotTooLarge => R::SnapshotTooLarge,
        ErrorCode::SnapshotNotJpeg => R::SnapshotNotJpeg,
        ErrorCode::SnapshotTooBigDecoded => R::SnapshotTooBigDecoded,
        ErrorCode::SnapshotUndecodable => R::SnapshotUndecodable,
        ErrorCode::InvalidClass => R::InvalidClass,
        ErrorCode::InvalidConfidence => R::InvalidConfidence,
        ErrorCode::InvalidField => R::InvalidField,
        _ => return None,
    })
}

/// The error code of a wire rejection code; `None` for UNSPECIFIED.
pub fn error_code_of_rejection(code: v1::RejectionCode) -> Option<ErrorCode> {
    ErrorCode::ALL
        .iter()
        .copied()
        .find(|candidate| rejection_code(*candidate) == Some(code))
}

impl From<&Camera> for v1::Camera {
    fn from(camera: &Camera) -> Self {
        Self {
            camera_id: camera.camera_id.clone(),
            district: camera.district.clone(),
            lat: camera.lat,
            lon: camera.lon,
            heading_deg: camera.heading_deg,
            road: camera.road.clone(),
            gateway_id: camera.gateway_id.clone(),
        }
    }
}

impl From<v1::Camera> for Camera {
    fn from(camera: v1::Camera) -> Self {
        Self {
            camera_id: camera.camera_id,
            district: camera.district,
            lat: camera.lat,
            lon: camera.lon,
            heading_deg: camera.heading_deg,
            road: camera.road,
            gateway_id: camera.gateway_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_code_is_an_error_code_of_the_same_name() {
        let mut mapped = 0;
        for value in 1..=64 {
            let Ok(wire) = v1::RejectionCode::try_from(value) else {
                continue;
            };
            let code = error_code_of_rejection(wire).expect("every rejection has a code");
            assert_eq!(rejection_code(code), Some(wire));
            assert_eq!(
                wire.as_str_name(),
                format!("REJECTION_CODE_{}", code.name().to_uppercase())
            );
            mapped += 1;
        }
        assert_eq!(mapped, 15);
        assert_eq!(
            error_code_of_rejection(v1::RejectionCode::Unspecified),
            None
        );
        assert_eq!(rejection_code(ErrorCode::MissingCase), None);
    }

    #[test]
    fn object_classes_round_trip_and_unknowns_are_none() {
        for class in [
            ObjectClass::Vehicle,
            ObjectClass::Person,
            ObjectClass::NonMotor,
        ] {
            assert_eq!(
                object_class_from_wire(object_class_to_wire(class) as i32),
                Some(class)
            );
            assert_eq!(object_class_to_wire(class) as i32, i32::from(class.code()));
        }
        assert_eq!(object_class_from_wire(0), None);
        assert_eq!(object_class_from_wire(99), None);
    }

    #[test]
    fn cameras_round_trip() {
        let camera = Camera {
            camera_id: "44030000001310000001".into(),
            district: "Futian".into(),
            lat: 22.5,
            lon: 114.1,
            heading_deg: 90.0,
            road: "Shennan Rd".into(),
            gateway_id: "gw-001".into(),
        };
        assert_eq!(Camera::from(v1::Camera::from(&camera)), camera);
    }
}
