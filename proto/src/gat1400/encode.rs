//! `camtrail.v1` → GA/T 1400 JSON: what a platform would send for an event, and the
//! checkpoints of a registry. Used by the load generator (`--protocol gat1400`), by
//! `camtrail city --tollgates` and by the tests; the inverse of the mapping in [`super`].

use base64::Engine as _;
use camtrail_model::Camera;
use chrono_tz::Tz;
use serde::Serialize;

use super::{codes, time};
use crate::v1::{self, Direction, PlateColor, VehicleColor, VehicleType};

/// A `MotorVehicleObject` as a platform sends it (only the fields camtrail reads, plus
/// `InfoKind` and `SourceID` that platforms always send).
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct MotorVehicleOut {
    pub MotorVehicleID: String,
    /// 1: automatic capture.
    pub InfoKind: u8,
    pub SourceID: String,
    pub DeviceID: String,
    pub PassTime: String,
    pub HasPlate: String,
    pub PlateNo: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub PlateColor: String,
    pub PlateReliability: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub PlateCharReliability: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub VehicleClass: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub VehicleColor: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub VehicleBrand: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub Direction: String,
    pub Speed: f64,
    pub LeftTopX: u32,
    pub LeftTopY: u32,
    pub RightBtmX: u32,
    pub RightBtmY: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub SubImageList: Option<SubImageListOut>,
}

/// `SubImageList` with one image.
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct SubImageListOut {
    pub SubImageInfoObject: Vec<SubImageOut>,
}

/// One `SubImageInfoObject`.
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct SubImageOut {
    pub ImageID: String,
    /// `01`: the vehicle image.
    pub Type: String,
    pub FileFormat: String,
    pub Data: String,
}

/// `{"MotorVehicleListObject": {"MotorVehicleObject": [...]}}` to send.
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct MotorVehicleListOut {
    pub MotorVehicleListObject: MotorVehicleObjectsOut,
}

/// The objects of a [`MotorVehicleListOut`].
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct MotorVehicleObjectsOut {
    pub MotorVehicleObject: Vec<MotorVehicleOut>,
}

impl MotorVehicleListOut {
    /// Wrap records into a request body.
    pub fn new(records: Vec<MotorVehicleOut>) -> Self {
        Self {
            MotorVehicleListObject: MotorVehicleObjectsOut {
                MotorVehicleObject: records,
            },
        }
    }
}

/// The record a platform in `zone` would send for `event`. `MotorVehicleID` is built from
/// the device id, the pass time and the event id's hex, so it is unique per event and a
/// resend carries the same id. `PassTime` has second precision, as the standard's layout.
pub fn motor_vehicle(event: &v1::DetectionEvent, zone: Tz) -> MotorVehicleOut {
    let pass_time = time::format(event.captured_at_ms, zone);
    let event_hex: String = event.event_id.iter().map(|b| format!("{b:02x}")).collect();
    let bbox = event.bbox.unwrap_or_default();
    let plate = event.plate.replace(super::WILDCARD_CHAR, "-");
    let has_plate = !plate.trim().is_empty();
    let char_reliability = plate_chars(&plate)
        .zip(&event.plate_char_confidence)
        .map(|(c, value)| format!("{c}-{value}"))
        .collect::<Vec<_>>()
        .join(",");
    MotorVehicleOut {
        MotorVehicleID: format!("{}02{pass_time}{event_hex}", event.camera_id),
        InfoKind: 1,
        SourceID: format!("{}02{pass_time}", event.camera_id),
        DeviceID: event.camera_id.clone(),
        PassTime: pass_time,
        HasPlate: if has_plate { "1" } else { "0" }.into(),
        PlateNo: if has_plate {
            plate
        } else {
            super::NO_PLATE.into()
        },
        PlateColor: codes::plate_color_code(
            PlateColor::try_from(event.plate_color).unwrap_or_default(),
        )
        .into(),
        PlateReliability: format!("{}", (event.plate_confidence * 100.0).round() as i32),
        PlateCharReliability: char_reliability,
        VehicleClass: codes::vehicle_type_code(
            VehicleType::try_from(event.vehicle_type).unwrap_or_default(),
        )
        .into(),
        VehicleColor: codes::vehicle_color_code(
            VehicleColor::try_from(event.vehicle_color).unwrap_or_default(),
        )
        .into(),
        VehicleBrand: event.vehicle_brand.clone(),
        Direction: codes::direction_code(Direction::try_from(event.direction).unwrap_or_default())
            .into(),
        Speed: f64::from(event.speed_kmh),
        LeftTopX: bbox.x,
        LeftTopY: bbox.y,
        RightBtmX: bbox.x.saturating_add(bbox.width),
        RightBtmY: bbox.y.saturating_add(bbox.height),
        SubImageList: (!event.snapshot.is_empty()).then(|| SubImageListOut {
            SubImageInfoObject: vec![SubImageOut {
                ImageID: format!("{event_hex}01"),
                Type: "01".into(),
                FileFormat: "Jpeg".into(),
                Data: base64::engine::general_purpose::STANDARD.encode(&event.snapshot),
            }],
        }),
    }
}

/// The characters of a plate that carry a confidence: separators excluded, but not `-`,
/// which here stands for an unreadable character (so `plate::normalize` would not do).
fn plate_chars(plate: &str) -> impl Iterator<Item = char> + '_ {
    plate
        .chars()
        .filter(|c| !matches!(c, '·' | ' ' | '.' | '•' | '_'))
}

/// A `TollgateObject` to send.
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct TollgateOut {
    pub TollgateID: String,
    pub Name: String,
    pub Longitude: f64,
    pub Latitude: f64,
    pub PlaceCode: String,
    /// 1: in use.
    pub Status: String,
    /// 10: a road checkpoint (卡口).
    pub TollgateCat: String,
}

/// `{"TollgateListObject": {"TollgateObject": [...]}}` to send.
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct TollgateListOut {
    pub TollgateListObject: TollgateObjectsOut,
}

/// The objects of a [`TollgateListOut`].
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct TollgateObjectsOut {
    pub TollgateObject: Vec<TollgateOut>,
}

/// The registry's cameras as checkpoints: `TollgateID` the camera id, `PlaceCode` its
/// district as the registry names it, `Name` its road.
pub fn tollgates<'c>(cameras: impl IntoIterator<Item = &'c Camera>) -> TollgateListOut {
    TollgateListOut {
        TollgateListObject: TollgateObjectsOut {
            TollgateObject: cameras
                .into_iter()
                .map(|camera| TollgateOut {
                    TollgateID: camera.camera_id.clone(),
                    Name: camera.road.clone(),
                    Longitude: camera.lon,
                    Latitude: camera.lat,
                    PlaceCode: camera.district.clone(),
                    Status: "1".into(),
                    TollgateCat: "10".into(),
                })
                .collect(),
        },
    }
}
