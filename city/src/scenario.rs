//! A "hard city" for scoring track reconstruction: vehicles that make several trips, plates
//! that look like other plates driving nearby, and cloned plates — built from the traffic
//! generator's trips, a pure function of the city and a [`HardCityConfig`].
//!
//! **How it is built.** [`Traffic`] simulates a pool of [`HardCityConfig::pool_trips`]
//! one-trip vehicles (cars only, misreads at [`HardCityConfig::misread_rate`]) over the
//! window. The scenario then hands those trips out to vehicles and rewrites each trip's
//! plate to the plate of the vehicle that now drives it:
//!
//! 1. **Scored vehicles** ([`VehicleKind::Scored`], the first [`HardCityConfig::scored`]
//!    vehicles): a first trip starting in the first [`HardCityConfig::first_trip_share`] of
//!    the window (its plate becomes the vehicle's plate), then up to
//!    [`HardCityConfig::max_trips`] trips in all (the count drawn uniformly from 1..=max):
//!    each further trip is an unused generated trip whose first camera pass lies within
//!    [`HardCityConfig::chain_radius_km`] of the previous trip's last pass and starts
//!    [`HardCityConfig::stop_min_ms`]..=[`HardCityConfig::stop_max_ms`] after it (an index of
//!    trip starts by 2-km cell). When no trip fits, the vehicle makes fewer trips
//!    ([`HardCityStats::trips_per_scored`] counts them). A chained trip takes the vehicle's
//!    colour and type.
//! 2. **Clones** ([`VehicleKind::Clone`], [`HardCityConfig::clones`] pairs after the scored
//!    vehicles): vehicle A is built like a scored vehicle; its twin B is one unused trip,
//!    carrying the same plate, that drives at least [`HardCityConfig::clone_min_overlap_ms`]
//!    while A drives, and is more than [`HardCityConfig::clone_apart_km`] from A at every
//!    camera pass of either vehicle inside the other's time window (A parked between trips
//!    counts as standing where its last trip ended). B keeps its own colour and type.
//! 3. **Look-alikes** ([`VehicleKind::LookAlike`]): for a share
//!    [`HardCityConfig::look_alike_share`] of the scored vehicles (chosen at random), a
//!    vehicle whose plate is one misread away from the scored plate, drawn from
//!    [`MISREAD_MODEL`]`.variants`: the kind with shares 50% substitution / 25% deletion /
//!    25% insertion (among the kinds the plate allows), then within the kind either by the
//!    model's probability or uniformly (half each, so inserted "any character"s occur too).
//!    The plate collides with no other vehicle's. For [`HardCityConfig::co_located_share`]
//!    of them the trip is one whose route passes within [`HardCityConfig::near_km`] of the
//!    scored vehicle's route within ±[`HardCityConfig::near_ms`] (a space-time index of all
//!    routes, cells of `near_km` × `near_ms`); the others, and any for which no such trip is
//!    left, take a random unused trip ([`VehicleKind::LookAlike::co_located`] says which).
//! 4. **Background** ([`VehicleKind::Background`]): every unused trip, with its own plate
//!    and reads as generated; a trip whose plate another vehicle already carries is left out.
//!
//! **Reads.** An event the generator misread stays a misread: it is re-read from the new
//! plate with [`crate::misread::misread`] (the shared table), so every vehicle is misread at
//! the configured rate; the other events carry the new plate in display form ("粤B·12345").
//! Event ids are the generator's, so they stay unique. Events come sorted by
//! `(captured_at_ms, event_id)`.

use std::collections::{BTreeSet, HashMap, HashSet};

use camtrail_model::misread::{MISREAD_MODEL, MisreadKind, Variant};
use camtrail_model::plate::{CONFUSION_GROUPS, normalize};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::City;
use crate::attributes;
use crate::geometry::Point;
use crate::misread::misread;
use crate::plates::DISPLAY_SEPARATOR;
use crate::traffic::{SyntheticEvent, Traffic, TrafficConfig};
use crate::truth::TruthVehicle;

const MINUTE_MS: i64 = 60_000;

/// What hard city to build. [`Default`] is the scoring scenario: 1,000 scored vehicles, 60
/// clone pairs, 40% of scored plates with a look-alike, over 8 hours.
#[derive(Debug, Clone, PartialEq)]
pub struct HardCityConfig {
    /// Seed of the generated trips and of every choice made here.
    pub seed: u64,
    /// Start of the window, unix ms.
    pub start_ms: i64,
    /// Length of the window, ms; generated trips start uniformly in it.
    pub span_ms: i64,
    /// Number of one-trip vehicles the generator simulates; what is left after the scenario
    /// takes its trips becomes background traffic.
    pub pool_trips: usize,
    /// Number of scored (ordinary) vehicles.
    pub scored: usize,
    /// Number of cloned plates (each carried by two vehicles).
    pub clones: usize,
    /// Share of scored vehicles given a look-alike.
    pub look_alike_share: f64,
    /// Share of look-alikes that drive near their scored vehicle at the same time.
    pub co_located_share: f64,
    /// Probability that a camera reports a passing vehicle.
    pub detection_rate: f64,
    /// Probability that a reported plate is misread.
    pub misread_rate: f64,
    /// Most trips one scored (or clone A) vehicle makes.
    pub max_trips: usize,
    /// First trips start in this leading share of the window, so later trips fit.
    pub first_trip_share: f64,
    /// Shortest stop between two trips of one vehicle, ms.
    pub stop_min_ms: i64,
    /// Longest stop between two trips of one vehicle, ms.
    pub stop_max_ms: i64,
    /// A chained trip starts within this distance of where the previous one ended, km.
    pub chain_radius_km: f64,
    /// "Same area": a co-located look-alike passes within this distance, km…
    pub near_km: f64,
    /// …at most this long before or after the scored vehicle, ms.
    pub near_ms: i64,
    /// Clone twins stay further apart than this while both are in their window, km.
    pub clone_apart_km: f64,
    /// Clone twin B drives at least this long while A drives, ms.
    pub clone_min_overlap_ms: i64,
}

