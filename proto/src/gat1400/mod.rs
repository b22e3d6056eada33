//! GA/T 1400 ("view library", 视图库) JSON: the objects checkpoint cameras and platforms
//! push over HTTP, and their mapping onto `camtrail.v1.DetectionEvent`.
//!
//! Decoding is per object: a request body is parsed once into its list of objects (as raw
//! JSON slices), then each `MotorVehicleObject` is read on its own, so one malformed object
//! is one per-object status and the others are still stored. After [`MotorVehicle::to_event`]
//! an object is a [`RawDetectionEvent`] like any gRPC event and goes through the same
//! validation, durability and ack path.
//!
//! - [`scalar`]: field values that tolerate the string/number disagreements of platforms;
//! - [`time`]: `PassTime` and friends;
//! - [`codes`]: colour, vehicle class and direction tables;
//! - [`encode`]: the other way, for the load generator, fixtures and registry export.
//!
//! The field-by-field mapping is documented on [`MotorVehicle::to_event`] and in
//! ARCHITECTURE.md.

pub mod codes;
pub mod encode;
pub mod scalar;
pub mod time;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use base64::Engine as _;
use camtrail_model::{Camera, Error, ErrorCode};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::v1::{self, BoundingBox};
use crate::wire::RawDetectionEvent;
pub use scalar::{FieldError, Scalar};

/// `PlateNo` of a vehicle without a plate.
pub const NO_PLATE: &str = "无车牌";
/// What a platform writes for a character its reader could not read.
pub const UNREADABLE_CHAR: char = '-';
/// What camtrail stores for it: the one-character wildcard of track search patterns.
pub const WILDCARD_CHAR: char = '?';

/// `StatusCode` values of a `ResponseStatusObject`.
pub mod status {
    /// Done.
    pub const OK: i32 = 0;
    /// Another error (camtrail: the node failed; resend later).
    pub const OTHER_ERROR: i32 = 1;
    /// The receiver is busy (camtrail: saturated or shutting down; resend later).
    pub const DEVICE_BUSY: i32 = 2;
    /// The operation is not allowed (camtrail: authentication, registration, ownership).
    pub const INVALID_OPERATION: i32 = 4;
    /// The body is not JSON.
    pub const INVALID_JSON_FORMAT: i32 = 7;
    /// The JSON does not hold what it should (camtrail: a per-object rejection).
    pub const INVALID_JSON_CONTENT: i32 = 8;
}

/// `POST /VIID/MotorVehicles` body: `{"MotorVehicleListObject": {"MotorVehicleObject": [...]}}`.
#[derive(Debug, Deserialize)]
pub struct MotorVehicleListRequest<'a> {
    /// The list wrapper.
    #[serde(rename = "MotorVehicleListObject", borrow)]
    pub list: MotorVehicleList<'a>,
}

/// The objects of a [`MotorVehicleListRequest`], still raw JSON each.
#[derive(Debug, Deserialize)]
pub struct MotorVehicleList<'a> {
    /// One raw JSON value per vehicle record.
    #[serde(rename = "MotorVehicleObject", borrow, default)]
    pub objects: Vec<&'a RawValue>,
}

/// The fields of a `MotorVehicleObject` camtrail reads; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct MotorVehicle<'a> {
    #[serde(borrow, default)]
    pub MotorVehicleID: Scalar<'a>,
    #[serde(borrow, default)]
    pub DeviceID: Scalar<'a>,
    #[serde(borrow, default)]
    pub TollgateID: Scalar<'a>,
    #[serde(borrow, default)]
    pub LaneNo: Scalar<'a>,
    #[serde(borrow, default)]
    pub PassTime: Scalar<'a>,
    #[serde(borrow, default)]
    pub HasPlate: Scalar<'a>,
    #[serde(borrow, default)]
    pub PlateNo: Scalar<'a>,
    #[serde(borrow, default)]
    pub PlateColor: Scalar<'a>,
    #[serde(borrow, default)]
    pub PlateReliability: Scalar<'a>,
    #[serde(borrow, default)]
    pub PlateCharReliability: Scalar<'a>,
    #[serde(borrow, default)]
    pub VehicleClass: Scalar<'a>,
    #[serde(borrow, default)]
    pub VehicleColor: Scalar<'a>,
    #[serde(borrow, default)]
    pub VehicleBrand: Scalar<'a>,
    #[serde(borrow, default)]
    pub Direction: Scalar<'a>,
    #[serde(borrow, default)]
    pub Speed: Scalar<'a>,
    #[serde(borrow, default)]
    pub LeftTopX: Scalar<'a>,
    #[serde(borrow, default)]
    pub LeftTopY: Scalar<'a>,
    #[serde(borrow, default)]
    pub RightBtmX: Scalar<'a>,
    #[serde(borrow, default)]
    pub RightBtmY: Scalar<'a>,
    #[serde(borrow, default)]
    pub SubImageList: Option<SubImageList<'a>>,
}

