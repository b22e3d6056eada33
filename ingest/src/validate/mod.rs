//! Per-event validation at the ingest door (ARCHITECTURE.md, guarantee 5: bad input gets a clear
//! error, never a crash or a silent drop).
//!
//! - [`limits`]: [`ValidationLimits`], the `[ingest.validation]` config section.
//! - `event`: the checks of one event, in order, and the [`Detection`] they build.
//! - `text`: UTF-8, length and character checks of text fields.
//! - [`snapshot`]: [`make_thumbnail`]: JPEG checks, bomb defence, re-encoding.
//! - `jpeg_frame`: what decoding a JPEG would cost, read from its frame header.
//!
//! Every event of a batch ends up either in [`ValidatedBatch::accepted`] or as one
//! [`Rejection`] with its index, a [`RejectionCode`] (the wire form of the event's
//! [`ErrorCode`], the same code every transport uses) and a lower-case message. Messages
//! never contain plate text or subject keys (personal data, and acks end up in gateway
//! logs); they may name a registered-looking camera id.
//!
//! Decisions beyond the proto docs:
//! - **Subject key.** The upstream `subject_key`, trimmed, when set; otherwise
//!   `camtrail_model::plate::normalize(plate)`; the plate itself is stored as read.
//! - **Which events need a key.** Only `VEHICLE`: without a readable plate (empty after
//!   normalising) and without `subject_key` it is `MISSING_PLATE`, as the proto says. A
//!   `PERSON` or `NON_MOTOR` event without either is *accepted* with an empty subject key:
//!   it cannot join a track, but it is still a record of "something passed this camera at
//!   this time" for `detections_by_hour` queries, and rejecting it would make a gateway
//!   without re-identification look broken. Readers must treat the empty key as "no
//!   subject", never look it up as one.
//! - **Unknown vehicle colour/type numbers** are `INVALID_CLASS` (the proto's "another enum
//!   field holds an unknown value"); UNSPECIFIED (0) is accepted.
//! - **Empty camera id** is `UNKNOWN_CAMERA`; a malformed one (over-long, not printable
//!   ASCII) is `INVALID_TEXT`, and its text is not echoed.
//! - **Text checks** happen before trimming: a control character, a bidirectional override
//!   or another invisible formatting character ([`camtrail_model::text`]) anywhere (including a
//!   trailing newline) is `INVALID_TEXT`, and the byte limit applies to the field as sent.
//! - The first failing check decides the code; the snapshot is checked last, so an event
//!   that fails anything else never costs a decode.

mod event;
mod jpeg_frame;
pub mod limits;
pub mod snapshot;
mod text;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
pub(crate) mod fuzz;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use camtrail_model::{CameraEntry, CameraRegistry, Detection, ErrorCode};
use camtrail_proto::convert::rejection_code;
use camtrail_proto::v1::{Rejection, RejectionCode};
use camtrail_proto::wire::{RawDetectionEvent, RawEventBatch};

pub use limits::ValidationLimits;
pub use snapshot::make_thumbnail;

/// Why one event was rejected: a per-event [`ErrorCode`] (one the wire's
/// [`RejectionCode`] has) and a lower-case message for the gateway's operator, never plate
/// text or subject keys.
pub type EventRejection = camtrail_model::Error;

/// The outcome of validating one batch: every event either accepted or rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedBatch {
    /// Echo of `EventBatch.batch_seq`.
    pub batch_seq: u64,
    /// Accepted events, in batch order, ready to publish.
    pub accepted: Vec<Detection>,
    /// One entry per rejected event, in batch order (`index` into the batch's events).
    pub rejections: Vec<Rejection>,
    /// Number of events in the batch: `accepted.len() + rejections.len()`.
    pub events_in_batch: usize,
}