impl Default for HardCityConfig {
    fn default() -> Self {
        Self {
            seed: 2027,
            start_ms: TrafficConfig::default().start_ms,
            span_ms: 8 * 60 * MINUTE_MS,
            pool_trips: 8_000,
            scored: 1_000,
            clones: 60,
            look_alike_share: 0.4,
            co_located_share: 0.85,
            detection_rate: 0.9,
            misread_rate: 0.03,
            max_trips: 3,
            first_trip_share: 0.4,
            stop_min_ms: 30 * MINUTE_MS,
            stop_max_ms: 120 * MINUTE_MS,
            chain_radius_km: 2.0,
            near_km: 3.0,
            near_ms: 10 * MINUTE_MS,
            clone_apart_km: 10.0,
            clone_min_overlap_ms: 10 * MINUTE_MS,
        }
    }
}

/// What part a vehicle plays in the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VehicleKind {
    /// A scored vehicle: track it by its plate.
    Scored,
    /// Carries a plate one misread away from scored vehicle `of`'s.
    LookAlike {
        /// Index (into [`HardCity::vehicles`]) of the scored vehicle it resembles.
        of: usize,
        /// Whether it drives near that vehicle at the same time.
        co_located: bool,
    },
    /// One of two vehicles carrying the same (scored) plate at the same time, far apart.
    Clone {
        /// Index of the other vehicle with this plate.
        twin: usize,
    },
    /// Other traffic.
    Background,
}

/// One trip of a vehicle, by true times (no clock skew).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TripSpan {
    /// First camera pass, unix ms.
    pub start_ms: i64,
    /// Last camera pass, unix ms.
    pub end_ms: i64,
    /// Index of the first camera passed.
    pub first_camera: u32,
    /// Index of the last camera passed.
    pub last_camera: u32,
}

/// One vehicle of the hard city and the events it caused.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredVehicle {
    /// Its true plate, normalised (e.g. "粤B12345").
    pub plate: String,
    /// The same in display form, as read when read right (e.g. "粤B·12345").
    pub display: String,
    /// What part it plays.
    pub kind: VehicleKind,
    /// Its trips, in time order.
    pub trips: Vec<TripSpan>,
    /// Ids of every event it caused (all its trips), misreads included.
    pub event_ids: Vec<[u8; 16]>,
}

/// Counts describing one built scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HardCityStats {
    /// Number of scored vehicles making 1, 2 and 3… trips (`[n]` = vehicles with n trips;
    /// index 0 unused).
    pub trips_per_scored: Vec<usize>,
    /// Look-alike vehicles built.
    pub look_alikes: usize,
    /// Of which drive near their scored vehicle at the same time.
    pub co_located_look_alikes: usize,
    /// Look-alikes by the kind of misread their plate is: substitution, deletion, insertion.
    pub look_alike_kinds: [usize; 3],
    /// Clone pairs built.
    pub clone_pairs: usize,
    /// Background vehicles.
    pub background: usize,
    /// Generated trips left out (their plate was taken, or they passed no camera).
    pub unused_trips: usize,
    /// Events whose plate is misread.
    pub misreads: usize,
}

/// A built hard city: the events to store and who caused each.
#[derive(Debug, Clone, PartialEq)]
pub struct HardCity {
    /// Every event, sorted by `(captured_at_ms, event_id)`.
    pub events: Vec<SyntheticEvent>,
    /// The vehicles: scored first (`0..config.scored`, fewer if the pool ran out), then clone
    /// pairs (A, B), then look-alikes, then background.
    pub vehicles: Vec<ScoredVehicle>,
    /// What was built.
    pub stats: HardCityStats,
}

impl HardCity {
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
}

/// A plate one confusable substitution away from `key` (the `nth` possible one, cycling),
/// never touching the province character: the look-alike plates of the old scoring scenario.
pub fn confusable_neighbour(key: &str, nth: usize) -> Option<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut options = Vec::new();
    for (position, c) in chars.iter().enumerate().skip(1) {
        for group in CONFUSION_GROUPS {
            if group.contains(c) {
                for &other in group.iter().filter(|o| *o != c) {
                    let mut variant = chars.clone();
                    variant[position] = other;
                    options.push(variant.into_iter().collect::<String>());
                }
            }
        }
    }
    (!options.is_empty()).then(|| options[nth % options.len()].clone())
}

