//! Planted cases with ground truth for investigative analytics — scene search, series of
//! scenes and co-travel — among several days of ordinary traffic that crosses the same
//! places by chance. A pure function of the city and an [`InvestigationConfig`]: the same
//! config gives the same events, byte for byte.
//!
//! **How it is built.** [`Traffic`] simulates a pool of one-trip cars over one day's traffic
//! hours ([`TRAFFIC_FROM_MS`]..[`TRAFFIC_TO_MS`] after `start_ms`) with every pass reported
//! and read right, which gives each trip's *true* camera passes (camera, true time, the
//! camera clock's offset, heading, speed, box). The trips are then handed out to vehicles
//! and shifted in time; every pass a vehicle makes is reported here with probability
//! [`InvestigationConfig::detection_rate`] and misread with probability
//! [`InvestigationConfig::misread_rate`] (drawn per vehicle per pass, the misread from the
//! shared table by [`crate::misread::misread`]):
//!
//! 1. **Scenes** ([`Scene`], [`InvestigationConfig::scenes`] of them): scene *i* lies on day
//!    *i* mod `days`. Of [`SCENE_CANDIDATES`] random passes of pool trips with a time of day
//!    in [`SCENE_FROM_MS`]..=[`SCENE_TO_MS`], the busiest (most pool trips passing within
//!    the radius within the window) gives the scene its centre (that camera) and the centre
//!    of its window ([`InvestigationConfig::scene_window_ms`]); its trip becomes a
//!    background vehicle of that day, so chance traffic passes every scene. The radius is
//!    [`InvestigationConfig::scene_radius_m`]. Inside = great-circle distance
//!    ([`great_circle_m`]) ≤ radius; the window is half-open, `from_ms <= captured_at_ms <
//!    to_ms`.
//! 2. **Series vehicles** ([`SeriesTruth`]): each visits every scene. For each scene it
//!    drives a whole pool trip that passes a camera within [`SERIES_NEAR_SHARE`] × radius of
//!    the centre, shifted so that this pass falls inside the window (at least a minute from
//!    either end; the 0.8 keeps the truth clear of boundary rounding). If the vehicle would
//!    have no reported pass read right inside the scene, or the trip would overlap another of
//!    its trips, another trip is drawn.
//! 3. **Convoys** ([`ConvoyTruth`]): a target drives [`InvestigationConfig::convoy_trips`]
//!    short pool trips on one day (target *c* on day *c* mod `days`), spread over 07:00–20:00
//!    (one per equal slot), chosen so it passes about 45–88 cameras (40–80 sightings). Each
//!    companion drives exactly the target's camera passes, `lag` behind: the lag starts
//!    uniform in [`InvestigationConfig::lag_min_ms`]..=[`InvestigationConfig::lag_max_ms`] at
//!    each trip's start and then moves by a uniform step of at most
//!    ±[`InvestigationConfig::lag_step_ms`] per pass, reflected at the bounds (and never so
//!    far down that the companion would pass a camera before its previous one). The
//!    companion is timed by the same camera clocks, so where both are reported its report is
//!    exactly `lag` after the target's; lags above 60 s occur, and such passes do not count
//!    for a ±60 s co-travel search. A companion is redrawn (up to 20 times, the last draw is
//!    kept) until it is reported read right at at least [`MIN_CO_TRAVEL_CAMERAS`] distinct
//!    cameras where the target was reported read right at most [`CO_TRAVEL_WINDOW_MS`]
//!    earlier; [`ConvoyTruth::matched_cameras`] says how many there are. Its heading and
//!    speed are the target's at each pass; its colour, type, plate and box position its own.
//! 4. **Regulars**: commuters driving the same pool trip (one passing at least 10 cameras)
//!    every day, shifted by a uniform ±[`REGULAR_JITTER_MS`] per day.
//! 5. **Background**: [`InvestigationConfig::background_trips_per_day`] one-trip vehicles per
//!    day (the scenes' trips among them), each with its own plate.
//!
//! **Plates.** Every vehicle has its own plate, the same on all its trips and days: regulars
//! and background keep their pool trip's plate; series vehicles, targets and companions take
//! the plate, colour and type of an otherwise unused pool trip. A trip whose plate another
//! vehicle already carries is left out, so no two vehicles share a plate. Plates are in
//! display form ("粤B·12345"); a misread has confidence 0.45–0.80, a right read 0.80–0.99,
//! and per-character confidences follow [`crate::attributes::char_confidences`], as in the
//! traffic generator.
//!
//! **Times and ids.** `captured_at_ms` = true time + the camera clock offset (skew and
//! jitter) the pool recorded for that pass, so a regular's jitter at a camera repeats from
//! day to day. Event ids: 8 bytes from the seed + a bijective mix of a sequence number,
//! unique over the set. Events come sorted by `(captured_at_ms, event_id)`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;

use camtrail_model::ObjectClass;
use camtrail_model::plate::normalize;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::City;
use crate::attributes;
use crate::misread::misread;
use crate::scenario::display_of;
use crate::subject::mix64;
use crate::traffic::{SyntheticEvent, Traffic, TrafficConfig};

/// One day, ms.
pub const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
/// Pool trips start at or after this time of day (ms after the start of a day)…
pub const TRAFFIC_FROM_MS: i64 = 6 * HOUR_MS;
/// …and before this one; a trip still driving then ends there.
pub const TRAFFIC_TO_MS: i64 = 22 * HOUR_MS;
/// Scene windows are centred at or after this time of day…
pub const SCENE_FROM_MS: i64 = 7 * HOUR_MS;
/// …and at or before this one.
pub const SCENE_TO_MS: i64 = 21 * HOUR_MS;
/// Earth radius for [`great_circle_m`], km (IUGG mean radius).
pub const EARTH_RADIUS_KM: f64 = 6_371.008_8;
/// A series trip passes a camera within this share of the scene radius.
pub const SERIES_NEAR_SHARE: f64 = 0.8;
/// Co-travel: a companion's report counts when it comes at most this long after the
/// target's report at the same camera.
pub const CO_TRAVEL_WINDOW_MS: i64 = 60_000;
/// Co-travel: a companion is planted so that it counts at this many distinct cameras.
pub const MIN_CO_TRAVEL_CAMERAS: usize = 4;
/// A regular's trip moves by at most this much from day to day, ms.
pub const REGULAR_JITTER_MS: i64 = 20 * MINUTE_MS;

/// Regulars drive trips passing at least this many cameras, so they are seen every day.
const REGULAR_MIN_PASSES: usize = 10;
/// Convoy trips are spread over this part of the day.
const CONVOY_FROM_MS: i64 = 7 * HOUR_MS;
const CONVOY_TO_MS: i64 = 20 * HOUR_MS;
/// A target passes about this many cameras over its day, in all its convoy trips.
const CONVOY_PASSES: Range<usize> = 45..89;
/// Trips of one vehicle on one day stay at least this far apart.
const TRIP_GAP_MS: i64 = 10 * MINUTE_MS;
/// Width of the frame bounding boxes refer to, px.
const FRAME_WIDTH: u32 = 1920;
/// Random passes a scene's place is chosen from.
pub const SCENE_CANDIDATES: usize = 8;
/// Tries per series scene and per companion before giving up.
const ATTEMPTS: usize = 20;

