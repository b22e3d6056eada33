//! Investigative analytics benchmark (benches/analytics.sh, issue 17): scene searches, series
//! of scenes and co-travel, one request at a time, through the query node's HTTP API and, for
//! ClickHouse, as the bare SQL the node issues for the same request, sent to ClickHouse's HTTP
//! interface; plus the data these searches need.
//!
//! `analytics_bench planted CAMERAS_CSV START_MS`
//!     the planted co-travel targets (and their companions) as TabSeparated rows for
//!     `INSERT INTO detections (PLANTED_COLUMNS)`, on stdout
//! `analytics_bench fill-sqlite DATABASE CAMERAS_CSV ROWS PLATES START_MS`
//!     an embedded (SQLite) database of ROWS uniform detections over the 30 days from START_MS
//!     plus the planted targets, written with `SqliteStore::write` in capture order
//! `analytics_bench run --api URL --token TOKEN --cameras CSV --start MS --end MS ...`
//!     the measurement; one JSON line per (search, way of asking) on stdout
//!
//! **Planted targets.** The uniform load has no vehicle with 60 sightings in a day, so
//! [`PLANTED_TARGETS`] targets (`京CT0001`..) each drive four trips of fifteen sightings on
//! day [`PLANTED_DAY`] of the data, each camera a random one within 1.5 km of the last one,
//! 60-150 s apart; a companion (`京CF0001`..) passes the same camera 20-40 s behind the target
//! at about four in five of them. Deterministic (seeded), so a re-run plants the same rows
//! with the same event ids.
//!
//! **Requests** (seeded): a scene is a 1 km circle around a random registry camera (so
//! centres fall where cameras are dense, as incidents near cameras do) over a random hour of
//! the 30 days; a series is five 1 km circles over 2 h each, every second one random, the
//! others centred on five sightings of a planted target (the incident-style series, with
//! the target and its companion to find); a co-travel asks for a planted target over its
//! whole day. The bare SQL of a request is built exactly as `clickhouse/src/reader.rs`
//! builds it (the camera list from the same `CameraIndex` over the same registry, the same
//! text, the same bound values, `default_format=RowBinary`; only `log_queries=1` and a
//! `query_id` are added to the URL, so `system.query_log` gives its rows read). Co-travel's bare SQL is the node's two reads: the
//! target's sightings, then (windows from those rows with the node's own `windows_around`)
//! the sightings around them.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use camtrail_model::{
    Camera, CameraRegistry, Detection, EventId, ObjectClass, VehicleAttributes, plate,
};
use camtrail_query::analytics::cotravel::windows_around;
use camtrail_query::analytics::{Area, CameraIndex};
use camtrail_storage::{CameraWindow, StoredSighting};
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// The data spans this many days from its start.
const DATA_DAYS: i64 = 30;
/// Planted targets, each with one companion.
const PLANTED_TARGETS: usize = 20;
/// The day (from the data's start) the planted targets drive.
const PLANTED_DAY: i64 = 25;
/// Trips per target and sightings per trip (4 x 15 = 60 sightings in the day).
const TRIPS: usize = 4;
const PER_TRIP: usize = 15;
/// The node's defaults the bare SQL repeats (`camtrail config`, `[query.limits]`).
const MAX_ANALYTICS_ROWS: u64 = 200_000;
const MAX_TRACK_ROWS: u64 = 100_000;
const COTRAVEL_DELTA_MS: i64 = 60_000;
/// Columns of the TabSeparated rows `planted` prints.
const PLANTED_COLUMNS: &str = "subject_key, captured_at_ms, event_id, camera_id, object_class, \
    plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, bbox_width, \
    bbox_height, has_snapshot, gateway_id, received_at_ms";
/// `clickhouse/src/reader.rs`'s `SIGHTING_COLUMNS`.
const SIGHTING_COLUMNS: &str = "event_id, camera_id, captured_at_ms, subject_key, plate, \
    plate_confidence, object_class, has_snapshot, vehicle_color, vehicle_type, plate_color, \
    vehicle_brand, direction, speed_kmh, plate_char_confidence";