/// The old scoring scenario's dense plate population, from the traffic's ground truth: the
/// first `scored` vehicles keep their plates; every later vehicle `v` takes a confusable
/// neighbour of scored vehicle `v % scored`'s plate (unless that is a scored plate itself).
/// Returns each vehicle's plate and the vehicle that made each event.
pub fn dense_plates(
    truth: &[TruthVehicle],
    scored: usize,
) -> (Vec<String>, HashMap<[u8; 16], usize>) {
    let mut owner: HashMap<[u8; 16], usize> = HashMap::new();
    for (vehicle, t) in truth.iter().enumerate() {
        for id in &t.event_ids {
            owner.insert(*id, vehicle);
        }
    }
    let mut plate_of: Vec<String> = truth.iter().map(|t| t.true_plate.clone()).collect();
    let scored = scored.min(truth.len());
    if scored == 0 {
        return (plate_of, owner);
    }
    let scored_plates: HashSet<String> = plate_of[..scored].iter().cloned().collect();
    for vehicle in scored..truth.len() {
        if let Some(near) =
            confusable_neighbour(&truth[vehicle % scored].true_plate, vehicle / scored)
            && !scored_plates.contains(&near)
        {
            plate_of[vehicle] = near;
        }
    }
    (plate_of, owner)
}

/// The display form of a normalised plate key: a separator after the province and authority
/// characters ("粤B12345" → "粤B·12345").
pub fn display_of(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    for (index, c) in key.chars().enumerate() {
        if index == 2 {
            out.push(DISPLAY_SEPARATOR);
        }
        out.push(c);
    }
    out
}

/// One generated trip.
#[derive(Debug)]
struct PoolTrip {
    /// True plate key of the generated subject.
    key: String,
    /// Every camera pass: where and when (true time).
    stops: Vec<(Point, i64)>,
    /// The cameras of `stops`.
    cameras: Vec<u32>,
    /// Indices into the pool's events.
    events: Vec<usize>,
}

impl PoolTrip {
    fn start_ms(&self) -> i64 {
        self.stops.first().map_or(i64::MAX, |s| s.1)
    }

    fn end_ms(&self) -> i64 {
        self.stops.last().map_or(i64::MIN, |s| s.1)
    }

    fn span(&self) -> TripSpan {
        TripSpan {
            start_ms: self.start_ms(),
            end_ms: self.end_ms(),
            first_camera: self.cameras.first().copied().unwrap_or_default(),
            last_camera: self.cameras.last().copied().unwrap_or_default(),
        }
    }

    /// The index range of stops with true time in `[from, to]`.
    fn stops_between(&self, from: i64, to: i64) -> std::ops::Range<usize> {
        let lo = self.stops.partition_point(|s| s.1 < from);
        let hi = self.stops.partition_point(|s| s.1 <= to);
        lo..hi.max(lo)
    }

    /// Where the trip is at `at` (within its span): the pass nearest in time.
    fn position_at(&self, at: i64) -> Option<Point> {
        let after = self.stops.partition_point(|s| s.1 < at);
        let candidates = [after.checked_sub(1), Some(after)];
        candidates
            .into_iter()
            .flatten()
            .filter_map(|i| self.stops.get(i))
            .min_by_key(|s| (s.1 - at).abs())
            .map(|s| s.0)
    }
}

fn cell(value: f64, size: f64) -> i64 {
    (value / size).floor() as i64
}

/// The builder's working state.
struct Builder<'a> {
    config: &'a HardCityConfig,
    trips: Vec<PoolTrip>,
    used: Vec<bool>,
    rng: ChaCha8Rng,
    /// Trips by the 2-km cell (`chain_radius_km`) of their first pass.
    starts: HashMap<(i64, i64), Vec<usize>>,
    /// Trips by the cells (`near_km` × `near_ms`) their route passes through.
    routes: HashMap<(i64, i64, i64), Vec<usize>>,
    taken: HashSet<String>,
}

/// A vehicle being assembled: its key and trips (indices into the pool).
struct Assembled {
    key: String,
    kind: VehicleKind,
    trips: Vec<usize>,
    /// Colour and type for every trip (a chained trip takes the vehicle's).
    looks: Option<(u8, u8)>,
}

impl HardCity {
    /// Build the scenario in `city` (see the module documentation). Deterministic: the same
    /// city and config give the same events and vehicles. If the pool runs out, fewer
    /// vehicles than asked are built; [`HardCity::stats`] says how many.
    pub fn generate(city: &City, config: HardCityConfig) -> HardCity {
        let traffic_config = TrafficConfig {
            seed: config.seed,
            start_ms: config.start_ms,
            span_ms: config.span_ms,
            vehicles: config.pool_trips,
            person_share: 0.0,
            non_motor_share: 0.0,
            detection_rate: config.detection_rate,
            misread_rate: config.misread_rate,
            ..TrafficConfig::default()
        };
        let mut traffic = Traffic::new(city, traffic_config).with_truth();
        let pool_events: Vec<SyntheticEvent> = traffic.by_ref().collect();
        let truth = traffic.take_truth();
        let index_of: HashMap<[u8; 16], usize> = pool_events
            .iter()
            .enumerate()
            .map(|(index, event)| (event.event_id, index))
            .collect();
        let points: Vec<Point> = city
            .registry
            .cameras()
            .iter()
            .map(|camera| city.projection.to_point(camera.lon, camera.lat))
            .collect();
        let trips: Vec<PoolTrip> = truth
            .into_iter()
            .map(|vehicle| {
                let mut stops = Vec::with_capacity(vehicle.route.len());
                let mut cameras = Vec::with_capacity(vehicle.route.len());
                for stop in &vehicle.route {
                    if let Some(&point) = points.get(stop.camera_index as usize) {
                        stops.push((point, stop.true_time_ms));
                        cameras.push(stop.camera_index);
                    }
                }
                PoolTrip {
                    key: vehicle.true_plate,
                    stops,
                    cameras,
                    events: vehicle
                        .event_ids
                        .iter()
                        .filter_map(|id| index_of.get(id).copied())
                        .collect(),
                }
            })
            .collect();
        let mut builder = Builder::new(&config, trips);
        let assembled = builder.assemble();
        builder.finish(&pool_events, assembled)
    }
}