/// `SubImageList`: the images of a record.
#[derive(Debug, Default, Deserialize)]
pub struct SubImageList<'a> {
    /// The images.
    #[serde(rename = "SubImageInfoObject", borrow, default)]
    pub images: Vec<SubImage<'a>>,
}

/// One `SubImageInfoObject`.
#[derive(Debug, Default, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct SubImage<'a> {
    /// `01` vehicle image, `02` plate image, others ignored.
    #[serde(borrow, default)]
    pub Type: Scalar<'a>,
    /// Base64 JPEG.
    #[serde(borrow, default)]
    pub Data: Scalar<'a>,
}

/// What the mapping needs to know about the sender.
pub struct MapContext<'r> {
    /// Zone of times sent without an offset (the device's configured zone).
    pub zone: Option<Tz>,
    /// Largest snapshot accepted, in bytes: a larger image is refused before it is decoded.
    pub max_snapshot_bytes: usize,
    /// Whether a camera id is in the registry (picks DeviceID, TollgateID-LaneNo or TollgateID).
    pub is_camera: &'r dyn Fn(&str) -> bool,
}

impl<'a> MotorVehicle<'a> {
    /// Read one raw `MotorVehicleObject`. A value that is not an object of the expected
    /// shape is `INVALID_FIELD`; the message gives the column, never the content.
    pub fn decode(raw: &'a RawValue) -> Result<Self, Error> {
        serde_json::from_str(raw.get()).map_err(|error| {
            Error::new(
                ErrorCode::InvalidField,
                format!(
                    "the MotorVehicleObject does not have the expected shape \
                     (a field of the wrong JSON type near column {})",
                    error.column()
                ),
            )
        })
    }

    /// `MotorVehicleID` as text (the `Id` of its status answer); empty when missing.
    pub fn id(&self) -> String {
        self.MotorVehicleID
            .text("MotorVehicleID")
            .ok()
            .flatten()
            .map(|id| id.trim().to_string())
            .unwrap_or_default()
    }