/// Plate letters of the uniform load (no I, no O), as benches/query.sh.
const LETTERS: &[u8; 24] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

#[derive(Parser)]
#[command(about = "Investigative analytics benchmark client (benches/analytics.sh)")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the planted rows as TabSeparated (columns: PLANTED_COLUMNS).
    Planted { cameras: String, start_ms: i64 },
    /// Print the column list of `planted`'s rows.
    PlantedColumns,
    /// Fill an embedded database with uniform detections and the planted targets.
    FillSqlite {
        database: String,
        cameras: String,
        rows: u64,
        plates: u64,
        start_ms: i64,
    },
    /// Measure.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Query node base URL.
    #[arg(long)]
    api: String,
    /// Bearer token (a supervisor: five scenes need it).
    #[arg(long)]
    token: String,
    /// The registry the node serves.
    #[arg(long)]
    cameras: String,
    /// Data window: start and end, unix ms.
    #[arg(long)]
    start: i64,
    #[arg(long)]
    end: i64,
    /// ClickHouse HTTP URL and database: also measure the bare SQL.
    #[arg(long)]
    clickhouse: Option<String>,
    #[arg(long)]
    database: Option<String>,
    /// Tag of this run's query ids (`<run>-<search>-<n>`).
    #[arg(long, default_value = "run")]
    run_id: String,
    #[arg(long, default_value_t = 200)]
    scenes: usize,
    #[arg(long, default_value_t = 100)]
    series: usize,
    #[arg(long, default_value_t = 100)]
    cotravel: usize,
    /// Unrecorded requests of each search first (other scenes, the same targets).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Label of the backend in the output lines.
    #[arg(long, default_value = "clickhouse")]
    backend: String,
}

/// SplitMix64: a small seeded generator (the benchmark needs no crypto and no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of `(n, salt)`, the way the ClickHouse load draws each field from `cityHash64(n, k)`.
fn hash(n: u64, salt: u64) -> u64 {
    mix(mix(n ^ 0x5bd1_e995_u64.wrapping_mul(salt + 1)).wrapping_add(salt))
}

/// The uniform load's plate number `p`: 粤 + two letters + four digits (benches/query.sh).
fn population_plate(p: u64) -> String {
    format!(
        "粤{}{}{:04}",
        LETTERS[(p % 24) as usize] as char,
        LETTERS[(p / 24 % 24) as usize] as char,
        p / 576 % 10_000
    )
}

fn registry(path: &str) -> anyhow::Result<CameraRegistry> {
    CameraRegistry::from_csv_path(std::path::Path::new(path)).with_context(|| path.to_string())
}

/// A 16-byte event id of letters only (so it needs no escaping in TabSeparated).
fn letter_id(seed: u64) -> EventId {
    let (a, b) = (
        mix(seed).to_le_bytes(),
        mix(seed ^ 0xA5A5_A5A5).to_le_bytes(),
    );
    let mut id = [0u8; 16];
    for (i, byte) in a.iter().chain(b.iter()).enumerate() {
        id[i] = b'A' + byte % 26;
    }
    EventId(id)
}

/// One sighting of a planted vehicle.
#[derive(Clone)]
struct Pass {
    camera: usize,
    at_ms: i64,
    id: EventId,
}

/// A planted target and its companion.
struct Route {
    target: String,
    companion: String,
    target_passes: Vec<Pass>,
    companion_passes: Vec<Pass>,
}