impl<'a> Builder<'a> {
    fn new(config: &'a HardCityConfig, trips: Vec<PoolTrip>) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(0x5ce7_a410);
        let chain_cell = config.chain_radius_km.max(0.1);
        let near_cell = config.near_km.max(0.1);
        let near_bucket = config.near_ms.max(1);
        let mut starts: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        let mut routes: HashMap<(i64, i64, i64), Vec<usize>> = HashMap::new();
        for (index, trip) in trips.iter().enumerate() {
            if trip.events.is_empty() {
                continue;
            }
            if let Some(&(point, _)) = trip.stops.first() {
                starts
                    .entry((cell(point.x, chain_cell), cell(point.y, chain_cell)))
                    .or_default()
                    .push(index);
            }
            let mut last = None;
            for &(point, at) in &trip.stops {
                let key = (
                    cell(point.x, near_cell),
                    cell(point.y, near_cell),
                    at.div_euclid(near_bucket),
                );
                if last != Some(key) {
                    let list = routes.entry(key).or_default();
                    if list.last() != Some(&index) {
                        list.push(index);
                    }
                    last = Some(key);
                }
            }
        }
        let used = trips.iter().map(|t| t.events.is_empty()).collect();
        Self {
            config,
            trips,
            used,
            rng,
            starts,
            routes,
            taken: HashSet::new(),
        }
    }

    /// Hand the pool's trips out to vehicles, in the order of the module documentation.
    fn assemble(&mut self) -> Vec<Assembled> {
        let config = self.config;
        let mut vehicles: Vec<Assembled> = Vec::new();
        let first_by = config.start_ms
            + (config.span_ms as f64 * config.first_trip_share.clamp(0.0, 1.0)) as i64;
        let mut order: Vec<usize> = (0..self.trips.len()).collect();
        order.shuffle(&mut self.rng);
        let mut firsts = order
            .iter()
            .copied()
            .filter(|&t| self.trips[t].start_ms() < first_by)
            .collect::<Vec<_>>()
            .into_iter();

        // 1. Scored vehicles.
        while vehicles.len() < config.scored {
            let Some(first) = self.next_first(&mut firsts) else {
                break;
            };
            let trips = self.chain(first);
            vehicles.push(Assembled {
                key: self.trips[first].key.clone(),
                kind: VehicleKind::Scored,
                trips,
                looks: None,
            });
        }
        let scored = vehicles.len();

        // 2. Clone pairs: A like a scored vehicle, B one far-away trip at the same time.
        let mut pairs = 0;
        while pairs < config.clones {
            let Some(first) = self.next_first(&mut firsts) else {
                break;
            };
            let trips = self.chain(first);
            let Some(twin) = self.clone_twin(&trips, &order) else {
                // No twin for this one: give its trips back, its plate stays reserved.
                for &t in &trips {
                    self.used[t] = false;
                }
                continue;
            };
            self.used[twin] = true;
            let key = self.trips[first].key.clone();
            let a = vehicles.len();
            vehicles.push(Assembled {
                key: key.clone(),
                kind: VehicleKind::Clone { twin: a + 1 },
                trips,
                looks: None,
            });
            vehicles.push(Assembled {
                key,
                kind: VehicleKind::Clone { twin: a },
                trips: vec![twin],
                looks: None,
            });
            pairs += 1;
        }

        // 3. Look-alikes of a share of the scored vehicles.
        let wanted = ((scored as f64) * config.look_alike_share.clamp(0.0, 1.0)).ceil() as usize;
        let co_located_wanted =
            ((wanted as f64) * config.co_located_share.clamp(0.0, 1.0)).round() as usize;
        let mut chosen: Vec<usize> = (0..scored).collect();
        chosen.shuffle(&mut self.rng);
        chosen.truncate(wanted);
        let mut random_trips = order.clone().into_iter();
        for (n, &of) in chosen.iter().enumerate() {
            let Some(key) = self.look_alike_key(&vehicles[of].key) else {
                continue;
            };
            let near = if n < co_located_wanted {
                self.co_located_trip(&vehicles[of].trips)
            } else {
                None
            };
            let co_located = near.is_some();
            let trip = near.or_else(|| random_trips.find(|&t| !self.used[t]));
            let Some(trip) = trip else {
                break;
            };
            self.used[trip] = true;
            self.taken.insert(key.clone());
            vehicles.push(Assembled {
                key,
                kind: VehicleKind::LookAlike { of, co_located },
                trips: vec![trip],
                looks: None,
            });
        }

        // 4. Background: the rest, with their own plates.
        for trip in 0..self.trips.len() {
            if self.used[trip] || self.taken.contains(&self.trips[trip].key) {
                continue;
            }
            self.used[trip] = true;
            let key = self.trips[trip].key.clone();
            self.taken.insert(key.clone());
            vehicles.push(Assembled {
                key,
                kind: VehicleKind::Background,
                trips: vec![trip],
                looks: None,
            });
        }
        vehicles
    }

