//! `camtrail demo`: the whole system in one process, end to end, with nothing installed but
//! Rust. Generates the synthetic city, starts the embedded node (`camtrail serve`) on free
//! local ports, drives it with the load generator, then — as an investigator would, through
//! the public HTTP API with a token, a case id and a reason — asks for the track of a
//! vehicle that crossed several districts, and leaves the answer as a table, a PNG map and
//! GeoJSON, beside the load report, in the output folder.

use camtrail_storage::private;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use camtrail_city::truth::TruthVehicle;
use camtrail_city::{City, CityConfig, Traffic, TrafficConfig};
use camtrail_common::now_ms;
use camtrail_ingest::auth::{IssuedToken, render_token_files};
use camtrail_loadgen::{LoadgenConfig, RunHooks, Throttle};
use camtrail_model::ObjectClass;
use camtrail_query::auth::{Role, UsersFile, issue as issue_user};
use camtrail_query::client::{
    TrackFormat, TrackQueryArgs, get, post_json, track_path, track_table,
};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::embedded::EmbeddedNode;

/// The case id every demo search is audited under.
const DEMO_CASE: &str = "DEMO-0001";

/// Options of `camtrail demo` (the command line's `--out`, `--duration`, ...).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Output folder (created; a previous demo's files in it are replaced).
    pub out: PathBuf,
    /// How long to drive the node with the load generator, seconds.
    pub duration: f64,
    /// Target rate in events per second; `None`: as fast as the node acks.
    pub rate: Option<f64>,
    /// City seed.
    pub city_seed: u64,
    /// Cameras in the city.
    pub cameras: usize,
    /// Gateways (one Publish stream each; at least one per district, 30).
    pub gateways: usize,
    /// Traffic seed.
    pub seed: u64,
    /// No progress bar.
    pub quiet: bool,
    /// Keep the node serving after the scripted run, until Ctrl-C.
    pub keep: bool,
    /// Share of events that carry a JPEG snapshot (the workspace's thumbnails).
    pub snapshot_share: f64,
    /// Where the process's log lines go (printed for the user), if to a file.
    pub log_file: Option<PathBuf>,
}

/// Create the output folder owner-only (it holds gateway secrets, tokens and tracks). A
/// folder that already exists keeps its mode (`--out .` must not lock the user out of
/// their own directory); every file the demo writes there is owner-only anyway.
pub fn prepare_out(out: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if out.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} owner-only", out.display()))?;
    Ok(())
}

/// How to name this program in a command the user can paste: its path relative to the
/// working directory when it lies below it (`target/release/camtrail`), else absolute.
fn program() -> String {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("camtrail"));
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(Path::to_path_buf))
        // A bare name would be looked up in PATH: `./camtrail`.
        .map(|path| {
            if path.components().count() == 1 {
                Path::new(".").join(path)
            } else {
                path
            }
        });
    shell_word(&relative.unwrap_or(exe).display().to_string())
}