/// Great-circle (haversine) distance in metres between two points in degrees, on a sphere of
/// radius [`EARTH_RADIUS_KM`]: the distance scene membership is decided by.
pub fn great_circle_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (lon2 - lon1).to_radians() / 2.0;
    let h = half_dphi.sin().powi(2) + phi1.cos() * phi2.cos() * half_dlambda.sin().powi(2);
    2.0 * EARTH_RADIUS_KM * 1000.0 * h.clamp(0.0, 1.0).sqrt().asin()
}

/// What investigation set to build. [`Default`]: five days, about 0.9 M events.
#[derive(Debug, Clone, PartialEq)]
pub struct InvestigationConfig {
    /// Seed of the pool and of every choice made here.
    pub seed: u64,
    /// Start of day 0, unix ms; times of day count from here.
    pub start_ms: i64,
    /// Number of days (at least 1).
    pub days: u32,
    /// One-trip vehicles per day, each with its own plate.
    pub background_trips_per_day: usize,
    /// Commuters: the same trip every day at about the same time.
    pub regulars: usize,
    /// Number of scenes; scene `i` is on day `i % days`.
    pub scenes: usize,
    /// Scene radius, m.
    pub scene_radius_m: f64,
    /// Length of a scene's window, ms.
    pub scene_window_ms: i64,
    /// Vehicles that visit every scene.
    pub series_vehicles: usize,
    /// Vehicles followed by companions on one day.
    pub convoy_targets: usize,
    /// Companions per target.
    pub companions_per_target: usize,
    /// Trips a target makes on its day.
    pub convoy_trips: usize,
    /// Smallest lag of a companion behind its target, ms.
    pub lag_min_ms: i64,
    /// Largest lag of a companion behind its target, ms.
    pub lag_max_ms: i64,
    /// Largest change of the lag from one camera pass to the next, ms.
    pub lag_step_ms: i64,
    /// Probability that a camera reports a passing vehicle.
    pub detection_rate: f64,
    /// Probability that a reported plate is misread.
    pub misread_rate: f64,
}

impl Default for InvestigationConfig {
    fn default() -> Self {
        let start_ms = TrafficConfig::default().start_ms;
        Self {
            seed: 1400,
            start_ms: start_ms - start_ms.rem_euclid(DAY_MS),
            days: 5,
            background_trips_per_day: 1_000,
            regulars: 600,
            scenes: 5,
            scene_radius_m: 1_000.0,
            scene_window_ms: 2 * HOUR_MS,
            series_vehicles: 12,
            convoy_targets: 20,
            companions_per_target: 1,
            convoy_trips: 3,
            lag_min_ms: 5_000,
            lag_max_ms: 90_000,
            lag_step_ms: 8_000,
            detection_rate: 0.9,
            misread_rate: 0.03,
        }
    }
}

/// A place and time to ask "who passed here then?".
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Centre longitude, degrees (a camera's position).
    pub lon: f64,
    /// Centre latitude, degrees.
    pub lat: f64,
    /// Radius, m: cameras with [`great_circle_m`] to the centre ≤ this are inside.
    pub radius_m: f64,
    /// Window start, unix ms (inclusive, on `captured_at_ms`).
    pub from_ms: i64,
    /// Window end, unix ms (exclusive).
    pub to_ms: i64,
    /// The day it lies on (0-based).
    pub day: u32,
    /// True plates (normalised, sorted) of every vehicle with at least one reported event
    /// inside the circle within the window, read right or not.
    pub vehicles: Vec<String>,
}

/// A vehicle seen at every scene.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTruth {
    /// Its plate, normalised ([`camtrail_model::plate::normalize`]).
    pub key: String,
    /// Per scene: ids of its reported events inside that scene (circle and window), misreads
    /// included, sorted by `(captured_at_ms, event_id)`; never without one read right.
    pub visits: Vec<Vec<[u8; 16]>>,
}

/// A target and the vehicles that follow it through one day.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvoyTruth {
    /// The target's plate, normalised.
    pub target_key: String,
    /// Its companions' plates, normalised.
    pub companion_keys: Vec<String>,
    /// Start of the target's day, unix ms.
    pub from_ms: i64,
    /// End of the target's day, unix ms (exclusive).
    pub to_ms: i64,
    /// The target's reported events read right (what a lookup of its plate finds).
    pub target_events: usize,
    /// Per companion: distinct cameras where it is reported read right 0 <
    /// Δ ≤ [`CO_TRAVEL_WINDOW_MS`] after a report of the target read right.
    pub matched_cameras: Vec<usize>,
}

/// What part a vehicle plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One trip on one day.
    Background {
        /// The day (0-based).
        day: u32,
    },
    /// The same trip every day.
    Regular,
    /// Visits every scene ([`InvestigationCity::series`]).
    Series,
    /// Followed by companions ([`InvestigationCity::convoys`]).
    ConvoyTarget {
        /// Index into [`InvestigationCity::convoys`].
        convoy: usize,
    },
    /// Follows a target.
    Companion {
        /// Index into [`InvestigationCity::convoys`].
        convoy: usize,
    },
}

/// One vehicle of the set.
#[derive(Debug, Clone, PartialEq)]
pub struct InvestigationVehicle {
    /// Its plate, normalised; no other vehicle has it.
    pub key: String,
    /// What part it plays.
    pub role: Role,
    /// Ids of all its events, misreads included.
    pub event_ids: Vec<[u8; 16]>,
}

/// Counts describing one built set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvestigationStats {
    /// Events in all.
    pub events: usize,
    /// Of which misread.
    pub misreads: usize,
    /// Events per day (by `captured_at_ms`; stragglers past the last day count in it).
    pub events_per_day: Vec<usize>,
    /// Trips the pool simulated that pass at least one camera.
    pub pool_trips: usize,
    /// Of which left over: nobody drives them and they gave no plate.
    pub unused_trips: usize,
    /// Background vehicles (one trip each).
    pub background: usize,
    /// Regulars.
    pub regulars: usize,
    /// Series vehicles built (fewer than asked if scenes lacked trips).
    pub series: usize,
    /// Convoy targets built.
    pub convoy_targets: usize,
    /// Companions built.
    pub companions: usize,
    /// Per scene: vehicles with a reported event inside, series vehicles excluded (the
    /// chance traffic a series query must see through).
    pub scene_chance_vehicles: Vec<usize>,
    /// Per scene: of those, regulars.
    pub scene_chance_regulars: Vec<usize>,
    /// Per scene: distinct plates as read (normalised, misreads included) of the chance
    /// traffic.
    pub scene_chance_plates: Vec<usize>,
}

/// A built investigation set: the events to store and the planted answers.
#[derive(Debug, Clone, PartialEq)]
pub struct InvestigationCity {
    /// Every event, sorted by `(captured_at_ms, event_id)`; ids are unique.
    pub events: Vec<SyntheticEvent>,
    /// The scenes, in order (scene `i` on day `i % days`).
    pub scenes: Vec<Scene>,
    /// The series vehicles.
    pub series: Vec<SeriesTruth>,
    /// The convoys.
    pub convoys: Vec<ConvoyTruth>,
    /// Every vehicle: series, convoy targets and their companions, regulars, background.
    pub vehicles: Vec<InvestigationVehicle>,
    /// What was built.
    pub stats: InvestigationStats,
}