    /// The next unused trip from `firsts` whose plate is free; marks both taken.
    fn next_first(&mut self, firsts: &mut impl Iterator<Item = usize>) -> Option<usize> {
        let first = firsts.find(|&t| !self.used[t] && !self.taken.contains(&self.trips[t].key))?;
        self.used[first] = true;
        self.taken.insert(self.trips[first].key.clone());
        Some(first)
    }

    /// `first` followed by up to `max_trips − 1` chained trips (marked used).
    fn chain(&mut self, first: usize) -> Vec<usize> {
        let max = self.config.max_trips.max(1);
        let wanted = self.rng.random_range(1..=max);
        let mut trips = vec![first];
        while trips.len() < wanted {
            let Some(&previous) = trips.last() else {
                break;
            };
            let Some(next) = self.next_trip(previous) else {
                break;
            };
            self.used[next] = true;
            trips.push(next);
        }
        trips
    }

    /// An unused trip starting near where `previous` ended, a stop later.
    fn next_trip(&mut self, previous: usize) -> Option<usize> {
        let config = self.config;
        let trip = &self.trips[previous];
        let &(end_point, end_ms) = trip.stops.last()?;
        let size = config.chain_radius_km.max(0.1);
        let (cx, cy) = (cell(end_point.x, size), cell(end_point.y, size));
        let mut candidates = Vec::new();
        for dx in -1..=1 {
            for dy in -1..=1 {
                let Some(list) = self.starts.get(&(cx + dx, cy + dy)) else {
                    continue;
                };
                for &t in list {
                    let Some(&(point, at)) = self.trips[t].stops.first() else {
                        continue;
                    };
                    if !self.used[t]
                        && at >= end_ms + config.stop_min_ms
                        && at <= end_ms + config.stop_max_ms
                        && point.distance(end_point) <= config.chain_radius_km
                    {
                        candidates.push(t);
                    }
                }
            }
        }
        candidates.sort_unstable();
        (!candidates.is_empty()).then(|| candidates[self.rng.random_range(0..candidates.len())])
    }

    /// Where a vehicle driving `trips` (time-ordered) is at `at`, if within its window:
    /// during a trip the nearest pass in time, between trips where the last one ended.
    fn position_of(&self, trips: &[usize], at: i64) -> Option<Point> {
        let mut parked = None;
        for &t in trips {
            let trip = &self.trips[t];
            if at < trip.start_ms() {
                return parked;
            }
            if at <= trip.end_ms() {
                return trip.position_at(at);
            }
            parked = trip.stops.last().map(|s| s.0);
        }
        None
    }

    /// An unused trip that can carry the same plate as a vehicle driving `trips`: long
    /// enough at the same time as one of its trips, and far away throughout.
    fn clone_twin(&self, trips: &[usize], order: &[usize]) -> Option<usize> {
        let config = self.config;
        let (Some(&first), Some(&last)) = (trips.first(), trips.last()) else {
            return None;
        };
        let (window_start, window_end) = (self.trips[first].start_ms(), self.trips[last].end_ms());
        order.iter().copied().find(|&b| {
            if self.used[b] {
                return false;
            }
            let twin = &self.trips[b];
            let driving_together: i64 = trips
                .iter()
                .map(|&a| {
                    let a = &self.trips[a];
                    (a.end_ms().min(twin.end_ms()) - a.start_ms().max(twin.start_ms())).max(0)
                })
                .sum();
            if driving_together < config.clone_min_overlap_ms {
                return false;
            }
            let apart = |p: Point, q: Point| p.distance(q) > config.clone_apart_km;
            let twin_ok = twin.stops[twin.stops_between(window_start, window_end)]
                .iter()
                .all(|&(p, at)| self.position_of(trips, at).is_none_or(|q| apart(p, q)));
            twin_ok
                && trips.iter().all(|&a| {
                    let a = &self.trips[a];
                    a.stops[a.stops_between(twin.start_ms(), twin.end_ms())]
                        .iter()
                        .all(|&(p, at)| twin.position_at(at).is_none_or(|q| apart(p, q)))
                })
        })
    }

