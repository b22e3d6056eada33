//! Conversions between wire messages and domain types.

use camtrail_model::{Camera, ObjectClass};

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