    /// The event this record stands for. Mapping:
    ///
    /// | GA/T 1400 | `DetectionEvent` |
    /// |---|---|
    /// | `MotorVehicleID` | `event_id` = first 16 bytes of SHA-256 of the id (resends dedup) |
    /// | `DeviceID`, `TollgateID` + `LaneNo` | `camera_id`: the first in the registry of `DeviceID`, `TollgateID-LaneNo`, `TollgateID` |
    /// | `PassTime` | `captured_at_ms` (zone: offset in the text, else the device's) |
    /// | `PlateNo` (`HasPlate`) | `plate`; `无车牌` or `HasPlate` 0 → none; `-` → `?` |
    /// | `PlateReliability` 0–100 | `plate_confidence` 0–1 |
    /// | `PlateCharReliability` `粤-80,B-90,…` | `plate_char_confidence` |
    /// | `PlateColor`, `VehicleColor`, `VehicleClass`, `Direction` | enums ([`codes`]) |
    /// | `VehicleBrand` | `vehicle_brand` (as sent) |
    /// | `Speed` km/h | `speed_kmh` |
    /// | `LeftTopX/Y`, `RightBtmX/Y` | `bbox` |
    /// | `SubImageList` Type `01` (else `02`) `Data` | `snapshot` (base64-decoded) |
    pub fn to_event(&self, context: &MapContext<'_>) -> Result<RawDetectionEvent, Error> {
        let invalid = |error: FieldError| Error::new(ErrorCode::InvalidField, error.to_string());
        let id = self.id();
        if id.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidEventId,
                "MotorVehicleID is missing",
            ));
        }
        let camera_id = self.camera_id(context).map_err(invalid)?;
        let pass_time = self
            .PassTime
            .non_blank("PassTime")
            .map_err(invalid)?
            .ok_or_else(|| Error::new(ErrorCode::InvalidField, "PassTime is missing"))?;
        let captured_at_ms = time::parse(&pass_time, context.zone)
            .map_err(|error| Error::new(ErrorCode::InvalidField, error.message("PassTime")))?;
        let plate = self.plate().map_err(invalid)?;
        let plate_confidence = match self.PlateReliability.number("PlateReliability") {
            Ok(Some(percent)) => (percent / 100.0) as f32,
            Ok(None) => 0.0,
            Err(error) => return Err(invalid(error)),
        };
        let plate_char_confidence = match self
            .PlateCharReliability
            .non_blank("PlateCharReliability")
            .map_err(invalid)?
        {
            Some(text) => char_reliability(&text)?,
            None => Vec::new(),
        };
        let code = |scalar: &Scalar<'a>, field| -> Result<String, Error> {
            Ok(scalar
                .text(field)
                .map_err(invalid)?
                .map(Cow::into_owned)
                .unwrap_or_default())
        };
        let speed = self.Speed.number("Speed").map_err(invalid)?.unwrap_or(0.0);
        Ok(RawDetectionEvent {
            event_id: event_id(&id).to_vec(),
            camera_id: camera_id.into_bytes(),
            captured_at_ms,
            object_class: v1::ObjectClass::Vehicle as i32,
            plate: plate.into_bytes(),
            plate_confidence,
            subject_key: Vec::new(),
            vehicle_color: codes::vehicle_color(&code(&self.VehicleColor, "VehicleColor")?) as i32,
            vehicle_type: codes::vehicle_type(&code(&self.VehicleClass, "VehicleClass")?) as i32,
            bbox: self.bbox().map_err(invalid)?,
            snapshot: self.snapshot(context.max_snapshot_bytes)?,
            plate_color: codes::plate_color(&code(&self.PlateColor, "PlateColor")?) as i32,
            vehicle_brand: code(&self.VehicleBrand, "VehicleBrand")?
                .trim()
                .as_bytes()
                .to_vec(),
            direction: codes::direction(&code(&self.Direction, "Direction")?) as i32,
            // Out of range (negative, absurd) is left for validation to refuse with its code.
            speed_kmh: speed as f32,
            plate_char_confidence,
        })
    }

    fn camera_id(&self, context: &MapContext<'_>) -> Result<String, FieldError> {
        let device = self.DeviceID.non_blank("DeviceID")?;
        let tollgate = self.TollgateID.non_blank("TollgateID")?;
        let lane = self.LaneNo.non_blank("LaneNo")?;
        let lane_camera = match (&tollgate, &lane) {
            (Some(tollgate), Some(lane)) => Some(lane_camera_id(tollgate.trim(), lane.trim())),
            _ => None,
        };
        let candidates: Vec<String> = [
            device.map(|d| d.trim().to_string()),
            lane_camera,
            tollgate.map(|t| t.trim().to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        // None registered: the first one, for validation to answer UNKNOWN_CAMERA about it.
        Ok(candidates
            .iter()
            .find(|id| (context.is_camera)(id))
            .or(candidates.first())
            .cloned()
            .unwrap_or_default())
    }

    fn plate(&self) -> Result<String, FieldError> {
        let has_plate = self.HasPlate.text("HasPlate")?;
        if has_plate.is_some_and(|flag| flag.trim() == "0") {
            return Ok(String::new());
        }
        let plate = self.PlateNo.text("PlateNo")?.unwrap_or_default();
        let plate = plate.trim();
        if plate == NO_PLATE {
            return Ok(String::new());
        }
        Ok(plate.replace(UNREADABLE_CHAR, &WILDCARD_CHAR.to_string()))
    }

    fn bbox(&self) -> Result<Option<BoundingBox>, FieldError> {
        let corner = |scalar: &Scalar<'a>, field| -> Result<Option<u32>, FieldError> {
            Ok(scalar
                .number(field)?
                .filter(|n| (0.0..=f64::from(u32::MAX)).contains(n))
                .map(|n| n as u32))
        };
        let (Some(left), Some(top), Some(right), Some(bottom)) = (
            corner(&self.LeftTopX, "LeftTopX")?,
            corner(&self.LeftTopY, "LeftTopY")?,
            corner(&self.RightBtmX, "RightBtmX")?,
            corner(&self.RightBtmY, "RightBtmY")?,
        ) else {
            return Ok(None);
        };
        Ok(Some(BoundingBox {
            x: left,
            y: top,
            width: right.saturating_sub(left),
            height: bottom.saturating_sub(top),
        }))
    }

    fn snapshot(&self, max_bytes: usize) -> Result<Vec<u8>, Error> {
        let Some(list) = &self.SubImageList else {
            return Ok(Vec::new());
        };
        let of_type = |wanted: &str| {
            list.images.iter().find(|image| {
                matches!(&image.Type, Scalar::Text(t) if t.trim() == wanted)
                    || matches!(image.Type, Scalar::Number(n) if n == wanted.parse::<f64>().unwrap_or(-1.0))
            })
        };
        let Some(image) = of_type("01").or_else(|| of_type("02")) else {
            return Ok(Vec::new());
        };
        let data = image
            .Data
            .text("SubImageList.Data")
            .map_err(|e| Error::new(ErrorCode::InvalidField, e.to_string()))?
            .unwrap_or_default();
        // Refuse by length before decoding: base64 holds 3 bytes in every 4 characters.
        let decoded_at_least = data.len() / 4 * 3;
        if decoded_at_least > max_bytes.saturating_add(3) {
            return Err(Error::new(
                ErrorCode::SnapshotTooLarge,
                format!(
                    "the image in SubImageList is about {decoded_at_least} bytes, limit {max_bytes}"
                ),
            ));
        }
        base64::engine::general_purpose::STANDARD
            .decode(data.trim().as_bytes())
            .map_err(|_| Error::new(ErrorCode::InvalidField, "SubImageList.Data is not base64"))
    }
}

