//! Ground truth: what every simulated subject really did, for scoring reconstructed tracks.
//!
//! Written as JSON Lines, one subject per line:
//! `{"true_plate":"粤B12345","object_class":"vehicle","subject_key":"","route":[{"camera_id":
//! "…","camera_index":12,"true_time_ms":…,"detected":true},…],"event_ids":["<32 hex>",…]}`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use camtrail_model::ObjectClass;
use serde_json::json;

use crate::City;

/// One camera a subject passed, whether or not the camera reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruthStop {
    /// Index into the city's `registry.cameras()`.
    pub camera_index: u32,
    /// When the subject really passed (true clock, no skew or jitter), unix ms.
    pub true_time_ms: i64,
    /// Whether the camera emitted a detection for this pass.
    pub detected: bool,
}

/// One simulated subject (vehicle, person or non-motor vehicle) and its one trip.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthVehicle {
    /// Normalised true plate (e.g. "粤B12345"); empty for persons and non-motor vehicles.
    pub true_plate: String,
    /// What the subject is.
    pub object_class: ObjectClass,
    /// Upstream re-identification key for persons and non-motor vehicles; empty otherwise.
    pub subject_key: String,
    /// Every camera passed, in time order.
    pub route: Vec<TruthStop>,
    /// The intersections driven through, in order (consecutive ones are adjacent).
    pub nodes: Vec<u32>,
    /// Ids of the events emitted for this subject, in emission order.
    pub event_ids: Vec<[u8; 16]>,
}

/// Lower-case name of an object class, as written in the truth file.
pub fn class_name(class: ObjectClass) -> &'static str {
    match class {
        ObjectClass::Vehicle => "vehicle",
        ObjectClass::Person => "person",
        ObjectClass::NonMotor => "non_motor",
    }
}

/// Write `truth` as JSON Lines to `path` (see the module docs for the format).
pub fn write_truth_jsonl(city: &City, truth: &[TruthVehicle], path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let cameras = city.registry.cameras();
    for subject in truth {
        let route: Vec<serde_json::Value> = subject
            .route
            .iter()
            .map(|stop| {
                let camera_id = cameras
                    .get(stop.camera_index as usize)
                    .map(|c| c.camera_id.as_str())
                    .unwrap_or_default();
                json!({
                    "camera_id": camera_id,
                    "camera_index": stop.camera_index,
                    "true_time_ms": stop.true_time_ms,
                    "detected": stop.detected,
                })
            })
            .collect();
        let event_ids: Vec<String> = subject.event_ids.iter().map(hex::encode).collect();
        let line = json!({
            "true_plate": subject.true_plate,
            "object_class": class_name(subject.object_class),
            "subject_key": subject.subject_key,
            "route": route,
            "event_ids": event_ids,
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