impl ValidatedBatch {
    /// Rejected events counted per code, codes in ascending order (for metrics: count once
    /// per batch, not per event).
    pub fn rejected_by_code(&self) -> impl Iterator<Item = (RejectionCode, usize)> + use<> {
        let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
        for rejection in &self.rejections {
            *counts.entry(rejection.code).or_default() += 1;
        }
        counts.into_iter().map(|(code, count)| {
            (
                RejectionCode::try_from(code).unwrap_or(RejectionCode::Unspecified),
                count,
            )
        })
    }
}

/// Validates events against the [`ValidationLimits`] and the camera registry.
///
/// The registry can be replaced while the node runs (GA/T 1400 `/VIID/Tollgates`): each
/// batch is checked against the registry current when its validation starts.
#[derive(Debug)]
pub struct Validator {
    limits: ValidationLimits,
    registry: RwLock<Arc<CameraRegistry>>,
}

impl Validator {
    /// A validator for `limits` (already checked by [`ValidationLimits::validate`]) and the
    /// camera registry.
    pub fn new(limits: ValidationLimits, registry: Arc<CameraRegistry>) -> Self {
        Self {
            limits,
            registry: RwLock::new(registry),
        }
    }

    /// The registry in force.
    pub fn registry(&self) -> Arc<CameraRegistry> {
        Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Validate later batches against `registry`.
    pub fn replace_registry(&self, registry: Arc<CameraRegistry>) {
        *self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = registry;
    }

    /// The limits in force.
    pub fn limits(&self) -> &ValidationLimits {
        &self.limits
    }

    /// Validate every event of a batch from an authenticated gateway. CPU-heavy when
    /// snapshots are present (decode + re-encode): callers run it in `spawn_blocking`.
    /// Does not check `batch.gateway_id` against `gateway_id`; the service does that first.
    pub fn validate_batch(
        &self,
        gateway_id: &str,
        batch: RawEventBatch,
        now_ms: i64,
    ) -> ValidatedBatch {
        let events_in_batch = batch.events.len();
        let mut accepted = Vec::with_capacity(events_in_batch);
        let mut rejections = Vec::new();
        let registry = self.registry();
        let gateway = (gateway_id, registry.gateway(gateway_id));
        // All cameras are looked up first, in a loop that does nothing else: the lookups are
        // independent, so the CPU overlaps their cache misses (one per event into a table
        // of 140,000 cameras) instead of waiting for each between the other checks.
        let cameras: Vec<Option<CameraEntry>> = batch
            .events
            .iter()
            .map(|event| event::camera_entry(&registry, &event.camera_id))
            .collect();
        for (index, (event, camera)) in batch.events.into_iter().zip(cameras).enumerate() {
            match event::validate_event(&self.limits, camera, gateway, event, now_ms) {
                Ok(detection) => accepted.push(detection),
                Err(rejection) => rejections.push(Rejection {
                    // Batches are capped far below u32::MAX events by the message size.
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    code: wire_code(rejection.code) as i32,
                    message: rejection.message,
                }),
            }
        }
        ValidatedBatch {
            batch_seq: batch.batch_seq,
            accepted,
            rejections,
            events_in_batch,
        }
    }

    /// Validate one event: the [`Detection`] to store (normalised subject key, thumbnail
    /// instead of the snapshot, `received_at_ms = now_ms`), or why it is rejected.
    pub fn validate_event(
        &self,
        gateway_id: &str,
        event: RawDetectionEvent,
        now_ms: i64,
    ) -> Result<Detection, EventRejection> {
        let registry = self.registry();
        let gateway = (gateway_id, registry.gateway(gateway_id));
        let camera = event::camera_entry(&registry, &event.camera_id);
        event::validate_event(&self.limits, camera, gateway, event, now_ms)
    }
}

/// The wire code of a per-event error code (UNSPECIFIED for a code that is not about one
/// event, which validation never produces).
fn wire_code(code: ErrorCode) -> RejectionCode {
    rejection_code(code).unwrap_or(RejectionCode::Unspecified)
}

#[cfg(test)]
mod tests;