impl InvestigationCity {
    /// Index (into `vehicles`) of the vehicle that caused each event.
    pub fn owners(&self) -> HashMap<[u8; 16], usize> {
        let mut owners = HashMap::with_capacity(self.events.len());
        for (index, vehicle) in self.vehicles.iter().enumerate() {
            for id in &vehicle.event_ids {
                owners.insert(*id, index);
            }
        }
        owners
    }

    /// Build the set in `city` (see the module documentation). Deterministic: the same city
    /// and config give the same events and truth. When the pool runs short, fewer planted
    /// vehicles are built; [`InvestigationCity::stats`] says how many.
    pub fn generate(city: &City, config: InvestigationConfig) -> Self {
        let config = InvestigationConfig {
            days: config.days.max(1),
            scene_window_ms: config.scene_window_ms.max(2),
            lag_min_ms: config.lag_min_ms.max(0),
            lag_max_ms: config.lag_max_ms.max(config.lag_min_ms.max(0)),
            lag_step_ms: config.lag_step_ms.max(0),
            convoy_trips: config.convoy_trips.max(1),
            ..config
        };
        let pool = Pool::generate(city, &config);
        let mut builder = Builder::new(city, &config, pool);
        builder.reserve();
        builder.scenes();
        builder.series();
        builder.convoys();
        builder.regulars();
        builder.background();
        builder.finish()
    }
}

/// One true camera pass of a pool trip.
#[derive(Debug, Clone, Copy)]
struct Pass {
    camera: u32,
    /// True time on day 0, unix ms.
    true_ms: i64,
    /// The camera clock's skew plus jitter at this pass: captured − true, ms.
    clock_ms: i64,
    heading_deg: f32,
    speed_kmh: f32,
    bbox: [u32; 4],
}

/// One simulated trip.
#[derive(Debug)]
struct PoolTrip {
    /// Its plate, normalised.
    key: String,
    color: u8,
    kind: u8,
    /// Its passes in [`Pool::passes`], in time order (never empty).
    passes: Range<usize>,
}

/// The simulated trips of day 0.
#[derive(Debug)]
struct Pool {
    passes: Vec<Pass>,
    trips: Vec<PoolTrip>,
}

impl Pool {
    /// Simulate enough trips for every vehicle `config` asks for, with a margin.
    fn generate(city: &City, config: &InvestigationConfig) -> Self {
        let days = config.days as usize;
        let needed = config.regulars
            + config.background_trips_per_day * days
            + config.series_vehicles * (config.scenes + 1)
            + config.convoy_targets * (config.convoy_trips + 1 + config.companions_per_target)
            + config.scenes;
        let traffic_config = TrafficConfig {
            seed: config.seed,
            start_ms: config.start_ms + TRAFFIC_FROM_MS,
            span_ms: TRAFFIC_TO_MS - TRAFFIC_FROM_MS,
            vehicles: needed + needed / 20 + 200,
            person_share: 0.0,
            non_motor_share: 0.0,
            detection_rate: 1.0,
            misread_rate: 0.0,
            snapshot_share: 0.0,
            ..TrafficConfig::default()
        };
        let mut traffic = Traffic::new(city, traffic_config).with_truth();
        // Every pass is reported (detection rate 1), so a trip's events are its passes.
        let reported: Vec<(Pass, u8, u8)> = traffic
            .by_ref()
            .map(|event| {
                let pass = Pass {
                    camera: event.camera_index,
                    true_ms: event.captured_at_ms,
                    clock_ms: 0,
                    heading_deg: event.heading_deg,
                    speed_kmh: event.speed_kmh,
                    bbox: event.bbox,
                };
                (pass, event.vehicle_color, event.vehicle_type)
            })
            .collect();
        let truth = traffic.take_truth();
        let mut passes = Vec::with_capacity(reported.len());
        let mut trips = Vec::with_capacity(truth.len());
        let mut next = 0;
        for vehicle in truth {
            let start = passes.len();
            let mut looks = None;
            for stop in &vehicle.route {
                let Some(&(mut pass, color, kind)) = reported.get(next) else {
                    break;
                };
                next += 1;
                debug_assert_eq!(pass.camera, stop.camera_index);
                pass.clock_ms = pass.true_ms - stop.true_time_ms;
                pass.true_ms = stop.true_time_ms;
                passes.push(pass);
                looks.get_or_insert((color, kind));
            }
            if let Some((color, kind)) = looks {
                trips.push(PoolTrip {
                    key: vehicle.true_plate,
                    color,
                    kind,
                    passes: start..passes.len(),
                });
            }
        }
        Pool { passes, trips }
    }

    fn passes(&self, trip: usize) -> &[Pass] {
        &self.passes[self.trips[trip].passes.clone()]
    }
}

/// A pool pass filed by cell: camera, true time, trip.
type GridPass = (u32, i64, usize);

/// Who is driving: plate and looks.
#[derive(Debug, Clone)]
struct Plate {
    key: String,
    display: String,
    color: u8,
    kind: u8,
    plate_color: u8,
    brand: &'static str,
}

impl Plate {
    fn of(trip: &PoolTrip) -> Self {
        let display = display_of(&trip.key);
        Self {
            plate_color: attributes::plate_color_of(&display, trip.kind),
            brand: attributes::brand_of(&trip.key, trip.kind),
            key: trip.key.clone(),
            display,
            color: trip.color,
            kind: trip.kind,
        }
    }
}

/// Where the emitter stood, to take back a draw.
#[derive(Debug, Clone, Copy)]
struct Mark {
    events: usize,
    sequence: u64,
}

/// Reports passes: detection, misreads, ids.
struct Emitter {
    rng: ChaCha8Rng,
    detection_rate: f64,
    misread_rate: f64,
    id_prefix: [u8; 8],
    sequence: u64,
    events: Vec<SyntheticEvent>,
    /// Index of the vehicle of each event.
    owners: Vec<usize>,
    scratch: String,
}

impl Emitter {
    fn mark(&self) -> Mark {
        Mark {
            events: self.events.len(),
            sequence: self.sequence,
        }
    }

    fn rollback(&mut self, mark: Mark) {
        self.events.truncate(mark.events);
        self.owners.truncate(mark.events);
        self.sequence = mark.sequence;
    }

    /// `plate` passes as in `pass` at `true_ms`; reported with the detection rate.
    fn pass(&mut self, plate: &Plate, owner: usize, pass: &Pass, true_ms: i64) {
        if self.rng.random::<f64>() >= self.detection_rate {
            return;
        }
        let mut event_id = [0u8; 16];
        event_id[..8].copy_from_slice(&self.id_prefix);
        event_id[8..].copy_from_slice(&mix64(self.sequence).to_be_bytes());
        self.sequence += 1;
        // As the traffic generator reads: misreads 0.45–0.80, right reads 0.80–0.99.
        let unit = (self.rng.random::<u32>() >> 16) as f32 / 65_536.0;
        let (read, plate_confidence) = if self.rng.random::<f64>() < self.misread_rate {
            misread(&plate.display, &mut self.rng, &mut self.scratch);
            (self.scratch.clone(), 0.45 + 0.35 * unit)
        } else {
            (plate.display.clone(), 0.80 + 0.19 * unit)
        };
        let mut plate_char_confidence = Vec::new();
        attributes::char_confidences(
            &read,
            &plate.display,
            plate_confidence,
            attributes::event_bits(&event_id),
            &mut plate_char_confidence,
        );
        self.events.push(SyntheticEvent {
            event_id,
            camera_index: pass.camera,
            captured_at_ms: true_ms + pass.clock_ms,
            object_class: ObjectClass::Vehicle,
            plate: read,
            plate_confidence,
            subject_key: String::new(),
            vehicle_color: plate.color,
            vehicle_type: plate.kind,
            bbox: pass.bbox,
            snapshot: None,
            plate_color: plate.plate_color,
            brand: plate.brand,
            heading_deg: pass.heading_deg,
            speed_kmh: pass.speed_kmh,
            plate_char_confidence,
        });
        self.owners.push(owner);
    }

