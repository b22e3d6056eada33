//! The traffic generator: an iterator of detection events as the city's cameras would report
//! them, with the ground truth behind them on request.
//!
//! Subjects are simulated one at a time: each makes one trip (see `trip`), every camera it
//! passes reports it with probability `detection_rate`, and the report carries the camera's
//! clock skew (fixed per camera, up to ±[`MAX_CLOCK_SKEW_MS`]), timestamp jitter (up to
//! ±[`MAX_JITTER_MS`]) and, for vehicles, a plate misread with probability `misread_rate`.
//! Events are grouped by subject and time-ordered within one subject only.

use std::sync::Arc;

use camtrail_model::ObjectClass;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::City;
use crate::attributes;
use crate::misread::misread;
use crate::plates::PlateGenerator;
use crate::snapshot::SnapshotCache;
use crate::subject::{Subject, mix64};
use crate::trip::Trip;
use crate::truth::{TruthStop, TruthVehicle};

/// Largest per-camera clock skew, ms (cameras' clocks drift a few seconds).
pub const MAX_CLOCK_SKEW_MS: i64 = 2_000;
/// Largest per-event timestamp jitter, ms.
pub const MAX_JITTER_MS: i64 = 300;

/// What traffic to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficConfig {
    /// Seed; the event stream is a function of the city and this config.
    pub seed: u64,
    /// Start of the simulated window, unix ms. Trips start uniformly in the window.
    pub start_ms: i64,
    /// Length of the window, ms: true pass times lie in [start_ms, start_ms + span_ms);
    /// `captured_at_ms` adds skew and jitter, so it may stray a few seconds outside.
    pub span_ms: i64,
    /// Number of subjects (vehicles, persons, non-motor vehicles), one trip each; the
    /// iterator ends after the last trip. `usize::MAX` for an endless stream.
    pub vehicles: usize,
    /// Share of subjects that are pedestrians (about 5 km/h, no plate).
    pub person_share: f64,
    /// Share of subjects that are bicycles/e-bikes (about 15 km/h, no plate).
    pub non_motor_share: f64,
    /// Probability that a camera reports a subject passing it.
    pub detection_rate: f64,
    /// Probability that a reported plate is misread.
    pub misread_rate: f64,
    /// Share of vehicles with plates from other provinces.
    pub other_province_share: f64,
    /// Share of events carrying a JPEG snapshot (0 disables snapshots).
    pub snapshot_share: f64,
    /// Snapshot width in pixels (height is ¾ of it).
    pub snapshot_px: u32,
    /// The city's province abbreviation.
    pub home_province: char,
    /// The city's issuing-authority letter.
    pub home_authority: char,
}

impl Default for TrafficConfig {
    /// One hour from 2026-01-01T00:00Z, 10,000 subjects, Shenzhen plates (粤B).
    fn default() -> Self {
        Self {
            seed: 7,
            start_ms: 1_767_225_600_000,
            span_ms: 3_600_000,
            vehicles: 10_000,
            person_share: 0.1,
            non_motor_share: 0.1,
            detection_rate: 0.9,
            misread_rate: 0.03,
            other_province_share: 0.12,
            snapshot_share: 0.0,
            snapshot_px: 320,
            home_province: '粤',
            home_authority: 'B',
        }
    }
}

/// One detection as a camera reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticEvent {
    /// Unique 16-byte id: 8 bytes derived from the seed, 8 from the event's sequence number.
    pub event_id: [u8; 16],
    /// Index into `city.registry.cameras()`.
    pub camera_index: u32,
    /// Capture time by the camera's (skewed) clock, unix ms.
    pub captured_at_ms: i64,
    /// What was seen.
    pub object_class: ObjectClass,
    /// Plate as read in display form (e.g. "粤B·12345"), possibly misread; empty for persons
    /// and non-motor vehicles.
    pub plate: String,
    /// Reader confidence in [0, 1]; lower for misreads; 0 without a plate.
    pub plate_confidence: f32,
    /// Upstream re-identification key for persons and non-motor vehicles; else empty.
    pub subject_key: String,
    /// Proto `VehicleColor` number (0 unknown).
    pub vehicle_color: u8,
    /// Proto `VehicleType` number (0 unknown).
    pub vehicle_type: u8,
    /// Box around the subject in a 1920×1080 frame: x, y, width, height.
    pub bbox: [u32; 4],
    /// JPEG snapshot, shared between events with the same class and colour.
    pub snapshot: Option<Arc<[u8]>>,
    /// Proto `PlateColor` number of the true plate (0 without a plate).
    pub plate_color: u8,
    /// Make of the vehicle (empty without a plate).
    pub brand: &'static str,
    /// Direction of travel at the pass, compass degrees (0 north, 90 east, in [0, 360));
    /// the wire's `direction` is its nearest compass point.
    pub heading_deg: f32,
    /// Speed at the pass, km/h (the trip's speed on that segment).
    pub speed_kmh: f32,
    /// Reader's confidence per character of `plate` (separators excluded), 0–100; empty
    /// without a plate. The lowest equals `plate_confidence`; see [`crate::attributes`].
    pub plate_char_confidence: Vec<u8>,
}