/// The planted routes for data starting at `start_ms` (deterministic).
fn planted(registry: &CameraRegistry, index: &CameraIndex, start_ms: i64) -> Vec<Route> {
    let cameras = registry.cameras();
    let position: std::collections::HashMap<&str, usize> = cameras
        .iter()
        .enumerate()
        .map(|(i, c)| (c.camera_id.as_str(), i))
        .collect();
    let day = start_ms + PLANTED_DAY * DAY;
    (0..PLANTED_TARGETS)
        .map(|k| {
            let mut rng = Rng(0xC0_7EA7 + k as u64);
            let mut visited = std::collections::HashSet::new();
            let mut camera = rng.below(cameras.len() as u64) as usize;
            let mut route = Route {
                target: format!("京CT{:04}", k + 1),
                companion: format!("京CF{:04}", k + 1),
                target_passes: Vec::new(),
                companion_passes: Vec::new(),
            };
            let id_base = (k as u64 + 1) << 32;
            for trip in 0..TRIPS {
                let mut at = day + (7 + 4 * trip as i64) * HOUR + rng.below(30 * 60_000) as i64;
                for _ in 0..PER_TRIP {
                    visited.insert(camera);
                    let n = route.target_passes.len() as u64;
                    route.target_passes.push(Pass {
                        camera,
                        at_ms: at,
                        id: letter_id(id_base + n),
                    });
                    if rng.below(10) < 8 {
                        route.companion_passes.push(Pass {
                            camera,
                            at_ms: at + 20_000 + rng.below(20_001) as i64,
                            id: letter_id(id_base + 1_000 + n),
                        });
                    }
                    let here = &cameras[camera];
                    let near: Vec<usize> = index
                        .cameras_in(
                            registry,
                            &Area::Circle {
                                lon: here.lon,
                                lat: here.lat,
                                radius_m: 1_500.0,
                            },
                        )
                        .iter()
                        .filter_map(|id| position.get(id.as_str()).copied())
                        .filter(|i| !visited.contains(i))
                        .collect();
                    camera = if near.is_empty() {
                        rng.below(cameras.len() as u64) as usize
                    } else {
                        near[rng.below(near.len() as u64) as usize]
                    };
                    at += 60_000 + rng.below(90_001) as i64;
                }
            }
            route
        })
        .collect()
}

/// The planted rows as detections.
fn planted_detections(registry: &CameraRegistry, routes: &[Route]) -> Vec<Detection> {
    let cameras = registry.cameras();
    let mut rows = Vec::new();
    for route in routes {
        for (plate, passes) in [
            (&route.target, &route.target_passes),
            (&route.companion, &route.companion_passes),
        ] {
            for (n, pass) in passes.iter().enumerate() {
                rows.push(detection(
                    pass.id,
                    &cameras[pass.camera],
                    pass.at_ms,
                    plate,
                    n as u64,
                ));
            }
        }
    }
    rows
}

fn detection(id: EventId, camera: &Camera, at_ms: i64, plate: &str, n: u64) -> Detection {
    Detection {
        event_id: id,
        camera_id: camera.camera_id.clone(),
        captured_at_ms: at_ms,
        object_class: ObjectClass::Vehicle,
        plate: plate.to_string(),
        plate_confidence: 0.9,
        subject_key: plate::normalize(plate),
        attributes: VehicleAttributes {
            color: (n % 10) as u8,
            kind: (n % 6) as u8,
            ..VehicleAttributes::default()
        },
        plate_char_confidence: Vec::new(),
        bbox: [(n % 1600) as u32, (n % 900) as u32, 200, 100],
        thumbnail_jpeg: None,
        gateway_id: camera.gateway_id.clone(),
        received_at_ms: at_ms + 300,
    }
}

fn print_planted(cameras: &str, start_ms: i64) -> anyhow::Result<()> {
    let registry = registry(cameras)?;
    let index = CameraIndex::new(&registry);
    let routes = planted(&registry, &index, start_ms);
    let mut out = String::new();
    for d in planted_detections(&registry, &routes) {
        let id = std::str::from_utf8(&d.event_id.0).context("letter id")?;
        out.push_str(&format!(
            "{}\t{}\t{id}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t0\t{}\t{}\n",
            d.subject_key,
            d.captured_at_ms,
            d.camera_id,
            d.object_class.code(),
            d.plate,
            d.plate_confidence,
            d.attributes.color,
            d.attributes.kind,
            d.bbox[0],
            d.bbox[1],
            d.bbox[2],
            d.bbox[3],
            d.gateway_id,
            d.received_at_ms
        ));
    }
    print!("{out}");
    Ok(())
}