/// Camera id of a checkpoint lane registered through `/VIID/Lanes`: `TollgateID-LaneNo`.
pub fn lane_camera_id(tollgate_id: &str, lane_no: &str) -> String {
    format!("{tollgate_id}-{lane_no}")
}

/// The 16-byte event id of a `MotorVehicleID`: the first half of its SHA-256, so a
/// platform's resend of a record is stored once.
pub fn event_id(motor_vehicle_id: &str) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(b"camtrail/gat1400/MotorVehicleID\0")
        .chain_update(motor_vehicle_id.as_bytes())
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    if id == [0; 16] {
        // Not reachable in practice (2^-128); all zeros is not a valid event id.
        id[15] = 1;
    }
    id
}

/// `PlateCharReliability`: `粤-80,B-90,1-95,…`, one character and a 0–100 confidence per
/// item. Values above 255 are kept as 255, for validation to refuse as above 100.
fn char_reliability(text: &str) -> Result<Vec<u8>, Error> {
    let malformed = || {
        Error::new(
            ErrorCode::InvalidField,
            "PlateCharReliability is not a list of character-confidence pairs like 粤-80,B-90",
        )
    };
    text.split(',')
        .map(|item| {
            let (_, value) = item.trim().rsplit_once('-').ok_or_else(malformed)?;
            let value: u32 = value.trim().parse().map_err(|_| malformed())?;
            Ok(value.min(255) as u8)
        })
        .collect()
}