/// Iterator of [`SyntheticEvent`]s; finite, it ends after `config.vehicles` trips.
#[derive(Debug)]
pub struct Traffic<'a> {
    city: &'a City,
    config: TrafficConfig,
    rng: ChaCha8Rng,
    plates: PlateGenerator,
    clock_skew_ms: Vec<i32>,
    trips_started: usize,
    trip: Option<(Subject, Trip)>,
    current_truth: Option<TruthVehicle>,
    truth: Option<Vec<TruthVehicle>>,
    event_sequence: u64,
    id_prefix: [u8; 8],
    snapshots: SnapshotCache,
    read_plate: String,
}

impl<'a> Traffic<'a> {
    /// A generator over `city`'s cameras.
    pub fn new(city: &'a City, config: TrafficConfig) -> Self {
        let seed_key = mix64(config.seed ^ 0x7472_6166_6669_6300);
        let clock_skew_ms = (0..city.registry.len() as u64)
            .map(|camera| {
                let bits = mix64(seed_key ^ camera);
                // Sum of two uniforms: most clocks are close, a few are seconds off.
                let a = (bits & 0xFFFF) as i64 * MAX_CLOCK_SKEW_MS / 0xFFFF;
                let b = (bits >> 16 & 0xFFFF) as i64 * MAX_CLOCK_SKEW_MS / 0xFFFF;
                (a - b) as i32
            })
            .collect();
        let plates = PlateGenerator {
            home_province: config.home_province,
            home_authority: config.home_authority,
            other_province_share: config.other_province_share,
        };
        Self {
            city,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            plates,
            clock_skew_ms,
            trips_started: 0,
            trip: None,
            current_truth: None,
            truth: None,
            event_sequence: 0,
            id_prefix: mix64(seed_key).to_be_bytes(),
            snapshots: SnapshotCache::new(config.snapshot_px),
            read_plate: String::with_capacity(16),
            config,
        }
    }

    /// Record the ground truth of every trip (costs memory: about 20 bytes per camera pass).
    pub fn with_truth(mut self) -> Self {
        self.truth = Some(Vec::new());
        self
    }

    /// Take the truth of the trips finished so far (empty unless [`Traffic::with_truth`]);
    /// the trip in progress is returned by a later call.
    pub fn take_truth(&mut self) -> Vec<TruthVehicle> {
        self.truth.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The city this traffic runs in.
    pub fn city(&self) -> &'a City {
        self.city
    }

    /// Begin the next subject's trip; false when all trips are done.
    fn start_trip(&mut self) -> bool {
        let nodes = self.city.roads.nodes.len();
        if self.trips_started >= self.config.vehicles || nodes == 0 {
            return false;
        }
        let index = self.trips_started as u64;
        self.trips_started += 1;
        let subject = Subject::draw(&mut self.rng, &self.config, &self.plates, index);
        let span = self.config.span_ms.max(1) as f64;
        let start_ms = self.config.start_ms as f64 + self.rng.random::<f64>() * span;
        let end_ms = self.config.start_ms as f64 + span;
        let motion = subject.motion(&mut self.rng, self.city.roads.spacing_km);
        let start_node = self.rng.random_range(0..nodes) as u32;
        let record = self.truth.is_some();
        let trip = Trip::new(&mut self.rng, start_node, start_ms, end_ms, motion, record);
        if record {
            self.current_truth = Some(TruthVehicle {
                true_plate: subject.plate_key.clone(),
                object_class: subject.class,
                subject_key: subject.subject_key.clone(),
                route: Vec::new(),
                nodes: Vec::new(),
                event_ids: Vec::new(),
            });
        }
        self.trip = Some((subject, trip));
        true
    }