    /// A free plate one misread away from `key` (see the module documentation).
    fn look_alike_key(&mut self, key: &str) -> Option<String> {
        let variants: Vec<Variant> = MISREAD_MODEL
            .variants(key)
            .into_iter()
            .filter(|v| !self.taken.contains(&v.key) && normalize(&v.key) == v.key)
            .collect();
        let shares = [
            (MisreadKind::Substitution, 0.5),
            (MisreadKind::Deletion, 0.25),
            (MisreadKind::Insertion, 0.25),
        ];
        let present: Vec<(MisreadKind, f64)> = shares
            .into_iter()
            .filter(|(kind, _)| variants.iter().any(|v| v.kind == *kind))
            .collect();
        let total: f64 = present.iter().map(|(_, share)| share).sum();
        let mut roll = self.rng.random::<f64>() * total;
        let mut kind = present.last()?.0;
        for (candidate, share) in &present {
            if roll < *share {
                kind = *candidate;
                break;
            }
            roll -= share;
        }
        let of_kind: Vec<&Variant> = variants.iter().filter(|v| v.kind == kind).collect();
        let chosen = if self.rng.random_bool(0.5) {
            let total: f64 = of_kind.iter().map(|v| v.probability).sum();
            let mut roll = self.rng.random::<f64>() * total;
            of_kind
                .iter()
                .find(|v| {
                    roll -= v.probability;
                    roll < 0.0
                })
                .or(of_kind.last())
                .copied()
        } else {
            of_kind
                .get(self.rng.random_range(0..of_kind.len()))
                .copied()
        }?;
        Some(chosen.key.clone())
    }

    /// An unused trip whose route passes within `near_km` of one of `trips`' passes within
    /// `near_ms` of it, chosen at random among those that do.
    fn co_located_trip(&mut self, trips: &[usize]) -> Option<usize> {
        let config = self.config;
        let size = config.near_km.max(0.1);
        let bucket = config.near_ms.max(1);
        let mut candidates = BTreeSet::new();
        for &t in trips {
            let mut last = None;
            for &(point, at) in &self.trips[t].stops {
                let key = (
                    cell(point.x, size),
                    cell(point.y, size),
                    at.div_euclid(bucket),
                );
                if last == Some(key) {
                    continue;
                }
                last = Some(key);
                for dx in -1..=1 {
                    for dy in -1..=1 {
                        for dt in -1..=1 {
                            if let Some(list) =
                                self.routes.get(&(key.0 + dx, key.1 + dy, key.2 + dt))
                            {
                                candidates.extend(list.iter().copied().filter(|&c| !self.used[c]));
                            }
                        }
                    }
                }
            }
        }
        let mut candidates: Vec<usize> = candidates.into_iter().collect();
        candidates.shuffle(&mut self.rng);
        candidates.into_iter().find(|&c| {
            let other = &self.trips[c];
            trips.iter().any(|&t| {
                let mine = &self.trips[t];
                other.stops.iter().any(|&(p, at)| {
                    mine.stops[mine.stops_between(at - config.near_ms, at + config.near_ms)]
                        .iter()
                        .any(|&(q, _)| p.distance(q) <= config.near_km)
                })
            })
        })
    }