/// ROWS detections, plate, camera and (within its slot) time drawn uniformly as the
/// ClickHouse load draws them, written in capture order (row n falls in the n-th of ROWS
/// equal slots of the 30 days), as a live node receives them; then the planted rows.
async fn fill_sqlite(
    database: &str,
    cameras: &str,
    rows: u64,
    plates: u64,
    start_ms: i64,
) -> anyhow::Result<()> {
    let registry = registry(cameras)?;
    let index = CameraIndex::new(&registry);
    let cams = registry.cameras();
    let store = camtrail_sqlite::SqliteStore::open(std::path::Path::new(database))?;
    let span = DATA_DAYS * DAY;
    let started = Instant::now();
    const CHUNK: u64 = 20_000;
    const IN_FLIGHT: usize = 4;
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_report = rows / 20;
    let mut n = 0u64;
    while n < rows {
        let end = (n + CHUNK).min(rows);
        let chunk: Vec<Detection> = (n..end)
            .map(|n| {
                let p = hash(n, 0) % plates;
                let slot = span as u128 * u128::from(n) / u128::from(rows);
                let slot_len = (span as u64 / rows).max(1);
                let at = start_ms + slot as i64 + (hash(n, 1) % slot_len) as i64;
                let camera = &cams[(hash(n, 2) % cams.len() as u64) as usize];
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&hash(n, 3).to_le_bytes());
                id[8..].copy_from_slice(&(n + 1).to_le_bytes());
                detection(EventId(id), camera, at, &population_plate(p), n)
            })
            .collect();
        if tasks.len() >= IN_FLIGHT {
            tasks.join_next().await.context("writer task")???;
        }
        let store = store.clone();
        tasks.spawn(async move { write_retrying(&store, chunk).await });
        n = end;
        if n >= next_report {
            eprintln!(
                "[analytics-bench]   {n} / {rows} rows written ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            next_report += rows / 20;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let routes = planted(&registry, &index, start_ms);
    let planted = planted_detections(&registry, &routes);
    let count = planted.len();
    write_retrying(&store, planted).await?;
    eprintln!(
        "[analytics-bench]   {count} planted rows written; waiting for part builds and merges"
    );
    store.maintenance_idle().await?;
    let stored = store.detection_count().await?;
    eprintln!(
        "[analytics-bench]   {stored} rows stored, {} parts, {:.0} s",
        store.writer_stats().parts,
        started.elapsed().as_secs_f64()
    );
    ensure!(
        stored >= rows + count as u64,
        "only {stored} rows stored of {}",
        rows + count as u64
    );
    Ok(())
}

/// Write, waiting out backpressure (a resend is harmless: same event ids).
async fn write_retrying(
    store: &camtrail_sqlite::SqliteStore,
    rows: Vec<Detection>,
) -> anyhow::Result<()> {
    for _ in 0..600 {
        match store.write(rows.clone()).await {
            Ok(_) => return Ok(()),
            Err(camtrail_storage::StorageError::Overloaded { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    bail!("the store stayed overloaded for a minute")
}

// ---------------------------------------------------------------------------------------
// The measurement.

/// What a request is, for the API and for the bare SQL.
enum Search {
    /// One window (scene) or several (series).
    Scenes { windows: Vec<CameraWindow> },
    /// A co-travel target over a window.
    CoTravel {
        key: String,
        from_ms: i64,
        to_ms: i64,
        companion: String,
    },
}

struct Request {
    kind: &'static str,
    body: Value,
    search: Search,
}

/// The requests of one run (seeded): scenes, series, co-travels.
struct Plan {
    scenes: Vec<Request>,
    series: Vec<Request>,
    cotravel: Vec<Request>,
}

fn circle(camera: &Camera, radius_m: f64) -> Area {
    Area::Circle {
        lon: camera.lon,
        lat: camera.lat,
        radius_m,
    }
}

fn scene_json(area: &Area, from_ms: i64, to_ms: i64) -> Value {
    json!({"area": area, "from": from_ms, "to": to_ms})
}

fn plan(
    args: &RunArgs,
    seed: u64,
    scenes: usize,
    series: usize,
    cotravel: usize,
) -> anyhow::Result<Plan> {
    let registry = registry(&args.cameras)?;
    let index = CameraIndex::new(&registry);
    let cams = registry.cameras();
    let routes = planted(&registry, &index, args.start);
    let mut rng = Rng(seed);
    // One case per run (benches/analytics.sh opens it as the supervisor before the run).
    let case = format!("BENCH-{}", args.run_id);
    let purpose = |n: usize| (case.clone(), format!("analytics benchmark, request {n}"));
    let window = |area: &Area, from_ms: i64, to_ms: i64| CameraWindow {
        cameras: index.cameras_in(&registry, area),
        from_ms,
        to_ms,
    };
    let mut plan = Plan {
        scenes: Vec::new(),
        series: Vec::new(),
        cotravel: Vec::new(),
    };
    for n in 0..scenes {
        let area = circle(&cams[rng.below(cams.len() as u64) as usize], 1_000.0);
        let from = args.start + rng.below((args.end - args.start - HOUR) as u64) as i64;
        let (case, reason) = purpose(n);
        let mut body = scene_json(&area, from, from + HOUR);
        body["case"] = json!(case);
        body["reason"] = json!(reason);
        body["limit"] = json!(1000);
        plan.scenes.push(Request {
            kind: "scene",
            body,
            search: Search::Scenes {
                windows: vec![window(&area, from, from + HOUR)],
            },
        });
    }
    for n in 0..series {
        let mut scenes = Vec::new();
        let mut windows = Vec::new();
        if n % 2 == 1 {
            // Five sightings spread over the planted target's day, each a scene of ±1 h.
            let route = &routes[(n / 2) % routes.len()];
            let last = route.target_passes.len() - 1;
            for s in 0..5 {
                let pass = &route.target_passes[s * last / 4];
                let area = circle(&cams[pass.camera], 1_000.0);
                let (from, to) = (pass.at_ms - HOUR, pass.at_ms + HOUR);
                scenes.push(scene_json(&area, from, to));
                windows.push(window(&area, from, to));
            }
        } else {
            for _ in 0..5 {
                let area = circle(&cams[rng.below(cams.len() as u64) as usize], 1_000.0);
                let from = args.start + rng.below((args.end - args.start - 2 * HOUR) as u64) as i64;
                scenes.push(scene_json(&area, from, from + 2 * HOUR));
                windows.push(window(&area, from, from + 2 * HOUR));
            }
        }
        let (case, reason) = purpose(n);
        plan.series.push(Request {
            kind: "series",
            body: json!({"case": case, "reason": reason, "scenes": scenes, "limit": 100}),
            search: Search::Scenes { windows },
        });
    }
    let day = args.start + PLANTED_DAY * DAY;
    for n in 0..cotravel {
        let route = &routes[n % routes.len()];
        let (case, reason) = purpose(n);
        plan.cotravel.push(Request {
            kind: "cotravel",
            body: json!({"case": case, "reason": reason, "target": route.target,
                         "from": day, "to": day + DAY}),
            search: Search::CoTravel {
                key: plate::normalize(&route.target),
                from_ms: day,
                to_ms: day + DAY,
                companion: plate::normalize(&route.companion),
            },
        });
    }
    Ok(plan)
}

/// `clickhouse` crate binding of a string: quoted, `\ ' ` TAB LF` escaped.
fn quote(value: &str) -> String {
    let mut out = String::from("'");
    for c in value.chars() {
        if matches!(c, '\\' | '\'' | '`' | '\t' | '\n') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn day(ms: i64) -> String {
    quote(&camtrail_clickhouse::utc_day(ms))
}

/// `ClickhouseStore::passes_in` with the default filter, values bound as the client binds
/// them.
fn passes_in_sql(windows: &[CameraWindow], limit: u64) -> String {
    let ranges = windows
        .iter()
        .filter(|w| !w.cameras.is_empty() && w.from_ms < w.to_ms)
        .map(|w| {
            format!(
                "(hour >= {} AND hour <= {} AND camera_id IN ({}) \
                 AND captured_at_ms >= {} AND captured_at_ms < {} \
                 AND day >= toDate({}) AND day <= toDate({}))",
                w.from_ms / 3_600_000,
                (w.to_ms - 1) / 3_600_000,
                w.cameras
                    .iter()
                    .map(|c| quote(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                w.from_ms,
                w.to_ms,
                day(w.from_ms),
                day(w.to_ms)
            )
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    format!(
        "SELECT {SIGHTING_COLUMNS} FROM detections_by_hour WHERE ({ranges}) \
         ORDER BY captured_at_ms, event_id LIMIT 1 BY event_id LIMIT {limit}"
    )
}

/// `ClickhouseStore::sightings` for one key.
fn sightings_sql(key: &str, from_ms: i64, to_ms: i64, limit: u64) -> String {
    format!(
        "SELECT {SIGHTING_COLUMNS} FROM detections \
         WHERE subject_key IN ({}) AND captured_at_ms >= {from_ms} AND captured_at_ms < {to_ms} \
         AND day >= toDate({}) AND day <= toDate({}) \
         ORDER BY captured_at_ms, event_id LIMIT 1 BY event_id LIMIT {limit}",
        quote(key),
        day(from_ms),
        day(to_ms)
    )
}

/// A RowBinary answer of [`SIGHTING_COLUMNS`].
fn parse_rows(mut data: &[u8]) -> anyhow::Result<Vec<StoredSighting>> {
    fn take<'a>(data: &mut &'a [u8], n: usize) -> anyhow::Result<&'a [u8]> {
        ensure!(data.len() >= n, "RowBinary cut short");
        let (head, tail) = data.split_at(n);
        *data = tail;
        Ok(head)
    }
    fn varint(data: &mut &[u8]) -> anyhow::Result<usize> {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = take(data, 1)?[0];
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            ensure!(shift < 64, "bad varint");
        }
    }
    fn string(data: &mut &[u8]) -> anyhow::Result<String> {
        let n = varint(data)?;
        Ok(String::from_utf8_lossy(take(data, n)?).into_owned())
    }
    fn u8_(data: &mut &[u8]) -> anyhow::Result<u8> {
        Ok(take(data, 1)?[0])
    }
    fn f32_(data: &mut &[u8]) -> anyhow::Result<f32> {
        Ok(f32::from_le_bytes(take(data, 4)?.try_into()?))
    }
    let mut rows = Vec::new();
    while !data.is_empty() {
        let event_id = EventId(take(&mut data, 16)?.try_into()?);
        let camera_id = string(&mut data)?;
        let captured_at_ms = i64::from_le_bytes(take(&mut data, 8)?.try_into()?);
        let subject_key = string(&mut data)?;
        let plate = string(&mut data)?;
        let plate_confidence = f32_(&mut data)?;
        let object_class = ObjectClass::from_code(u8_(&mut data)?).unwrap_or(ObjectClass::Vehicle);
        let has_snapshot = u8_(&mut data)? != 0;
        let color = u8_(&mut data)?;
        let kind = u8_(&mut data)?;
        let plate_color = u8_(&mut data)?;
        let brand = string(&mut data)?;
        let direction = u8_(&mut data)?;
        let speed_kmh = f32_(&mut data)?;
        let n = varint(&mut data)?;
        let plate_char_confidence = take(&mut data, n)?.to_vec();
        rows.push(StoredSighting {
            event_id,
            camera_id,
            captured_at_ms,
            subject_key,
            plate,
            plate_confidence,
            object_class,
            has_snapshot,
            attributes: VehicleAttributes {
                color,
                kind,
                plate_color,
                direction,
                speed_kmh,
                brand,
            },
            plate_char_confidence,
        });
    }
    Ok(rows)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn send(client: &HttpClient, request: hyper::Request<Full<Bytes>>) -> anyhow::Result<Bytes> {
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    ensure!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

/// Latencies and result sizes of one (search, way of asking).
#[derive(Default)]
struct Measured {
    latencies_us: Vec<u64>,
    body_bytes: usize,
    /// Named sums (cameras, results, ...), averaged over the requests in the output.
    sums: std::collections::BTreeMap<&'static str, f64>,
    /// Named counts of requests where something held.
    counts: std::collections::BTreeMap<&'static str, usize>,
}

impl Measured {
    fn add(&mut self, name: &'static str, value: f64) {
        *self.sums.entry(name).or_default() += value;
    }

    fn json(&mut self, backend: &str, kind: &str, mode: &str) -> String {
        let latencies = &mut self.latencies_us;
        latencies.sort_unstable();
        let pct = |p: f64| {
            let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
            latencies.get(index).copied().unwrap_or(0) as f64 / 1000.0
        };
        let n = latencies.len().max(1) as f64;
        let mut line = json!({
            "backend": backend, "kind": kind, "mode": mode, "requests": latencies.len(),
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "mean_ms": latencies.iter().sum::<u64>() as f64 / n / 1000.0,
            "mean_body_bytes": self.body_bytes as f64 / n,
        });
        for (name, sum) in &self.sums {
            line[format!("mean_{name}")] = json!(sum / n);
        }
        for (name, count) in &self.counts {
            line[*name] = json!(count);
        }
        line.to_string()
    }
}

struct Runner<'a> {
    args: &'a RunArgs,
    client: HttpClient,
}

impl Runner<'_> {
    /// Ask through the API; record latency and result sizes.
    async fn api(&self, request: &Request, measured: &mut Measured) -> anyhow::Result<()> {
        let http = hyper::Request::post(format!("{}/v1/{}", self.args.api, request.kind))
            .header("authorization", format!("Bearer {}", self.args.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(request.body.to_string())))?;
        let started = Instant::now();
        let body = send(&self.client, http)
            .await
            .with_context(|| format!("{} {}", request.kind, request.body))?;
        measured
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
        measured.body_bytes += body.len();
        let answer: Value = serde_json::from_slice(&body)?;
        let number = |field: &str| answer[field].as_f64().unwrap_or(0.0);
        match &request.search {
            Search::Scenes { .. } if request.kind == "scene" => {
                measured.add("cameras", number("cameras"));
                measured.add("vehicles", number("total_vehicles"));
                measured.add(
                    "sightings",
                    answer["vehicles"].as_array().map_or(0, |v| {
                        v.iter()
                            .map(|v| v["sightings"].as_array().map_or(0, Vec::len))
                            .sum::<usize>()
                    }) as f64,
                );
            }
            Search::Scenes { .. } => {
                let cameras: f64 = answer["scene_cameras"]
                    .as_array()
                    .map_or(0.0, |c| c.iter().filter_map(Value::as_f64).sum());
                measured.add("cameras", cameras);
                measured.add("hits", number("total_hits"));
            }
            Search::CoTravel { companion, .. } => {
                measured.add("target_sightings", number("target_sightings"));
                measured.add("companions", number("total_companions"));
                if answer["companions"][0]["key"].as_str() == Some(companion.as_str()) {
                    *measured
                        .counts
                        .entry("planted_companion_first")
                        .or_default() += 1;
                }
            }
        }
        Ok(())
    }

    fn sql_request(
        &self,
        sql: String,
        query_id: &str,
    ) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        let (Some(base), Some(database)) = (&self.args.clickhouse, &self.args.database) else {
            bail!("no ClickHouse");
        };
        Ok(hyper::Request::post(format!(
            "{base}/?default_format=RowBinary&database={database}&log_queries=1&query_id={query_id}"
        ))
        .body(Full::new(Bytes::from(sql)))?)
    }

    /// The node's SQL for the request, over ClickHouse HTTP; record latency and rows.
    async fn sql(
        &self,
        request: &Request,
        query_id: &str,
        measured: &mut Measured,
    ) -> anyhow::Result<()> {
        match &request.search {
            Search::Scenes { windows } => {
                let http =
                    self.sql_request(passes_in_sql(windows, MAX_ANALYTICS_ROWS), query_id)?;
                let started = Instant::now();
                let body = send(&self.client, http).await?;
                measured
                    .latencies_us
                    .push(started.elapsed().as_micros() as u64);
                measured.body_bytes += body.len();
                measured.add("rows", parse_rows(&body)?.len() as f64);
            }
            Search::CoTravel {
                key,
                from_ms,
                to_ms,
                ..
            } => {
                let first = self.sql_request(
                    sightings_sql(key, *from_ms, *to_ms, MAX_TRACK_ROWS),
                    &query_id.replace("cotravel", "cotravel_target"),
                )?;
                let started = Instant::now();
                let body = send(&self.client, first).await?;
                let target = parse_rows(&body)?;
                let mut bytes = body.len();
                let mut nearby = 0;
                if !target.is_empty() {
                    let windows = windows_around(&target, COTRAVEL_DELTA_MS);
                    let second = self.sql_request(
                        passes_in_sql(&windows, MAX_ANALYTICS_ROWS),
                        &query_id.replace("cotravel", "cotravel_around"),
                    )?;
                    let body = send(&self.client, second).await?;
                    bytes += body.len();
                    nearby = parse_rows(&body)?.len();
                }
                measured
                    .latencies_us
                    .push(started.elapsed().as_micros() as u64);
                measured.body_bytes += bytes;
                measured.add("target_rows", target.len() as f64);
                measured.add("rows", nearby as f64);
            }
        }
        Ok(())
    }

    /// Each request through the API and (with ClickHouse) as bare SQL, one right after the
    /// other, alternating which goes first.
    async fn measure(
        &self,
        requests: &[Request],
        tag: &str,
        record: bool,
    ) -> anyhow::Result<(Measured, Measured)> {
        let (mut api, mut sql) = (Measured::default(), Measured::default());
        let bare = self.args.clickhouse.is_some();
        let started = Instant::now();
        for (n, request) in requests.iter().enumerate() {
            let query_id = format!("{}-{tag}-{n}", self.args.run_id);
            if bare && n % 2 == 1 {
                self.sql(request, &query_id, &mut sql).await?;
            }
            self.api(request, &mut api).await?;
            if bare && n % 2 == 0 {
                self.sql(request, &query_id, &mut sql).await?;
            }
            if record && (n + 1) % (requests.len() / 4).max(1) == 0 {
                eprintln!(
                    "[analytics-bench]   {tag}: {} / {} ({:.0} s)",
                    n + 1,
                    requests.len(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok((api, sql))
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    ensure!(
        args.clickhouse.is_some() == args.database.is_some(),
        "--clickhouse and --database go together"
    );
    let measured = plan(&args, args.seed, args.scenes, args.series, args.cotravel)?;
    let warm = plan(
        &args,
        args.seed ^ 0xFFFF,
        args.warmup,
        args.warmup,
        args.warmup,
    )?;
    let runner = Runner {
        args: &args,
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    for (kind, warm, requests) in [
        ("scene", &warm.scenes, &measured.scenes),
        ("series", &warm.series, &measured.series),
        ("cotravel", &warm.cotravel, &measured.cotravel),
    ] {
        if requests.is_empty() {
            continue;
        }
        runner.measure(warm, &format!("warm_{kind}"), false).await?;
        let (mut api, mut sql) = runner.measure(requests, kind, true).await?;
        println!("{}", api.json(&args.backend, kind, "api"));
        if args.clickhouse.is_some() {
            println!("{}", sql.json(&args.backend, kind, "sql"));
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Planted { cameras, start_ms } => print_planted(&cameras, start_ms),
        Command::PlantedColumns => {
            println!("{PLANTED_COLUMNS}");
            Ok(())
        }
        Command::FillSqlite {
            database,
            cameras,
            rows,
            plates,
            start_ms,
        } => fill_sqlite(&database, &cameras, rows, plates, start_ms).await,
        Command::Run(args) => run(args).await,
    }
}