    /// Close the current trip and file its truth.
    fn finish_trip(&mut self) {
        if let Some((_, trip)) = self.trip.take()
            && let (Some(mut truth), Some(all)) = (self.current_truth.take(), self.truth.as_mut())
        {
            truth.nodes = trip.nodes.unwrap_or_default();
            all.push(truth);
        }
    }

    /// Build the event for a detected pass.
    fn event(
        &mut self,
        subject: &Subject,
        camera_index: u32,
        true_ms: f64,
        (heading_deg, speed_kmh): (f32, f32),
    ) -> SyntheticEvent {
        let sequence = self.event_sequence;
        self.event_sequence += 1;
        let mut event_id = [0u8; 16];
        event_id[..8].copy_from_slice(&self.id_prefix);
        event_id[8..].copy_from_slice(&mix64(sequence).to_be_bytes());
        let bits: u64 = self.rng.random();
        let jitter = (bits & 0x3FF) as i64 % (2 * MAX_JITTER_MS + 1) - MAX_JITTER_MS;
        let skew = i64::from(self.clock_skew_ms[camera_index as usize]);
        let (plate, plate_confidence) = self.read(subject, bits >> 40);
        let snapshot = if self.config.snapshot_share > 0.0
            && self.rng.random::<f64>() < self.config.snapshot_share
        {
            self.snapshots.get(subject.class, subject.color)
        } else {
            None
        };
        let mut plate_char_confidence = Vec::new();
        attributes::char_confidences(
            &plate,
            &subject.plate_display,
            plate_confidence,
            attributes::event_bits(&event_id),
            &mut plate_char_confidence,
        );
        SyntheticEvent {
            event_id,
            camera_index,
            captured_at_ms: true_ms as i64 + skew + jitter,
            object_class: subject.class,
            plate,
            plate_confidence,
            subject_key: subject.subject_key.clone(),
            vehicle_color: subject.color,
            vehicle_type: subject.kind,
            bbox: subject.bbox(bits >> 10),
            snapshot,
            plate_color: subject.plate_color,
            brand: subject.brand,
            heading_deg,
            speed_kmh,
            plate_char_confidence,
        }
    }

    /// The plate as read and the reader's confidence; `bits` are 24 random bits.
    fn read(&mut self, subject: &Subject, bits: u64) -> (String, f32) {
        if subject.plate_display.is_empty() {
            return (String::new(), 0.0);
        }
        let unit = (bits & 0xFFFF) as f32 / 65_536.0;
        if self.rng.random::<f64>() < self.config.misread_rate {
            misread(&subject.plate_display, &mut self.rng, &mut self.read_plate);
            return (self.read_plate.clone(), 0.45 + 0.35 * unit);
        }
        (subject.plate_display.clone(), 0.80 + 0.19 * unit)
    }
}

impl Iterator for Traffic<'_> {
    type Item = SyntheticEvent;

    fn next(&mut self) -> Option<SyntheticEvent> {
        loop {
            if self.trip.is_none() && !self.start_trip() {
                return None;
            }
            // Taken out and put back so the subject can be read while `self` is mutated.
            let (subject, mut trip) = self.trip.take()?;
            let Some((camera, true_ms)) = trip.next_pass(self.city, &mut self.rng) else {
                self.trip = Some((subject, trip));
                self.finish_trip();
                continue;
            };
            let detected = self.rng.random::<f64>() < self.config.detection_rate;
            let movement = trip.movement(self.city);
            let event = detected.then(|| self.event(&subject, camera, true_ms, movement));
            self.trip = Some((subject, trip));
            if let Some(truth) = &mut self.current_truth {
                let true_time_ms = true_ms as i64;
                truth.route.push(TruthStop {
                    camera_index: camera,
                    true_time_ms,
                    detected,
                });
                if let Some(event) = &event {
                    truth.event_ids.push(event.event_id);
                }
            }
            if event.is_some() {
                return event;
            }
        }
    }
}

#[cfg(test)]
#[path = "traffic_tests.rs"]
mod tests;