/// One `ResponseStatusObject`: the answer about one object (or about the whole request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct ResponseStatus {
    /// The object's id (`MotorVehicleID`, `TollgateID`, `DeviceID`).
    pub Id: String,
    pub RequestURL: String,
    /// See [`status`].
    pub StatusCode: i32,
    /// `OK`, or `<error code name>: <message>`.
    pub StatusString: String,
    /// `yyyyMMddHHmmss`, the node's clock in its zone.
    pub LocalTime: String,
}

/// `{"ResponseStatusObject": {...}}`: the answer to a one-object request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct ResponseStatusEnvelope {
    pub ResponseStatusObject: ResponseStatus,
}

/// `{"ResponseStatusListObject": {"ResponseStatusObject": [...]}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct ResponseStatusListEnvelope {
    pub ResponseStatusListObject: ResponseStatusList,
}

/// The statuses, one per object, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct ResponseStatusList {
    pub ResponseStatusObject: Vec<ResponseStatus>,
}

/// `{"RegisterObject": {"DeviceID": ...}}` (also `KeepaliveObject`, `UnRegisterObject`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct DeviceObject {
    #[serde(default)]
    pub DeviceID: String,
}

/// Body of `/VIID/System/Register`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct RegisterRequest {
    pub RegisterObject: DeviceObject,
}

/// Body of `/VIID/System/Keepalive`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct KeepaliveRequest {
    pub KeepaliveObject: DeviceObject,
}

/// Body of `/VIID/System/UnRegister`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct UnRegisterRequest {
    pub UnRegisterObject: DeviceObject,
}

/// Answer of `GET /VIID/System/Time`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct SystemTimeEnvelope {
    pub SystemTimeObject: SystemTime,
}

/// The node's clock.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct SystemTime {
    pub VIIDServerID: String,
    /// `1`: the time comes from a synchronised clock (NTP).
    pub TimeMode: String,
    pub LocalTime: String,
    pub TimeZone: String,
}

/// `POST /VIID/Tollgates` body.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct TollgateListRequest {
    pub TollgateListObject: TollgateList,
}

/// The checkpoints of a [`TollgateListRequest`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct TollgateList {
    #[serde(default)]
    pub TollgateObject: Vec<Box<RawValue>>,
}

/// The fields of a `TollgateObject` camtrail reads.
#[derive(Debug, Default, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Tollgate<'a> {
    #[serde(borrow, default)]
    pub TollgateID: Scalar<'a>,
    #[serde(borrow, default)]
    pub Name: Scalar<'a>,
    #[serde(borrow, default)]
    pub Longitude: Scalar<'a>,
    #[serde(borrow, default)]
    pub Latitude: Scalar<'a>,
    /// Administrative division code (GB/T 2260) of where it stands.
    #[serde(borrow, default)]
    pub PlaceCode: Scalar<'a>,
}

/// `POST /VIID/Lanes` body.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct LaneListRequest {
    pub LaneListObject: LaneList,
}

/// The lanes of a [`LaneListRequest`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct LaneList {
    #[serde(default)]
    pub LaneObject: Vec<Box<RawValue>>,
}

/// The fields of a `LaneObject` camtrail reads.
#[derive(Debug, Default, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Lane<'a> {
    #[serde(borrow, default)]
    pub TollgateID: Scalar<'a>,
    #[serde(borrow, default)]
    pub LaneNo: Scalar<'a>,
    #[serde(borrow, default)]
    pub Name: Scalar<'a>,
    #[serde(borrow, default)]
    pub Direction: Scalar<'a>,
}

impl<'a> Tollgate<'a> {
    /// Read one raw `TollgateObject`.
    pub fn decode(raw: &'a RawValue) -> Result<Self, Error> {
        decode_object(raw, "TollgateObject")
    }

    /// `TollgateID`, trimmed (the `Id` of its status answer).
    pub fn id(&self) -> String {
        text_or_empty(&self.TollgateID, "TollgateID")
    }

