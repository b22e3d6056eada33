//! What storage hands the track builder ([`RawSighting`]) and what a track is made of
//! ([`TrackSighting`], [`Dropped`]).

use std::cmp::Ordering;

use camtrail_model::{Camera, EventId, ObjectClass, VehicleAttributes};
use serde::{Serialize, Serializer};

/// How a sighting's subject key relates to what the investigator asked for. Ordered best
/// first (`Exact < Pattern < Fuzzy`): dedup and burst collapse keep the smaller one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The key is the asked (normalised) plate or subject key.
    Exact,
    /// The key matches the asked wildcard pattern.
    Pattern,
    /// The key is a plausible misreading of the asked plate
    /// ([`crate::track::misread_variants`]); kept only where it fits the track.
    Fuzzy,
}

impl MatchKind {
    /// Whether the track builder must check that a sighting of this kind fits the others.
    /// Exact and pattern matches are what was asked for; a fuzzy match is a guess.
    pub fn is_anchor(self) -> bool {
        self != Self::Fuzzy
    }
}

/// One detection as read from storage for a track query.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSighting {
    /// Idempotency key; storage may return an event more than once.
    pub event_id: EventId,
    /// Registry camera id.
    pub camera_id: String,
    /// Capture instant, unix ms UTC (camera clock).
    pub captured_at_ms: i64,
    /// The stored subject key (normalised plate or upstream key).
    pub subject_key: String,
    /// Plate as read.
    pub plate: String,
    /// Reader confidence, 0–1.
    pub plate_confidence: f32,
    /// What was seen.
    pub object_class: ObjectClass,
    /// Whether a snapshot is stored for the event.
    pub has_snapshot: bool,
    /// How the key matched the query.
    pub match_kind: MatchKind,
    /// How sure the match is, 0–1 (1 for exact; see [`crate::track::fuzzy`] for misreads).
    /// Values outside 0–1 are clamped and NaN counts as 0.
    pub match_confidence: f32,
    /// Vehicle attributes as stored (carried to the answer; the track logic ignores them).
    pub attributes: VehicleAttributes,
    /// Reader's confidence per plate character, 0–100 (empty when unknown).
    pub plate_char_confidence: Vec<u8>,
}

/// A sighting of the track: a detection joined with its camera, possibly standing for a burst
/// of detections at that camera.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackSighting {
    /// The representative event (the best match of its burst).
    #[serde(serialize_with = "serialize_event_id")]
    pub event_id: EventId,
    /// Registry camera id.
    pub camera_id: String,
    /// District of the camera.
    pub district: String,
    /// Road or intersection of the camera.
    pub road: String,
    /// Camera latitude, WGS84 degrees.
    pub lat: f64,
    /// Camera longitude, WGS84 degrees.
    pub lon: f64,
    /// Capture instant of the representative event, unix ms UTC.
    pub captured_at_ms: i64,
    /// The stored subject key.
    pub subject_key: String,
    /// Plate as read.
    pub plate: String,
    /// Reader confidence, 0–1.
    pub plate_confidence: f32,
    /// What was seen.
    #[serde(serialize_with = "serialize_object_class")]
    pub object_class: ObjectClass,
    /// Whether a snapshot is stored for the representative event.
    pub has_snapshot: bool,
    /// How the key matched the query.
    pub match_kind: MatchKind,
    /// How sure the match is, 0–1.
    pub match_confidence: f32,
    /// Detections this sighting stands for (1 when there was no burst).
    pub burst_count: u32,
    /// First capture instant of the burst, unix ms.
    pub burst_start_ms: i64,
    /// Last capture instant of the burst, unix ms.
    pub burst_end_ms: i64,
    /// Vehicle attributes of the representative event. Not in this type's serde form: the
    /// APIs name them through [`crate::attributes::AttributesJson`].
    #[serde(skip)]
    pub attributes: VehicleAttributes,
    /// Reader's confidence per plate character of the representative event (serialised
    /// with [`Self::attributes`]).
    #[serde(skip)]
    pub plate_char_confidence: Vec<u8>,
}

/// Why an input sighting is not in the track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Another copy of the same event was kept (the better match).
    Duplicate,
    /// Part of a burst at one camera; `merged_into` names the kept sighting.
    MergedIntoBurst,
    /// Its camera is not in the registry.
    UnknownCamera,
    /// A misread candidate that is not reachable from the exact track at a plausible speed.
    FuzzyDoesNotFit,
    /// Past [`crate::track::TrackParams::max_sightings`]; the track is truncated.
    BeyondLimit,
    /// Read as (or like) the asked plate, but a look-alike vehicle's own track explains it
    /// far better: probably that vehicle, misread. `attributed_to` names its plate.
    AttributedToLookAlike,
}

impl DropReason {
    /// The snake_case name the APIs use (HTTP through serde, gRPC's `DroppedSighting.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::MergedIntoBurst => "merged_into_burst",
            Self::UnknownCamera => "unknown_camera",
            Self::FuzzyDoesNotFit => "fuzzy_does_not_fit",
            Self::BeyondLimit => "beyond_limit",
            Self::AttributedToLookAlike => "attributed_to_look_alike",
        }
    }
}

/// An input sighting left out of the track, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// The event.
    #[serde(serialize_with = "serialize_event_id")]
    pub event_id: EventId,
    /// Its camera id as stored.
    pub camera_id: String,
    /// Its capture instant, unix ms.
    pub captured_at_ms: i64,
    /// Why it was left out.
    pub reason: DropReason,
    /// For [`DropReason::MergedIntoBurst`], the event of the sighting that stands for it.
    #[serde(serialize_with = "serialize_optional_event_id")]
    pub merged_into: Option<EventId>,
    /// For [`DropReason::AttributedToLookAlike`], the plate key of the vehicle it was
    /// attributed to.
    pub attributed_to: Option<String>,
}