    /// `plate` drives `passes` `shift_ms` later than the pool did.
    fn trip(&mut self, plate: &Plate, owner: usize, passes: &[Pass], shift_ms: i64) {
        for pass in passes {
            self.pass(plate, owner, pass, pass.true_ms + shift_ms);
        }
    }
}

/// A vehicle being built; its events are a contiguous run of the emitter's.
struct Built {
    plate: Plate,
    role: Role,
    events: Range<usize>,
}

/// The builder's working state.
struct Builder<'a> {
    city: &'a City,
    config: &'a InvestigationConfig,
    pool: Pool,
    used: Vec<bool>,
    taken: HashSet<String>,
    /// Pool trips in a random order: the order they are handed out in.
    order: Vec<usize>,
    rng: ChaCha8Rng,
    emitter: Emitter,
    vehicles: Vec<Built>,
    scenes: Vec<Scene>,
    /// Per scene, per camera: inside the circle.
    inside: Vec<Vec<bool>>,
    /// Scene trips, driven as background on the scene's day.
    reserved: Vec<(usize, u32)>,
    /// Vehicle index of each series vehicle.
    series: Vec<usize>,
    convoys: Vec<ConvoyTruth>,
}

fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl<'a> Builder<'a> {
    fn new(city: &'a City, config: &'a InvestigationConfig, pool: Pool) -> Self {
        let mut rng = stream(config.seed, 0x1e5_7164);
        let mut order: Vec<usize> = (0..pool.trips.len()).collect();
        order.shuffle(&mut rng);
        let emitter = Emitter {
            rng: stream(config.seed, 0x0052_ead5),
            detection_rate: config.detection_rate,
            misread_rate: config.misread_rate,
            id_prefix: mix64(config.seed ^ 0x696e_7665_7374_6967).to_be_bytes(),
            sequence: 0,
            events: Vec::new(),
            owners: Vec::new(),
            scratch: String::with_capacity(16),
        };
        Self {
            city,
            config,
            used: vec![false; pool.trips.len()],
            pool,
            taken: HashSet::new(),
            order,
            rng,
            emitter,
            vehicles: Vec::new(),
            scenes: Vec::new(),
            inside: Vec::new(),
            reserved: Vec::new(),
            series: Vec::new(),
            convoys: Vec::new(),
        }
    }

    /// Make room for about as many events as the config asks for.
    fn reserve(&mut self) {
        let config = self.config;
        let trips = self.pool.trips.len().max(1) as f64;
        let passes_per_trip = self.pool.passes.len() as f64 / trips;
        let trip_days = (config.regulars + config.background_trips_per_day) * config.days as usize
            + config.series_vehicles * config.scenes
            + config.convoy_targets * (1 + config.companions_per_target) * config.convoy_trips;
        let expected = trip_days as f64 * passes_per_trip * config.detection_rate.clamp(0.0, 1.0);
        let capacity = (expected * 1.05) as usize;
        self.emitter.events.reserve(capacity);
        self.emitter.owners.reserve(capacity);
    }

    fn free(&self, trip: usize) -> bool {
        !self.used[trip] && !self.taken.contains(&self.pool.trips[trip].key)
    }

    /// Take trip `trip` and its plate.
    fn take(&mut self, trip: usize) {
        self.used[trip] = true;
        self.taken.insert(self.pool.trips[trip].key.clone());
    }

    /// The next free trip (in the random order) that `fits`, taken with its plate.
    fn next_free(&mut self, fits: impl Fn(&Self, usize) -> bool) -> Option<usize> {
        let trip = self
            .order
            .iter()
            .copied()
            .find(|&t| self.free(t) && fits(self, t))?;
        self.take(trip);
        Some(trip)
    }

    /// A plate (with colour and type) from an unused trip, whose route nobody drives.
    fn donor_plate(&mut self) -> Option<Plate> {
        let donor = self.next_free(|_, _| true)?;
        Some(Plate::of(&self.pool.trips[donor]))
    }

    fn day_start(&self, day: u32) -> i64 {
        self.config.start_ms + i64::from(day) * DAY_MS
    }

    /// Choose the scenes (see the module documentation): of [`SCENE_CANDIDATES`] random
    /// passes in the scene hours, the one with the most pool trips passing nearby.
    fn scenes(&mut self) {
        let config = self.config;
        let cameras = self.city.registry.cameras();
        let radius = if config.scene_radius_m.is_finite() {
            config.scene_radius_m.max(0.0)
        } else {
            0.0
        };
        let half_window = config.scene_window_ms / 2;
        // Pool passes by cell of the kilometre plane: (camera, true time, trip).
        let cell_km = (radius / 1000.0).max(0.1);
        let cell_of = |camera: u32| {
            self.city
                .camera_point(camera)
                .map_or((i64::MIN, i64::MIN), |point| {
                    (
                        (point.x / cell_km).floor() as i64,
                        (point.y / cell_km).floor() as i64,
                    )
                })
        };
        let mut grid: HashMap<(i64, i64), Vec<GridPass>> = HashMap::new();
        for (trip, pool_trip) in self.pool.trips.iter().enumerate() {
            for pass in &self.pool.passes[pool_trip.passes.clone()] {
                grid.entry(cell_of(pass.camera)).or_default().push((
                    pass.camera,
                    pass.true_ms,
                    trip,
                ));
            }
        }
        // Distinct pool trips passing within the radius of `pass` within the window.
        let busy = |pass: &Pass| -> usize {
            let Some(centre) = cameras.get(pass.camera as usize) else {
                return 0;
            };
            let (cx, cy) = cell_of(pass.camera);
            let mut trips = HashSet::new();
            for dx in -1..=1 {
                for dy in -1..=1 {
                    for &(camera, at, trip) in grid.get(&(cx + dx, cy + dy)).into_iter().flatten() {
                        if (at - pass.true_ms).abs() <= half_window
                            && cameras.get(camera as usize).is_some_and(|c| {
                                great_circle_m(centre.lon, centre.lat, c.lon, c.lat) <= radius
                            })
                        {
                            trips.insert(trip);
                        }
                    }
                }
            }
            trips.len()
        };
        let trip_count = self.pool.trips.len();
        for index in 0..config.scenes {
            let day = (index % config.days as usize) as u32;
            let mut best: Option<(usize, usize, Pass)> = None;
            let mut drawn = 0;
            for _ in 0..SCENE_CANDIDATES * 20 {
                if drawn == SCENE_CANDIDATES || trip_count == 0 {
                    break;
                }
                let trip = self.rng.random_range(0..trip_count);
                if !self.free(trip) {
                    continue;
                }
                let in_hours: Vec<Pass> = self
                    .pool
                    .passes(trip)
                    .iter()
                    .filter(|p| {
                        (SCENE_FROM_MS..=SCENE_TO_MS).contains(&(p.true_ms - config.start_ms))
                    })
                    .copied()
                    .collect();
                if in_hours.is_empty() {
                    continue;
                }
                drawn += 1;
                let pass = in_hours[self.rng.random_range(0..in_hours.len())];
                let score = busy(&pass);
                if best.is_none_or(|(most, _, _)| score > most) {
                    best = Some((score, trip, pass));
                }
            }
            let Some((_, trip, pass)) = best else {
                break;
            };
            let Some(camera) = cameras.get(pass.camera as usize) else {
                break;
            };
            self.take(trip);
            self.reserved.push((trip, day));
            let from_ms = pass.true_ms + i64::from(day) * DAY_MS - half_window;
            self.inside.push(
                cameras
                    .iter()
                    .map(|c| great_circle_m(camera.lon, camera.lat, c.lon, c.lat) <= radius)
                    .collect(),
            );
            self.scenes.push(Scene {
                lon: camera.lon,
                lat: camera.lat,
                radius_m: radius,
                from_ms,
                to_ms: from_ms + config.scene_window_ms,
                day,
                vehicles: Vec::new(),
            });
        }
    }

    /// Whether `event` lies in scene `scene` (circle and window).
    fn in_scene(&self, scene: usize, event: &SyntheticEvent) -> bool {
        let s = &self.scenes[scene];
        (s.from_ms..s.to_ms).contains(&event.captured_at_ms)
            && self.inside[scene]
                .get(event.camera_index as usize)
                .copied()
                .unwrap_or(false)
    }

    /// Build the series vehicles: one trip through every scene each.
    fn series(&mut self) {
        let config = self.config;
        if self.scenes.is_empty() {
            return;
        }
        let cameras = self.city.registry.cameras();
        // Per scene: trips passing a camera within 0.8 × radius, with those passes.
        let mut candidates: Vec<Vec<(usize, Vec<usize>)>> = Vec::new();
        for scene in &self.scenes {
            let near_m = scene.radius_m * SERIES_NEAR_SHARE;
            let near: Vec<bool> = cameras
                .iter()
                .map(|c| great_circle_m(scene.lon, scene.lat, c.lon, c.lat) <= near_m)
                .collect();
            let list = (0..self.pool.trips.len())
                .filter(|&t| self.free(t))
                .filter_map(|t| {
                    let passes: Vec<usize> = self.pool.trips[t]
                        .passes
                        .clone()
                        .filter(|&p| near[self.pool.passes[p].camera as usize])
                        .collect();
                    (!passes.is_empty()).then_some((t, passes))
                })
                .collect();
            candidates.push(list);
        }
        for _ in 0..config.series_vehicles {
            let Some(plate) = self.donor_plate() else {
                break;
            };
            let owner = self.vehicles.len();
            let start = self.emitter.mark();
            let mut spans: Vec<(i64, i64)> = Vec::new();
            let mut trips = Vec::new();
            for (scene, list) in candidates.iter().enumerate() {
                match self.series_trip(&plate, owner, scene, list, &spans) {
                    Some((trip, span)) => {
                        self.used[trip] = true;
                        trips.push(trip);
                        spans.push(span);
                    }
                    None => break,
                }
            }
            if trips.len() < self.scenes.len() {
                // No trip for some scene: give the trips back (the plate stays reserved).
                self.emitter.rollback(start);
                for trip in trips {
                    self.used[trip] = false;
                }
                continue;
            }
            self.series.push(owner);
            self.vehicles.push(Built {
                plate,
                role: Role::Series,
                events: start.events..self.emitter.events.len(),
            });
        }
    }

    /// Drive one of `list`'s trips through scene `scene`, reported there read right at least
    /// once and clear of the vehicle's other trips (`spans`); the trip and its span.
    fn series_trip(
        &mut self,
        plate: &Plate,
        owner: usize,
        scene: usize,
        list: &[(usize, Vec<usize>)],
        spans: &[(i64, i64)],
    ) -> Option<(usize, (i64, i64))> {
        let (from_ms, to_ms) = (self.scenes[scene].from_ms, self.scenes[scene].to_ms);
        let margin = MINUTE_MS.min((to_ms - from_ms) / 4);
        let mut open: Vec<usize> = (0..list.len()).filter(|&i| !self.used[list[i].0]).collect();
        for _ in 0..ATTEMPTS {
            if open.is_empty() {
                return None;
            }
            let (trip, near) = &list[open.swap_remove(self.rng.random_range(0..open.len()))];
            let pass = self.pool.passes[near[self.rng.random_range(0..near.len())]];
            let at = self.rng.random_range(from_ms + margin..=to_ms - 1 - margin);
            let shift = at - pass.true_ms;
            let passes = self.pool.passes(*trip);
            let (Some(first), Some(last)) = (passes.first(), passes.last()) else {
                continue;
            };
            let span = (first.true_ms + shift, last.true_ms + shift);
            if spans
                .iter()
                .any(|&(a, b)| span.0 < b + TRIP_GAP_MS && a < span.1 + TRIP_GAP_MS)
            {
                continue;
            }
            let mark = self.emitter.mark();
            let passes = &self.pool.passes[self.pool.trips[*trip].passes.clone()];
            self.emitter.trip(plate, owner, passes, shift);
            let seen = self.emitter.events[mark.events..]
                .iter()
                .any(|e| e.plate == plate.display && self.in_scene(scene, e));
            if seen {
                return Some((*trip, span));
            }
            self.emitter.rollback(mark);
        }
        None
    }

    /// Build the convoys: a target's short trips on its day, companions close behind.
    fn convoys(&mut self) {
        let config = self.config;
        let n = config.convoy_trips;
        let per_trip = CONVOY_PASSES.start.div_ceil(n)..(CONVOY_PASSES.end - 1) / n + 1;
        let per_trip = per_trip.start..per_trip.end.max(per_trip.start + 1);
        let slot_ms = (CONVOY_TO_MS - CONVOY_FROM_MS) / n as i64;
        for convoy in 0..config.convoy_targets {
            let day = (convoy % config.days as usize) as u32;
            let Some(target) = self.donor_plate() else {
                break;
            };
            let mut trips = Vec::with_capacity(n);
            while trips.len() < n {
                let fits = |b: &Self, t: usize| per_trip.contains(&b.pool.trips[t].passes.len());
                let Some(trip) = self.next_free(fits) else {
                    break;
                };
                trips.push(trip);
            }
            if trips.len() < n {
                break;
            }
            let mut shifts = Vec::with_capacity(n);
            for (slot, &trip) in trips.iter().enumerate() {
                let passes = self.pool.passes(trip);
                let (Some(first), Some(last)) = (passes.first(), passes.last()) else {
                    continue;
                };
                let slack = (slot_ms - (last.true_ms - first.true_ms) - TRIP_GAP_MS).max(0);
                let begin = self.day_start(day)
                    + CONVOY_FROM_MS
                    + slot as i64 * slot_ms
                    + self.rng.random_range(0..=slack);
                shifts.push((trip, begin - first.true_ms));
            }
            let target_owner = self.vehicles.len();
            let start = self.emitter.mark();
            for &(trip, shift) in &shifts {
                let passes = &self.pool.passes[self.pool.trips[trip].passes.clone()];
                self.emitter.trip(&target, target_owner, passes, shift);
            }
            let target_range = start.events..self.emitter.events.len();
            // The target's right reads: camera → capture times.
            let mut seen: HashMap<u32, Vec<i64>> = HashMap::new();
            for event in &self.emitter.events[target_range.clone()] {
                if event.plate == target.display {
                    seen.entry(event.camera_index)
                        .or_default()
                        .push(event.captured_at_ms);
                }
            }
            let target_events = seen.values().map(Vec::len).sum();
            let target_key = target.key.clone();
            self.vehicles.push(Built {
                plate: target,
                role: Role::ConvoyTarget {
                    convoy: self.convoys.len(),
                },
                events: target_range,
            });
            let mut companion_keys = Vec::new();
            let mut matched_cameras = Vec::new();
            for _ in 0..config.companions_per_target {
                let Some(plate) = self.donor_plate() else {
                    break;
                };
                let matched = self.companion(&plate, &shifts, &seen);
                companion_keys.push(plate.key.clone());
                matched_cameras.push(matched);
            }
            let from_ms = self.day_start(day);
            self.convoys.push(ConvoyTruth {
                target_key,
                companion_keys,
                from_ms,
                to_ms: from_ms + DAY_MS,
                target_events,
                matched_cameras,
            });
        }
    }

    /// Drive a companion behind the target's trips (`shifts`), redrawn until it matches at
    /// [`MIN_CO_TRAVEL_CAMERAS`] cameras (see the module documentation); the matches.
    fn companion(
        &mut self,
        plate: &Plate,
        shifts: &[(usize, i64)],
        seen: &HashMap<u32, Vec<i64>>,
    ) -> usize {
        let config = self.config;
        let (low, high, step) = (config.lag_min_ms, config.lag_max_ms, config.lag_step_ms);
        let owner = self.vehicles.len();
        let mut matched = 0;
        for attempt in 0..ATTEMPTS {
            let mark = self.emitter.mark();
            for &(trip, shift) in shifts {
                let mut lag = self.rng.random_range(low..=high);
                let mut previous = i64::MIN;
                for index in self.pool.trips[trip].passes.clone() {
                    let mut pass = self.pool.passes[index];
                    // Its own place in the frame (same size of box as the target's).
                    let room = u64::from(FRAME_WIDTH.saturating_sub(pass.bbox[2]).max(1));
                    pass.bbox[0] = (mix64(self.emitter.sequence ^ index as u64) % room) as u32;
                    let at = (pass.true_ms + shift + lag).max(previous);
                    lag = at - pass.true_ms - shift;
                    self.emitter.pass(plate, owner, &pass, at);
                    previous = at;
                    lag += self.rng.random_range(-step..=step);
                    if lag < low {
                        lag = 2 * low - lag;
                    }
                    if lag > high {
                        lag = 2 * high - lag;
                    }
                    lag = lag.clamp(low, high);
                }
            }
            let cameras: BTreeSet<u32> = self.emitter.events[mark.events..]
                .iter()
                .filter(|e| e.plate == plate.display)
                .filter(|e| {
                    seen.get(&e.camera_index).is_some_and(|times| {
                        times
                            .iter()
                            .any(|&t| (1..=CO_TRAVEL_WINDOW_MS).contains(&(e.captured_at_ms - t)))
                    })
                })
                .map(|e| e.camera_index)
                .collect();
            matched = cameras.len();
            if matched >= MIN_CO_TRAVEL_CAMERAS || attempt + 1 == ATTEMPTS {
                self.vehicles.push(Built {
                    plate: plate.clone(),
                    role: Role::Companion {
                        convoy: self.convoys.len(),
                    },
                    events: mark.events..self.emitter.events.len(),
                });
                break;
            }
            self.emitter.rollback(mark);
        }
        matched
    }

    /// Build the regulars: one trip each, driven every day about the same time.
    fn regulars(&mut self) {
        let config = self.config;
        for _ in 0..config.regulars {
            let long = |b: &Self, t: usize| b.pool.trips[t].passes.len() >= REGULAR_MIN_PASSES;
            let Some(trip) = self.next_free(long) else {
                break;
            };
            let plate = Plate::of(&self.pool.trips[trip]);
            let owner = self.vehicles.len();
            let start = self.emitter.mark();
            for day in 0..config.days {
                let jitter = self
                    .rng
                    .random_range(-REGULAR_JITTER_MS..=REGULAR_JITTER_MS);
                let shift = i64::from(day) * DAY_MS + jitter;
                let passes = &self.pool.passes[self.pool.trips[trip].passes.clone()];
                self.emitter.trip(&plate, owner, passes, shift);
            }
            self.vehicles.push(Built {
                plate,
                role: Role::Regular,
                events: start.events..self.emitter.events.len(),
            });
        }
    }

    /// Build the background: the scene trips, then fresh trips up to the daily count.
    fn background(&mut self) {
        let config = self.config;
        for day in 0..config.days {
            let reserved: Vec<usize> = self
                .reserved
                .iter()
                .filter(|&&(_, d)| d == day)
                .map(|&(t, _)| t)
                .collect();
            let mut trips = reserved.into_iter();
            for _ in 0..config.background_trips_per_day.max(trips.len()) {
                let Some(trip) = trips.next().or_else(|| self.next_free(|_, _| true)) else {
                    break;
                };
                let plate = Plate::of(&self.pool.trips[trip]);
                let owner = self.vehicles.len();
                let start = self.emitter.mark();
                let passes = &self.pool.passes[self.pool.trips[trip].passes.clone()];
                self.emitter
                    .trip(&plate, owner, passes, i64::from(day) * DAY_MS);
                self.vehicles.push(Built {
                    plate,
                    role: Role::Background { day },
                    events: start.events..self.emitter.events.len(),
                });
            }
        }
    }

    /// Work out the truth and the stats, sort the events.
    fn finish(mut self) -> InvestigationCity {
        let config = self.config;
        let scene_count = self.scenes.len();
        let events = std::mem::take(&mut self.emitter.events);
        let owners = std::mem::take(&mut self.emitter.owners);
        // Scenes each camera lies in.
        let mut scenes_at: Vec<Vec<usize>> = vec![Vec::new(); self.city.registry.len()];
        for (scene, inside) in self.inside.iter().enumerate() {
            for (camera, _) in inside.iter().enumerate().filter(|(_, i)| **i) {
                scenes_at[camera].push(scene);
            }
        }
        let series_of: HashMap<usize, usize> = self
            .series
            .iter()
            .enumerate()
            .map(|(index, &vehicle)| (vehicle, index))
            .collect();
        let mut passing: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); scene_count];
        let mut chance_plates: Vec<HashSet<String>> = vec![HashSet::new(); scene_count];
        let mut visits: Vec<Vec<Vec<usize>>> =
            vec![vec![Vec::new(); scene_count]; self.series.len()];
        let mut stats = InvestigationStats {
            events: events.len(),
            events_per_day: vec![0; config.days as usize],
            ..InvestigationStats::default()
        };
        for (index, event) in events.iter().enumerate() {
            let owner = owners[index];
            let day = (event.captured_at_ms - config.start_ms).div_euclid(DAY_MS);
            stats.events_per_day[day.clamp(0, i64::from(config.days) - 1) as usize] += 1;
            // Every misread changes the key, so comparing the display form suffices.
            stats.misreads += usize::from(event.plate != self.vehicles[owner].plate.display);
            let Some(scenes) = scenes_at.get(event.camera_index as usize) else {
                continue;
            };
            for &scene in scenes {
                let s = &self.scenes[scene];
                if !(s.from_ms..s.to_ms).contains(&event.captured_at_ms) {
                    continue;
                }
                passing[scene].insert(owner);
                match series_of.get(&owner) {
                    Some(&series) => visits[series][scene].push(index),
                    None => {
                        chance_plates[scene].insert(normalize(&event.plate));
                    }
                }
            }
        }
        for (scene, vehicles) in passing.iter().enumerate() {
            let mut keys: Vec<String> = vehicles
                .iter()
                .map(|&v| self.vehicles[v].plate.key.clone())
                .collect();
            keys.sort();
            self.scenes[scene].vehicles = keys;
            let chance: Vec<usize> = vehicles
                .iter()
                .copied()
                .filter(|v| !series_of.contains_key(v))
                .collect();
            stats.scene_chance_vehicles.push(chance.len());
            stats.scene_chance_regulars.push(
                chance
                    .iter()
                    .filter(|&&v| self.vehicles[v].role == Role::Regular)
                    .count(),
            );
            stats.scene_chance_plates.push(chance_plates[scene].len());
        }
        let sort_key = |&i: &usize| (events[i].captured_at_ms, events[i].event_id);
        let series = self
            .series
            .iter()
            .zip(visits)
            .map(|(&vehicle, per_scene)| SeriesTruth {
                key: self.vehicles[vehicle].plate.key.clone(),
                visits: per_scene
                    .into_iter()
                    .map(|mut list| {
                        list.sort_by_key(sort_key);
                        list.into_iter().map(|i| events[i].event_id).collect()
                    })
                    .collect(),
            })
            .collect();
        let vehicles: Vec<InvestigationVehicle> = self
            .vehicles
            .into_iter()
            .map(|built| {
                match built.role {
                    Role::Background { .. } => stats.background += 1,
                    Role::Regular => stats.regulars += 1,
                    Role::Series => stats.series += 1,
                    Role::ConvoyTarget { .. } => stats.convoy_targets += 1,
                    Role::Companion { .. } => stats.companions += 1,
                }
                InvestigationVehicle {
                    event_ids: events[built.events].iter().map(|e| e.event_id).collect(),
                    key: built.plate.key,
                    role: built.role,
                }
            })
            .collect();
        stats.pool_trips = self.pool.trips.len();
        stats.unused_trips = self.used.iter().filter(|u| !**u).count();
        // Sorted through a permutation: cheaper than moving the events around.
        let mut order: Vec<(i64, [u8; 16], usize)> = events
            .iter()
            .enumerate()
            .map(|(index, e)| (e.captured_at_ms, e.event_id, index))
            .collect();
        order.sort_unstable();
        let mut slots: Vec<Option<SyntheticEvent>> = events.into_iter().map(Some).collect();
        let events = order
            .into_iter()
            .filter_map(|(_, _, index)| slots[index].take())
            .collect();
        InvestigationCity {
            events,
            scenes: self.scenes,
            series,
            convoys: self.convoys,
            vehicles,
            stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::time::Instant;

    use camtrail_model::misread::MISREAD_MODEL;

    use super::*;
    use crate::CityConfig;

    fn city() -> &'static City {
        static CITY: OnceLock<City> = OnceLock::new();
        CITY.get_or_init(|| {
            City::generate(&CityConfig {
                seed: 5,
                cameras: 30_000,
                districts: 30,
                gateways: 100,
            })
        })
    }

    fn config() -> InvestigationConfig {
        InvestigationConfig {
            seed: 21,
            days: 3,
            background_trips_per_day: 700,
            regulars: 300,
            // Four scenes on three days: days 0 carries two.
            scenes: 4,
            series_vehicles: 6,
            convoy_targets: 6,
            companions_per_target: 2,
            ..InvestigationConfig::default()
        }
    }

    fn built() -> &'static InvestigationCity {
        static BUILT: OnceLock<InvestigationCity> = OnceLock::new();
        BUILT.get_or_init(|| InvestigationCity::generate(city(), config()))
    }

    fn by_id() -> HashMap<[u8; 16], &'static SyntheticEvent> {
        built().events.iter().map(|e| (e.event_id, e)).collect()
    }

    fn vehicle(key: &str) -> &'static InvestigationVehicle {
        built()
            .vehicles
            .iter()
            .find(|v| v.key == key)
            .expect("a vehicle with this plate")
    }

    #[test]
    fn great_circle_distance_is_haversine() {
        assert_eq!(great_circle_m(114.0, 22.5, 114.0, 22.5), 0.0);
        // One degree of latitude: 2π R / 360.
        let degree = great_circle_m(114.0, 22.0, 114.0, 23.0);
        assert!((degree - 111_195.08).abs() < 0.1, "{degree}");
        let east = great_circle_m(114.0, 22.5, 114.01, 22.5);
        assert!((east - 1_027.3).abs() < 0.5, "{east}");
    }

    #[test]
    fn the_same_config_builds_the_same_set_and_another_seed_another() {
        let again = InvestigationCity::generate(city(), config());
        assert!(again == *built());
        let other = InvestigationCity::generate(
            city(),
            InvestigationConfig {
                seed: 22,
                ..config()
            },
        );
        assert_ne!(other.events, built().events);
    }

    #[test]
    fn events_are_unique_sorted_and_owned_by_one_vehicle() {
        let set = built();
        let mut seen = HashSet::new();
        for event in &set.events {
            assert!(seen.insert(event.event_id), "duplicate event id");
        }
        assert!(set.events.windows(2).all(|w| {
            (w[0].captured_at_ms, w[0].event_id) <= (w[1].captured_at_ms, w[1].event_id)
        }));
        let owned: usize = set.vehicles.iter().map(|v| v.event_ids.len()).sum();
        assert_eq!(owned, set.events.len());
        assert_eq!(set.owners().len(), set.events.len());
        assert_eq!(set.stats.events, set.events.len());
    }

    #[test]
    fn plates_are_unique_per_vehicle_and_reads_are_it_or_one_misread() {
        let set = built();
        let mut keys = HashSet::new();
        for vehicle in &set.vehicles {
            assert!(keys.insert(vehicle.key.as_str()), "{} twice", vehicle.key);
        }
        let owners = set.owners();
        let mut misreads = 0;
        for event in &set.events {
            let vehicle = &set.vehicles[owners[&event.event_id]];
            let read = normalize(&event.plate);
            if read == vehicle.key {
                assert_eq!(event.plate, display_of(&vehicle.key));
                assert!(event.plate_confidence >= 0.8);
            } else {
                misreads += 1;
                assert!(MISREAD_MODEL.probability(&vehicle.key, &read) > 0.0);
                assert!(event.plate_confidence < 0.8);
            }
            let lowest = event.plate_char_confidence.iter().min().copied();
            assert_eq!(lowest, Some((event.plate_confidence * 100.0).round() as u8));
        }
        assert_eq!(misreads, set.stats.misreads);
        let rate = misreads as f64 / set.events.len() as f64;
        assert!(rate > 0.02 && rate < 0.04, "misread rate {rate}");
    }

    #[test]
    fn series_visits_lie_in_every_scene_and_belong_to_the_vehicle() {
        let set = built();
        let config = config();
        let cameras = city().registry.cameras();
        let events = by_id();
        assert_eq!(set.scenes.len(), config.scenes);
        assert_eq!(set.series.len(), config.series_vehicles);
        for (index, scene) in set.scenes.iter().enumerate() {
            assert_eq!(scene.day as usize, index % config.days as usize);
            let day_start = config.start_ms + i64::from(scene.day) * DAY_MS;
            let centre = (scene.from_ms + scene.to_ms) / 2 - day_start;
            assert!((SCENE_FROM_MS..=SCENE_TO_MS).contains(&centre));
            assert_eq!(scene.to_ms - scene.from_ms, config.scene_window_ms);
        }
        for series in &set.series {
            let vehicle = vehicle(&series.key);
            assert_eq!(vehicle.role, Role::Series);
            let own: HashSet<&[u8; 16]> = vehicle.event_ids.iter().collect();
            assert_eq!(series.visits.len(), set.scenes.len());
            for (scene, visits) in set.scenes.iter().zip(&series.visits) {
                assert!(scene.vehicles.contains(&series.key));
                let mut right = 0;
                for id in visits {
                    assert!(own.contains(id));
                    let event = events[id];
                    let camera = &cameras[event.camera_index as usize];
                    let distance = great_circle_m(scene.lon, scene.lat, camera.lon, camera.lat);
                    assert!(distance <= scene.radius_m, "{distance} m");
                    assert!((scene.from_ms..scene.to_ms).contains(&event.captured_at_ms));
                    right += usize::from(normalize(&event.plate) == series.key);
                }
                assert!(right > 0, "{} unseen at a scene", series.key);
                // Every event of the vehicle in the scene is listed.
                let listed: HashSet<&[u8; 16]> = visits.iter().collect();
                for id in &vehicle.event_ids {
                    let event = events[id];
                    let camera = &cameras[event.camera_index as usize];
                    let inside = great_circle_m(scene.lon, scene.lat, camera.lon, camera.lat)
                        <= scene.radius_m
                        && (scene.from_ms..scene.to_ms).contains(&event.captured_at_ms);
                    assert_eq!(inside, listed.contains(id));
                }
            }
        }
    }

    #[test]
    fn every_scene_has_chance_traffic() {
        let set = built();
        assert_eq!(set.stats.scene_chance_vehicles.len(), set.scenes.len());
        for (scene, &chance) in set.scenes.iter().zip(&set.stats.scene_chance_vehicles) {
            assert!(chance > 0);
            assert_eq!(scene.vehicles.len(), chance + set.series.len());
        }
        assert!(set.stats.scene_chance_vehicles.iter().sum::<usize>() >= 2 * set.scenes.len());
    }

    #[test]
    fn companions_follow_their_target_5_to_90_seconds_behind() {
        let set = built();
        let config = config();
        let events = by_id();
        assert_eq!(set.convoys.len(), config.convoy_targets);
        for (index, convoy) in set.convoys.iter().enumerate() {
            let target = vehicle(&convoy.target_key);
            assert_eq!(target.role, Role::ConvoyTarget { convoy: index });
            let read_right = target
                .event_ids
                .iter()
                .filter(|id| normalize(&events[*id].plate) == convoy.target_key)
                .count();
            assert_eq!(read_right, convoy.target_events);
            assert!(
                (35..=85).contains(&convoy.target_events),
                "{} sightings",
                convoy.target_events
            );
            let mut at_camera: HashMap<u32, Vec<i64>> = HashMap::new();
            for id in &target.event_ids {
                let event = events[id];
                assert!((convoy.from_ms..convoy.to_ms).contains(&event.captured_at_ms));
                at_camera
                    .entry(event.camera_index)
                    .or_default()
                    .push(event.captured_at_ms);
            }
            assert_eq!(convoy.companion_keys.len(), config.companions_per_target);
            for (key, &matched) in convoy.companion_keys.iter().zip(&convoy.matched_cameras) {
                assert!(matched >= MIN_CO_TRAVEL_CAMERAS);
                let companion = vehicle(key);
                assert_eq!(companion.role, Role::Companion { convoy: index });
                let (mut behind, mut clear, mut total) = (0, 0, 0);
                for id in &companion.event_ids {
                    let event = events[id];
                    if normalize(&event.plate) != *key {
                        continue;
                    }
                    total += 1;
                    let times = at_camera.get(&event.camera_index);
                    let deltas = times
                        .into_iter()
                        .flatten()
                        .map(|t| event.captured_at_ms - t);
                    let near: Vec<i64> = deltas.filter(|d| d.abs() <= 10 * MINUTE_MS).collect();
                    let follows = near.iter().any(|d| (5_000..=90_000).contains(d));
                    behind += usize::from(follows);
                    clear += usize::from(follows || near.is_empty());
                }
                assert!(behind as f64 >= 0.8 * total as f64, "{behind}/{total}");
                assert!(clear as f64 >= 0.97 * total as f64, "{clear}/{total}");
            }
        }
    }

    #[test]
    fn regulars_drive_every_day_and_background_one_day() {
        let set = built();
        let config = config();
        let events = by_id();
        let day_of = |id: &[u8; 16]| (events[id].captured_at_ms - config.start_ms) / DAY_MS;
        assert_eq!(set.stats.regulars, config.regulars);
        assert_eq!(
            set.stats.background,
            config.background_trips_per_day * config.days as usize
        );
        for vehicle in &set.vehicles {
            let days: BTreeSet<i64> = vehicle.event_ids.iter().map(day_of).collect();
            match vehicle.role {
                Role::Regular => {
                    assert_eq!(days.len(), config.days as usize, "{}", vehicle.key)
                }
                Role::Background { day } => {
                    assert!(days.iter().all(|&d| d == i64::from(day)))
                }
                _ => {}
            }
        }
        assert!(set.stats.events_per_day.iter().all(|&n| n > 10_000));
    }

    /// The default set on the default city: `cargo test -p camtrail-city --release
    /// investigation -- --ignored --nocapture`.
    #[test]
    #[ignore = "builds the default 140,000-camera city"]
    fn the_default_set_is_built_in_seconds() {
        let started = Instant::now();
        let city = City::generate(&CityConfig::default());
        let city_time = started.elapsed();
        let started = Instant::now();
        let set = InvestigationCity::generate(&city, InvestigationConfig::default());
        let set_time = started.elapsed();
        println!("city {city_time:.2?}, investigation set {set_time:.2?}");
        println!("{:#?}", set.stats);
        for convoy in &set.convoys {
            println!(
                "convoy {}: {} sightings, matched {:?}",
                convoy.target_key, convoy.target_events, convoy.matched_cameras
            );
        }
        assert!(set.events.len() <= 1_000_000);
        assert!(set_time.as_secs() < 20);
    }
}