    /// The registry camera this checkpoint becomes: id `TollgateID`, district the name
    /// `districts` gives its `PlaceCode` (else the code itself), published by `gateway_id`.
    pub fn to_camera(
        &self,
        gateway_id: &str,
        district_of: &dyn Fn(&str) -> String,
    ) -> Result<Camera, Error> {
        let invalid = |error: FieldError| Error::new(ErrorCode::InvalidField, error.to_string());
        let camera_id = self.id();
        if camera_id.is_empty() {
            return Err(Error::new(ErrorCode::InvalidField, "TollgateID is missing"));
        }
        let coordinate = |scalar: &Scalar<'a>, field: &'static str, bound: f64| match scalar
            .number(field)
            .map_err(invalid)?
        {
            Some(value) if value.abs() <= bound => Ok(value),
            Some(_) => Err(Error::new(
                ErrorCode::InvalidField,
                format!("{field} is outside ±{bound} degrees"),
            )),
            None => Err(Error::new(
                ErrorCode::InvalidField,
                format!("{field} is missing"),
            )),
        };
        let lon = coordinate(&self.Longitude, "Longitude", 180.0)?;
        let lat = coordinate(&self.Latitude, "Latitude", 90.0)?;
        let place = text_or_empty(&self.PlaceCode, "PlaceCode");
        Ok(Camera {
            camera_id,
            district: if place.is_empty() {
                "unknown".into()
            } else {
                district_of(&place)
            },
            lat,
            lon,
            heading_deg: 0.0,
            road: text_or_empty(&self.Name, "Name"),
            gateway_id: gateway_id.to_string(),
        })
    }
}

impl<'a> Lane<'a> {
    /// Read one raw `LaneObject`.
    pub fn decode(raw: &'a RawValue) -> Result<Self, Error> {
        decode_object(raw, "LaneObject")
    }

    /// `TollgateID-LaneNo` (the `Id` of its status answer), or empty.
    pub fn id(&self) -> String {
        let tollgate = text_or_empty(&self.TollgateID, "TollgateID");
        let lane = text_or_empty(&self.LaneNo, "LaneNo");
        if tollgate.is_empty() || lane.is_empty() {
            return String::new();
        }
        lane_camera_id(&tollgate, &lane)
    }

    /// The registry camera of this lane: its checkpoint's place, the lane's direction of
    /// travel as heading; `tollgate` is the checkpoint's camera.
    pub fn to_camera(&self, tollgate: &Camera) -> Result<Camera, Error> {
        let camera_id = self.id();
        if camera_id.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidField,
                "TollgateID and LaneNo are required",
            ));
        }
        let direction = codes::direction(&text_or_empty(&self.Direction, "Direction"));
        let name = text_or_empty(&self.Name, "Name");
        Ok(Camera {
            camera_id,
            heading_deg: heading_of(direction),
            road: if name.is_empty() {
                tollgate.road.clone()
            } else {
                format!("{} {name}", tollgate.road)
            },
            ..tollgate.clone()
        })
    }

    /// `TollgateID`, trimmed.
    pub fn tollgate_id(&self) -> String {
        text_or_empty(&self.TollgateID, "TollgateID")
    }
}

/// Heading in degrees of a direction of travel (0 when unknown).
pub fn heading_of(direction: v1::Direction) -> f32 {
    use v1::Direction as D;
    match direction {
        D::Unspecified | D::North => 0.0,
        D::Northeast => 45.0,
        D::East => 90.0,
        D::Southeast => 135.0,
        D::South => 180.0,
        D::Southwest => 225.0,
        D::West => 270.0,
        D::Northwest => 315.0,
    }
}

fn decode_object<'a, T: Deserialize<'a>>(raw: &'a RawValue, name: &str) -> Result<T, Error> {
    serde_json::from_str(raw.get()).map_err(|error| {
        Error::new(
            ErrorCode::InvalidField,
            format!(
                "the {name} does not have the expected shape (near column {})",
                error.column()
            ),
        )
    })
}

fn text_or_empty(scalar: &Scalar<'_>, field: &'static str) -> String {
    scalar
        .text(field)
        .ok()
        .flatten()
        .map(|text| text.trim().to_string())
        .unwrap_or_default()
}