impl Dropped {
    /// Record `raw` as dropped for `reason`.
    pub fn new(raw: &RawSighting, reason: DropReason) -> Self {
        Self {
            event_id: raw.event_id,
            camera_id: raw.camera_id.clone(),
            captured_at_ms: raw.captured_at_ms,
            reason,
            merged_into: None,
            attributed_to: None,
        }
    }

    /// Record a kept-then-removed sighting as dropped for `reason`.
    pub fn from_sighting(sighting: &TrackSighting, reason: DropReason) -> Self {
        Self {
            event_id: sighting.event_id,
            camera_id: sighting.camera_id.clone(),
            captured_at_ms: sighting.captured_at_ms,
            reason,
            merged_into: None,
            attributed_to: None,
        }
    }

    /// Deterministic order for the output: by time, then event, then the rest.
    pub(crate) fn output_order(&self, other: &Self) -> Ordering {
        (
            self.captured_at_ms,
            self.event_id,
            self.reason,
            &self.camera_id,
            self.merged_into,
            &self.attributed_to,
        )
            .cmp(&(
                other.captured_at_ms,
                other.event_id,
                other.reason,
                &other.camera_id,
                other.merged_into,
                &other.attributed_to,
            ))
    }
}

impl TrackSighting {
    /// Join a raw sighting with its camera; a burst of one.
    pub fn new(raw: RawSighting, camera: &Camera) -> Self {
        Self {
            event_id: raw.event_id,
            camera_id: raw.camera_id,
            district: camera.district.clone(),
            road: camera.road.clone(),
            lat: camera.lat,
            lon: camera.lon,
            captured_at_ms: raw.captured_at_ms,
            subject_key: raw.subject_key,
            plate: raw.plate,
            plate_confidence: raw.plate_confidence,
            object_class: raw.object_class,
            has_snapshot: raw.has_snapshot,
            match_kind: raw.match_kind,
            match_confidence: raw.match_confidence,
            burst_count: 1,
            burst_start_ms: raw.captured_at_ms,
            burst_end_ms: raw.captured_at_ms,
            attributes: raw.attributes,
            plate_char_confidence: raw.plate_char_confidence,
        }
    }

    /// Track order: capture time, then event id (unique in a track, so the order is total).
    pub(crate) fn time_order(&self, other: &Self) -> Ordering {
        (self.captured_at_ms, self.event_id).cmp(&(other.captured_at_ms, other.event_id))
    }

    /// Which of two sightings better represents a burst: `Less` means `self` is better.
    /// Best match kind, then match confidence, then a snapshot, then reader confidence, then
    /// the earlier one.
    pub(crate) fn representative_order(&self, other: &Self) -> Ordering {
        self.match_kind
            .cmp(&other.match_kind)
            .then(other.match_confidence.total_cmp(&self.match_confidence))
            .then(other.has_snapshot.cmp(&self.has_snapshot))
            .then(other.plate_confidence.total_cmp(&self.plate_confidence))
            .then(self.time_order(other))
    }
}

/// Clamp a confidence into 0–1; NaN becomes 0 so comparisons stay total and meaningful.
pub(crate) fn clamp_confidence(value: f32) -> f32 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// Which of two copies of one event to keep: `Less` means `a` is better. Best match kind,
/// then match confidence; the remaining fields only break ties so that the choice does not
/// depend on input order.
pub(crate) fn copy_preference(a: &RawSighting, b: &RawSighting) -> Ordering {
    a.match_kind
        .cmp(&b.match_kind)
        .then(b.match_confidence.total_cmp(&a.match_confidence))
        .then(b.plate_confidence.total_cmp(&a.plate_confidence))
        .then(b.has_snapshot.cmp(&a.has_snapshot))
        .then(a.captured_at_ms.cmp(&b.captured_at_ms))
        .then_with(|| a.camera_id.cmp(&b.camera_id))
        .then_with(|| a.subject_key.cmp(&b.subject_key))
        .then_with(|| a.plate.cmp(&b.plate))
        .then(a.object_class.code().cmp(&b.object_class.code()))
}

/// Events as 32 lower-case hex digits, the form the HTTP API and audit log use.
fn serialize_event_id<S: Serializer>(id: &EventId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&id.to_hex())
}

fn serialize_optional_event_id<S: Serializer>(
    id: &Option<EventId>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => serializer.serialize_some(&id.to_hex()),
        None => serializer.serialize_none(),
    }
}

/// Object classes by name (`vehicle`, `person`, `non_motor`), as in the HTTP API.
fn serialize_object_class<S: Serializer>(
    class: &ObjectClass,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match class {
        ObjectClass::Vehicle => "vehicle",
        ObjectClass::Person => "person",
        ObjectClass::NonMotor => "non_motor",
    })
}

#[cfg(test)]
mod drop_reason_tests {
    use super::DropReason;

    #[test]
    fn the_name_is_the_serialized_one() {
        for reason in [
            DropReason::Duplicate,
            DropReason::MergedIntoBurst,
            DropReason::UnknownCamera,
            DropReason::FuzzyDoesNotFit,
            DropReason::BeyondLimit,
            DropReason::AttributedToLookAlike,
        ] {
            assert_eq!(
                serde_json::to_value(reason).ok(),
                Some(serde_json::Value::from(reason.as_str()))
            );
        }
    }
}