/// `text` quoted for a POSIX shell when it needs it.
fn shell_word(text: &str) -> String {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Minutes of simulated traffic before the start (capture times stay this close to "now").
const WINDOW_MINUTES: i64 = 10;

/// Run the demo.
pub async fn run(args: DemoOptions, config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.duration.is_finite() && args.duration > 0.0 && args.duration <= 3_600.0,
        "--duration must be between 0 and 3600 seconds"
    );
    let city_config = CityConfig {
        seed: args.city_seed,
        cameras: args.cameras,
        districts: 30,
        gateways: args.gateways,
    };
    city_config.validate().map_err(anyhow::Error::msg)?;
    prepare_out(&args.out)?;
    let out = std::fs::canonicalize(&args.out)?;
    println!(
        "camtrail demo: everything in one process, writing to {}",
        out.display()
    );
    if let Some(log) = &args.log_file {
        println!("      log lines go to {}", log.display());
    }

    // 1. The city, its gateways' credentials and one investigator.
    let started = Instant::now();
    let city_dir = out.clone();
    let city = tokio::task::spawn_blocking(move || -> anyhow::Result<City> {
        let city = City::generate(&city_config);
        city.write_to_dir(&city_dir)?;
        Ok(city)
    })
    .await??;
    println!(
        "[1/5] city: {} cameras in {} districts, {} gateways ({:.1} s)",
        city.registry.len(),
        city.districts.len(),
        city.gateways.len(),
        started.elapsed().as_secs_f64()
    );
    let gateway_tokens = write_credentials(&city, &out)?;
    let investigator = issue_user("demo-investigator", Role::Investigator);
    let supervisor = issue_user("demo-supervisor", Role::Supervisor);
    let users = UsersFile {
        user: vec![investigator.entry, supervisor.entry],
    };
    private::write(
        &out.join("users.toml"),
        toml::to_string_pretty(&users)?.as_bytes(),
    )?;

    // 2. The embedded node on free local ports, over a fresh database.
    let database = out.join("camtrail.db");
    let parts = PathBuf::from(format!("{}.parts", database.display()));
    if parts.exists() {
        std::fs::remove_dir_all(&parts).with_context(|| format!("removing {}", parts.display()))?;
    }
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let file = PathBuf::from(format!("{}{suffix}", database.display()));
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
    }
    let mut ingest = config.ingest.node.clone();
    // The demo's nodes are its own: nobody balances load onto them, nothing to wait for.
    ingest.shutdown_delay_ms = 0;
    ingest.grpc_addr = "127.0.0.1:0".parse()?;
    ingest.http_addr = "127.0.0.1:0".parse()?;
    ingest.registry_path = out.join("cameras.csv");
    ingest.gateway_tokens_path = out.join("gateway_token_hashes.csv");
    let mut query = config.query.clone();
    query.shutdown_delay_ms = 0;
    query.http_addr = "127.0.0.1:0".parse()?;
    query.grpc_addr = "127.0.0.1:0".parse()?;
    query.registry_path = out.join("cameras.csv");
    query.users_path = out.join("users.toml");
    query.tls = None;
    let mut serve = config.serve.clone();
    serve.database_path = database.clone();
    let node = EmbeddedNode::bind(&serve, ingest, &query).await?;
    let addrs = node.addrs()?;
    let store = node.store().clone();
    let stop = CancellationToken::new();
    let node_stop = stop.clone();
    let serving = tokio::spawn(node.run_until_stopped(async move { node_stop.cancelled().await }));
    println!(
        "[2/5] camtrail serve: ingest gRPC {}, query HTTP {}, query gRPC {}, database {}",
        addrs.ingest_grpc,
        addrs.query_http,
        addrs.query_grpc,
        database.display()
    );

    // 3. Load.
    let started_ms = now_ms();
    let traffic_config = TrafficConfig {
        seed: args.seed,
        start_ms: started_ms - WINDOW_MINUTES * 60_000,
        span_ms: WINDOW_MINUTES * 60_000,
        vehicles: usize::MAX,
        snapshot_share: args.snapshot_share,
        ..TrafficConfig::default()
    };
    let load_config = LoadgenConfig {
        target: format!("http://{}", addrs.ingest_grpc),
        throttle: args.rate.map_or(Throttle::Open, Throttle::EventsPerSecond),
        max_events: None,
        duration: Some(Duration::from_secs_f64(args.duration)),
        tokens: gateway_tokens,
        ..LoadgenConfig::default()
    };
    println!(
        "[3/5] load: {} gateway streams, batches of {}, {} for {} s",
        city.gateways.len(),
        load_config.batch_size,
        args.rate
            .map_or("as fast as the node acks".to_string(), |r| format!(
                "{r} events/s"
            )),
        args.duration
    );
    let hooks = RunHooks {
        progress: !args.quiet,
        ..RunHooks::default()
    };
    let report = camtrail_loadgen::run(
        load_config,
        &city.registry,
        Traffic::new(&city, traffic_config.clone()),
        hooks,
    )
    .await
    .context("load run failed")?;
    print!("{}", report.summary());
    report.write_json(&out.join("load-report.json"))?;
    let chart_report = report.clone();
    let chart_path = out.join("load-chart.png");
    tokio::task::spawn_blocking(move || {
        camtrail_loadgen::chart::write_chart(&chart_report, &chart_path)
    })
    .await??;
    anyhow::ensure!(report.acked > 0, "the node acked no events");

    // 4. The investigator's question.
    let stored = store.detection_count().await?;
    let database_bytes = database_size(&database);
    let writer = store.writer_stats();
    println!(
        "[4/5] stored {stored} detections in {:.1} MiB ({:.0} bytes/event); {} commits for {} \
         writes ({:.1} batches per fsync)",
        database_bytes as f64 / 1_048_576.0,
        database_bytes as f64 / stored.max(1) as f64,
        writer.commits,
        writer.requests,
        writer.requests as f64 / writer.commits.max(1) as f64
    );
    let candidates = vehicles_sent(&city, &traffic_config, report.offered);
    let Some(chosen) = pick_vehicle(&city, &candidates) else {
        anyhow::bail!("no vehicle crossed two districts in this short run; run longer")
    };
    let base = format!("http://{}", addrs.query_http);
    // Searches run under an open case: the supervisor opens one and assigns the
    // investigator (audited like every change to a case).
    let opened = post_json(
        &base,
        "/v1/cases",
        &supervisor.token,
        &serde_json::json!({
            "case": DEMO_CASE,
            "title": "camtrail demo",
            "category": "traffic_crime",
            "assigned": ["demo-investigator"],
            "ends": now_ms() + 7 * 86_400_000,
            "reason": "camtrail demo: a case to search under",
        }),
    )
    .await
    .context("opening the demo case")?;
    let opened: serde_json::Value = serde_json::from_slice(&opened).context("case answer")?;
    println!(
        "      case {DEMO_CASE} opened by demo-supervisor for demo-investigator until {} \
         (audit {} #{})",
        opened["ends"].as_str().unwrap_or("?"),
        opened["audit"]["node_id"].as_str().unwrap_or("?"),
        opened["audit"]["seq"]
    );
    let track_query = TrackQueryArgs {
        plate: chosen.true_plate.clone(),
        from: (traffic_config.start_ms - 60_000).to_string(),
        to: (now_ms() + 60_000).to_string(),
        case_id: DEMO_CASE.into(),
        reason: "camtrail demo: reconstruct one vehicle's movement".into(),
        fuzzy: true,
    };
    let token = investigator.token;
    let mut latencies = Vec::new();
    let timed = Instant::now();
    let json = get(&base, &track_path(&track_query, TrackFormat::Json), &token).await?;
    latencies.push(timed.elapsed());
    let answer: serde_json::Value = serde_json::from_slice(&json).context("track answer")?;
    let geojson = get(
        &base,
        &track_path(&track_query, TrackFormat::GeoJson),
        &token,
    )
    .await?;
    let png = get(&base, &track_path(&track_query, TrackFormat::Png), &token).await?;
    // A track is personal data (even a simulated one is handled as such): owner-only.
    private::write(&out.join("track.json"), &json)?;
    private::write(&out.join("track.geojson"), &geojson)?;
    private::write(&out.join("track.png"), &png)?;
    // More investigators' questions, to measure the query side under the data just loaded.
    for other in candidates
        .iter()
        .step_by((candidates.len() / 40).max(1))
        .take(40)
    {
        let query = TrackQueryArgs {
            plate: other.true_plate.clone(),
            ..track_query.clone()
        };
        let timed = Instant::now();
        get(&base, &track_path(&query, TrackFormat::Json), &token).await?;
        latencies.push(timed.elapsed());
    }
    let districts = route_districts(&city, chosen);
    println!(
        "[5/5] track of {} (it crossed {} districts: {}), case {DEMO_CASE}, fuzzy matching on:",
        chosen.true_plate,
        districts.len(),
        districts.join(" → ")
    );
    print!("{}", track_table(&answer));

    if args.keep {
        // Registered before the address is printed: a Ctrl-C from then on stops the node.
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("listening for Ctrl-C")?;
        let window = format!("--from {} --to {}", track_query.from, track_query.to);
        println!();
        println!("the node keeps serving (--keep); Ctrl-C stops it.");
        println!(
            "  workspace   http://{}/  (the map in a browser: sign in with the token below, \
             case {DEMO_CASE}, then search plate {} with \"Also misreads\")",
            addrs.query_http, chosen.true_plate
        );
        println!(
            "  query API   http://{}  (JSON, GeoJSON, PNG; every search audited)",
            addrs.query_http
        );
        println!("  ingest gRPC {}", addrs.ingest_grpc);
        println!("  the demo investigator's token (a secret; this run's only): {token}");
        println!(
            "  the demo supervisor's token (the audit trail, broad searches): {}",
            supervisor.token
        );
        println!("  ask for the track again:");
        // The token in the environment, not on the command line (where ps shows it).
        println!(
            "    CAMTRAIL_TOKEN={token} {} track --url http://{} --plate {} {window} \\\n      --case {DEMO_CASE} --reason {} --fuzzy",
            program(),
            addrs.query_http,
            shell_word(&chosen.true_plate),
            shell_word("camtrail demo: a second look"),
        );
        interrupt.recv().await;
        // Stop first: after Ctrl-C in a pipeline the terminal's reader may be gone.
        stop.cancel();
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "stopping");
    }
    // Shut down in order (every acked batch is committed already), then sum up.
    stop.cancel();
    serving.await??;
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    println!();
    println!("measured on this machine (load generator, node and database sharing its cores):");
    println!(
        "  ingest: {} events acked in {:.1} s = {:.0} events/s; ack latency p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms; {} rejected, {} unacked",
        report.acked,
        report.elapsed_s,
        report.achieved_rate_eps,
        report.ack_latency.p50_ms,
        report.ack_latency.p99_ms,
        report.ack_latency.max_ms,
        report.rejected,
        report.unacked
    );
    if args.rate.is_none() {
        println!(
            "    (as fast as the node acks: each gateway keeps {} batches in flight, so the ack \
             latency is mostly that queue; --rate N shows the latency at a steady rate)",
            LoadgenConfig::default().max_in_flight
        );
    }
    println!(
        "  track queries over HTTP (audited before answering): {} queries, p50 {:.1} ms, max \
         {:.1} ms, with {stored} detections stored",
        latencies.len(),
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() - 1])
    );
    println!();
    for (file, what) in [
        ("track.png", "the track on the city map"),
        ("track.geojson", "the track as GeoJSON"),
        ("track.json", "the full answer"),
        ("load-report.json", "the load report"),
        ("load-chart.png", "rate and ack latency over time"),
        ("cameras.csv", "the camera registry"),
        (
            "camtrail.db",
            "the SQLite database (staged detections, the audit chain)",
        ),
        ("camtrail.db.parts", "its sorted part files"),
    ] {
        println!("  {:<44} {what}", out.join(file).display());
    }
    println!("check the audit chain:");
    println!(
        "  CAMTRAIL_SERVE__DATABASE_PATH={} {} audit verify --embedded",
        shell_word(&database.display().to_string()),
        program()
    );
    Ok(())
}

