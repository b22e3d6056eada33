//! `camtrail city`: generate the synthetic city (camera registry + district boundaries, and
//! optionally a PNG, the cameras as GA/T 1400 checkpoints, and a traffic sample with ground
//! truth).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use camtrail_city::truth::class_name;
use camtrail_city::{City, CityConfig, Traffic, TrafficConfig, write_truth_jsonl};
use camtrail_model::EventId;

/// Options of `camtrail city`.
#[derive(Debug, clap::Args)]
pub struct CityArgs {
    /// Seed; the same seed and numbers give byte-identical files.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Output directory (created if missing): cameras.csv, districts.geojson.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of cameras.
    #[arg(long, default_value_t = 140_000)]
    pub cameras: usize,
    /// Number of districts/towns (1–99).
    #[arg(long, default_value_t = 30)]
    pub districts: usize,
    /// Number of gateways (at least one per district).
    #[arg(long, default_value_t = 300)]
    pub gateways: usize,
    /// Also render city.png (cameras coloured by district, district boundaries).
    #[arg(long)]
    pub png: bool,
    /// Also write tollgates.json: every camera as a GA/T 1400 checkpoint (the
    /// `TollgateListObject` body of `POST /VIID/Tollgates`).
    #[arg(long)]
    pub tollgates: bool,
    /// Also simulate this many subjects over one hour and write events.csv and truth.jsonl.
    #[arg(long, value_name = "SUBJECTS")]
    pub traffic: Option<usize>,
}

/// Generate and write the city.
pub async fn run(args: CityArgs) -> anyhow::Result<()> {
    // CPU-bound for seconds: keep it off the async workers.
    tokio::task::spawn_blocking(move || generate(&args)).await?
}

fn generate(args: &CityArgs) -> anyhow::Result<()> {
    let config = CityConfig {
        seed: args.seed,
        cameras: args.cameras,
        districts: args.districts,
        gateways: args.gateways,
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let city = City::generate(&config);
    let generated = started.elapsed();
    city.write_to_dir(&args.out)
        .with_context(|| format!("writing the city to {}", args.out.display()))?;
    println!(
        "city seed {}: {} cameras, {} districts, {} gateways, {} intersections, {} road segments",
        args.seed,
        city.registry.len(),
        city.districts.len(),
        city.gateways.len(),
        city.roads.nodes.len(),
        city.roads.edges.len()
    );
    println!(
        "generated in {:.2} s, written to {} in {:.2} s total",
        generated.as_secs_f64(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    if args.png {
        let path = args.out.join("city.png");
        city.render_png(&path)
            .with_context(|| format!("rendering {}", path.display()))?;
        println!("rendered {}", path.display());
    }
    if args.tollgates {
        let path = args.out.join("tollgates.json");
        camtrail_loadgen::write_tollgates(&city.registry, &path)?;
        println!("{} checkpoints in {}", city.registry.len(), path.display());
    }
    if let Some(subjects) = args.traffic {
        let config = TrafficConfig {
            seed: args.seed,
            vehicles: subjects,
            ..Default::default()
        };
        let count = write_traffic(&city, config, &args.out)?;
        println!("simulated {subjects} subjects: {count} events in events.csv, truth.jsonl");
    }
    Ok(())
}

/// Write events.csv and truth.jsonl for a traffic sample; returns the event count.
fn write_traffic(city: &City, config: TrafficConfig, dir: &Path) -> anyhow::Result<usize> {
    // Plates and tracks, if simulated ones: handled like personal data (owner-only).
    let path = dir.join("events.csv");
    let truth = dir.join("truth.jsonl");
    for file in [&path, &truth] {
        camtrail_storage::private::touch(file).with_context(|| file.display().to_string())?;
    }
    let mut out = BufWriter::new(File::create(&path).with_context(|| path.display().to_string())?);
    writeln!(
        out,
        "event_id,camera_id,captured_at_ms,object_class,plate,plate_confidence,subject_key"
    )?;
    let cameras = city.registry.cameras();
    let mut traffic = Traffic::new(city, config).with_truth();
    let mut count = 0;
    for event in traffic.by_ref() {
        let camera = &cameras[event.camera_index as usize];
        writeln!(
            out,
            "{},{},{},{},{},{:.3},{}",
            EventId(event.event_id).to_hex(),
            camera.camera_id,
            event.captured_at_ms,
            class_name(event.object_class),
            event.plate,
            event.plate_confidence,
            event.subject_key
        )?;
        count += 1;
    }
    out.flush()?;
    write_truth_jsonl(city, &traffic.take_truth(), &truth)?;
    Ok(count)
}