    /// Rewrite the pool's events for the assembled vehicles.
    fn finish(self, pool_events: &[SyntheticEvent], assembled: Vec<Assembled>) -> HardCity {
        let mut reads = ChaCha8Rng::seed_from_u64(self.config.seed);
        reads.set_stream(0x0052_ead5);
        let mut events = Vec::with_capacity(pool_events.len());
        let mut vehicles = Vec::with_capacity(assembled.len());
        let mut stats = HardCityStats {
            trips_per_scored: vec![0; self.config.max_trips.max(1) + 1],
            ..HardCityStats::default()
        };
        let mut misread_plate = String::new();
        for mut vehicle in assembled {
            let display = display_of(&vehicle.key);
            let mut event_ids = Vec::new();
            let mut spans = Vec::with_capacity(vehicle.trips.len());
            let rewrite = !matches!(vehicle.kind, VehicleKind::Background);
            for &t in &vehicle.trips {
                let trip = &self.trips[t];
                spans.push(trip.span());
                for &e in &trip.events {
                    let mut event = pool_events[e].clone();
                    let misread_here = normalize(&event.plate) != trip.key;
                    if rewrite {
                        if misread_here {
                            misread(&display, &mut reads, &mut misread_plate);
                            event.plate.clone_from(&misread_plate);
                        } else {
                            event.plate.clone_from(&display);
                        }
                        let looks = *vehicle
                            .looks
                            .get_or_insert((event.vehicle_color, event.vehicle_type));
                        (event.vehicle_color, event.vehicle_type) = looks;
                        // The derived attributes follow the rewritten plate and looks.
                        event.plate_color = attributes::plate_color_of(&display, looks.1);
                        event.brand = attributes::brand_of(&vehicle.key, looks.1);
                        attributes::char_confidences(
                            &event.plate,
                            &display,
                            event.plate_confidence,
                            attributes::event_bits(&event.event_id),
                            &mut event.plate_char_confidence,
                        );
                    }
                    stats.misreads += usize::from(misread_here);
                    event_ids.push(event.event_id);
                    events.push(event);
                }
            }
            match vehicle.kind {
                VehicleKind::Scored => {
                    let n = spans.len().min(stats.trips_per_scored.len() - 1);
                    stats.trips_per_scored[n] += 1;
                }
                VehicleKind::LookAlike { of, co_located } => {
                    stats.look_alikes += 1;
                    stats.co_located_look_alikes += usize::from(co_located);
                    let of_key: &str = vehicles
                        .get(of)
                        .map_or("", |v: &ScoredVehicle| v.plate.as_str());
                    let kind =
                        match vehicle.key.chars().count() as i64 - of_key.chars().count() as i64 {
                            0 => 0,
                            -1 => 1,
                            _ => 2,
                        };
                    stats.look_alike_kinds[kind] += 1;
                }
                VehicleKind::Clone { twin } => {
                    stats.clone_pairs += usize::from(twin > vehicles.len());
                }
                VehicleKind::Background => stats.background += 1,
            }
            vehicles.push(ScoredVehicle {
                plate: std::mem::take(&mut vehicle.key),
                display,
                kind: vehicle.kind,
                trips: spans,
                event_ids,
            });
        }
        stats.unused_trips = self.used.iter().filter(|u| !**u).count()
            + self.trips.iter().filter(|t| t.events.is_empty()).count();
        events.sort_by(|a, b| {
            a.captured_at_ms
                .cmp(&b.captured_at_ms)
                .then_with(|| a.event_id.cmp(&b.event_id))
        });
        HardCity {
            events,
            vehicles,
            stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::CityConfig;

    #[test]
    fn a_confusable_neighbour_differs_in_one_confusable_character_after_the_province() {
        for nth in 0..20 {
            let near = confusable_neighbour("粤B80215", nth).expect("confusable characters");
            let diffs: Vec<(char, char)> = "粤B80215"
                .chars()
                .zip(near.chars())
                .filter(|(a, b)| a != b)
                .collect();
            assert_eq!(diffs.len(), 1, "{near}");
            let (a, b) = diffs[0];
            assert!(
                CONFUSION_GROUPS
                    .iter()
                    .any(|g| g.contains(&a) && g.contains(&b))
            );
            assert!(near.starts_with('粤'));
        }
        assert_eq!(confusable_neighbour("粤XXXXX", 0), None);
    }

    fn city() -> &'static City {
        static CITY: OnceLock<City> = OnceLock::new();
        CITY.get_or_init(|| {
            City::generate(&CityConfig {
                seed: 5,
                cameras: 10_000,
                districts: 30,
                gateways: 100,
            })
        })
    }

    fn config() -> HardCityConfig {
        HardCityConfig {
            seed: 11,
            pool_trips: 3_000,
            scored: 150,
            clones: 12,
            ..HardCityConfig::default()
        }
    }

    fn built() -> &'static HardCity {
        static BUILT: OnceLock<HardCity> = OnceLock::new();
        BUILT.get_or_init(|| HardCity::generate(city(), config()))
    }

    fn point(camera: u32) -> Point {
        city().camera_point(camera).expect("camera")
    }

    #[test]
    fn display_puts_the_separator_after_the_authority() {
        assert_eq!(display_of("粤B12345"), "粤B·12345");
        assert_eq!(display_of("粤BD12345"), "粤B·D12345");
        assert_eq!(normalize(&display_of("京A7Q2")), "京A7Q2");
    }

    #[test]
    fn the_same_config_builds_the_same_city_and_another_seed_another() {
        let again = HardCity::generate(city(), config());
        assert!(again == *built());
        let other = HardCity::generate(
            city(),
            HardCityConfig {
                seed: 12,
                ..config()
            },
        );
        assert_ne!(other.events, built().events);
    }

    #[test]
    fn every_event_is_unique_sorted_and_owned_by_one_vehicle() {
        let city = built();
        let mut seen = HashSet::new();
        for event in &city.events {
            assert!(seen.insert(event.event_id), "duplicate event id");
        }
        assert!(city.events.windows(2).all(|w| {
            (w[0].captured_at_ms, w[0].event_id) <= (w[1].captured_at_ms, w[1].event_id)
        }));
        let owned: usize = city.vehicles.iter().map(|v| v.event_ids.len()).sum();
        assert_eq!(owned, city.events.len());
        assert_eq!(city.owners().len(), city.events.len());
    }

    #[test]
    fn reads_are_the_vehicles_plate_or_one_misread_of_it_at_the_configured_rate() {
        let city = built();
        let owners = city.owners();
        let mut misreads = 0;
        for event in &city.events {
            let vehicle = &city.vehicles[owners[&event.event_id]];
            let read = normalize(&event.plate);
            if read != vehicle.plate {
                misreads += 1;
                assert!(
                    MISREAD_MODEL.probability(&vehicle.plate, &read) > 0.0,
                    "{read} is no misread of {}",
                    vehicle.plate
                );
            } else {
                assert_eq!(event.plate, vehicle.display);
            }
        }
        assert_eq!(misreads, city.stats.misreads);
        let rate = misreads as f64 / city.events.len() as f64;
        assert!(rate > 0.02 && rate < 0.04, "misread rate {rate}");
    }