/// The database with its WAL and its part files, bytes.
fn database_size(database: &Path) -> u64 {
    let file = |path: PathBuf| std::fs::metadata(path).map_or(0, |m| m.len());
    let parts = PathBuf::from(format!("{}.parts", database.display()));
    let part_files: u64 = std::fs::read_dir(&parts)
        .map(|entries| entries.flatten().map(|e| file(e.path())).sum())
        .unwrap_or(0);
    file(database.to_path_buf())
        + file(PathBuf::from(format!("{}-wal", database.display())))
        + part_files
}

/// Mint a token per gateway; write the hashes for the node, return the secrets for the
/// load generator.
fn write_credentials(city: &City, out: &Path) -> anyhow::Result<HashMap<String, String>> {
    let tokens: Vec<IssuedToken> = city
        .gateways
        .iter()
        .map(|gateway| IssuedToken::mint(&gateway.id))
        .collect();
    let (secrets, hashes) = render_token_files(&tokens);
    private::write(&out.join("gateway_tokens.csv"), secrets.as_bytes())?;
    private::write(&out.join("gateway_token_hashes.csv"), hashes.as_bytes())?;
    Ok(tokens
        .into_iter()
        .map(|t| (t.gateway_id, t.token))
        .collect())
}

/// The vehicles whose every event was among the first `offered` the load generator took:
/// the traffic is deterministic, so it is simulated again with its ground truth.
fn vehicles_sent(city: &City, config: &TrafficConfig, offered: u64) -> Vec<TruthVehicle> {
    let mut traffic = Traffic::new(city, config.clone()).with_truth();
    let emitted = traffic.by_ref().take(offered as usize).count() as u64;
    let mut vehicles = traffic.take_truth();
    if emitted == offered {
        // The last trip may have been cut off by the end of the run.
        vehicles.pop();
    }
    vehicles.retain(|v| v.object_class == ObjectClass::Vehicle && !v.true_plate.is_empty());
    vehicles
}

/// Districts a vehicle was reported in, in order (consecutive repeats collapsed).
fn route_districts(city: &City, vehicle: &TruthVehicle) -> Vec<String> {
    let cameras = city.registry.cameras();
    let mut districts: Vec<String> = Vec::new();
    for stop in vehicle.route.iter().filter(|s| s.detected) {
        let district = &cameras[stop.camera_index as usize].district;
        if districts.last() != Some(district) {
            districts.push(district.clone());
        }
    }
    districts
}

/// The vehicle seen in the most distinct districts (ties: more sightings), at least two.
fn pick_vehicle<'a>(city: &City, vehicles: &'a [TruthVehicle]) -> Option<&'a TruthVehicle> {
    vehicles
        .iter()
        .map(|v| {
            let distinct: BTreeSet<String> = route_districts(city, v).into_iter().collect();
            let seen = v.route.iter().filter(|s| s.detected).count();
            (distinct.len(), seen, v)
        })
        .filter(|(districts, seen, _)| *districts >= 2 && *seen <= 60)
        .max_by_key(|(districts, seen, _)| (*districts, *seen))
        .map(|(_, _, v)| v)
}