    #[test]
    fn scored_vehicles_chain_trips_with_stops_near_where_they_parked() {
        let city = built();
        let config = config();
        let scored: Vec<&ScoredVehicle> = city
            .vehicles
            .iter()
            .filter(|v| v.kind == VehicleKind::Scored)
            .collect();
        assert_eq!(scored.len(), config.scored);
        assert_eq!(
            city.stats.trips_per_scored.iter().sum::<usize>(),
            config.scored
        );
        assert!(city.stats.trips_per_scored[2] + city.stats.trips_per_scored[3] > 30);
        let first_by = config.start_ms + (config.span_ms as f64 * config.first_trip_share) as i64;
        let mut plates = HashSet::new();
        for vehicle in &scored {
            assert!(plates.insert(vehicle.plate.as_str()));
            assert!(!vehicle.trips.is_empty() && vehicle.trips.len() <= config.max_trips);
            assert!(vehicle.trips[0].start_ms < first_by);
            for pair in vehicle.trips.windows(2) {
                let stop = pair[1].start_ms - pair[0].end_ms;
                assert!((config.stop_min_ms..=config.stop_max_ms).contains(&stop));
                let moved = point(pair[0].last_camera).distance(point(pair[1].first_camera));
                assert!(moved <= config.chain_radius_km, "{moved} km");
            }
        }
    }

    #[test]
    fn look_alikes_are_one_misread_away_free_plates_and_mostly_nearby() {
        let city = built();
        let config = config();
        let owners = city.owners();
        let by_id: HashMap<[u8; 16], &SyntheticEvent> =
            city.events.iter().map(|e| (e.event_id, e)).collect();
        let mut plates: HashMap<&str, usize> = HashMap::new();
        for vehicle in &city.vehicles {
            *plates.entry(vehicle.plate.as_str()).or_default() += 1;
        }
        let mut count = 0;
        let mut near = 0;
        for vehicle in &city.vehicles {
            let VehicleKind::LookAlike { of, co_located } = vehicle.kind else {
                continue;
            };
            count += 1;
            let scored = &city.vehicles[of];
            assert_eq!(scored.kind, VehicleKind::Scored);
            assert!(MISREAD_MODEL.probability(&scored.plate, &vehicle.plate) > 0.0);
            assert_eq!(
                plates[vehicle.plate.as_str()],
                1,
                "{} collides",
                vehicle.plate
            );
            if co_located {
                near += 1;
                // Checked on the detections (90% of passes, clocks off by seconds), so with
                // some slack.
                let found = vehicle.event_ids.iter().any(|id| {
                    let mine = by_id[id];
                    scored.event_ids.iter().any(|other| {
                        let theirs = by_id[other];
                        (mine.captured_at_ms - theirs.captured_at_ms).abs()
                            <= config.near_ms + MINUTE_MS
                            && point(mine.camera_index).distance(point(theirs.camera_index))
                                <= config.near_km + 1.5
                    })
                });
                assert!(found, "{} is not near {}", vehicle.plate, scored.plate);
            }
            assert!(vehicle.event_ids.iter().all(|id| owners[id] != of));
        }
        assert_eq!(count, city.stats.look_alikes);
        assert!(count as f64 >= config.look_alike_share * config.scored as f64);
        assert!(near as f64 >= 0.7 * count as f64, "{near}/{count} nearby");
        assert!(city.stats.look_alike_kinds.iter().all(|&k| k > 0));
    }

    #[test]
    fn clone_twins_share_a_plate_and_drive_at_once_far_apart() {
        let city = built();
        let config = config();
        let by_id: HashMap<[u8; 16], &SyntheticEvent> =
            city.events.iter().map(|e| (e.event_id, e)).collect();
        let mut pairs = 0;
        for (a, vehicle) in city.vehicles.iter().enumerate() {
            let VehicleKind::Clone { twin } = vehicle.kind else {
                continue;
            };
            let other = &city.vehicles[twin];
            assert_eq!(other.kind, VehicleKind::Clone { twin: a });
            assert_eq!(other.plate, vehicle.plate);
            if twin < a {
                continue;
            }
            pairs += 1;
            let together: i64 = vehicle
                .trips
                .iter()
                .flat_map(|x| other.trips.iter().map(move |y| (x, y)))
                .map(|(x, y)| (x.end_ms.min(y.end_ms) - x.start_ms.max(y.start_ms)).max(0))
                .sum();
            assert!(together >= config.clone_min_overlap_ms);
            for id in &vehicle.event_ids {
                for other_id in &other.event_ids {
                    let (x, y) = (by_id[id], by_id[other_id]);
                    if (x.captured_at_ms - y.captured_at_ms).abs() < 30_000 {
                        let apart = point(x.camera_index).distance(point(y.camera_index));
                        assert!(apart > config.clone_apart_km - 1.0, "{apart} km");
                    }
                }
            }
        }
        assert_eq!(pairs, config.clones);
        assert_eq!(city.stats.clone_pairs, config.clones);
        let plates: HashSet<&str> = city
            .vehicles
            .iter()
            .filter(|v| !matches!(v.kind, VehicleKind::Clone { .. }))
            .map(|v| v.plate.as_str())
            .collect();
        assert!(
            city.vehicles
                .iter()
                .filter(|v| matches!(v.kind, VehicleKind::Clone { .. }))
                .all(|v| !plates.contains(v.plate.as_str()))
        );
    }

    #[test]
    fn background_takes_the_rest_with_their_own_plates() {
        let city = built();
        assert!(city.stats.background > 1_000);
        let total_trips: usize = city.vehicles.iter().map(|v| v.trips.len()).sum();
        assert_eq!(total_trips + city.stats.unused_trips, config().pool_trips,);
    }
}
