//! `camtrail demo`: the command line of the demo (`camtrail_serve::demo` runs it).

use std::path::{Path, PathBuf};

use camtrail_serve::Config;
use camtrail_serve::demo::DemoOptions;

/// Options of `camtrail demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output folder (created owner-only; a previous demo's files in it are replaced). The
    /// default is git-ignored in this repository.
    #[arg(long, default_value = "camtrail-demo")]
    pub out: PathBuf,
    /// How long to drive the node with the load generator, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub duration: f64,
    /// Steady rate the gateways send at, events per second (so the ack latency printed is
    /// the node's, not a queue's).
    #[arg(long, default_value_t = 20_000.0)]
    pub rate: f64,
    /// Send as fast as the node acks instead of at --rate (throughput; the ack latency is
    /// then mostly the gateways' own queues).
    #[arg(long)]
    pub open: bool,
    /// After the scripted run, keep the node serving (until Ctrl-C) and print its address
    /// and the demo investigator's token.
    #[arg(long)]
    pub keep: bool,
    /// Share of events carrying a JPEG snapshot, 0-1 (each ~3 KB stored: 0.02 of the
    /// default run adds ~40 MB).
    #[arg(long, value_name = "SHARE", default_value_t = 0.02, value_parser = share)]
    pub snapshots: f64,
    /// City seed.
    #[arg(long, default_value_t = 7)]
    pub city_seed: u64,
    /// Cameras in the city.
    #[arg(long, default_value_t = 140_000)]
    pub cameras: usize,
    /// Gateways (one Publish stream each; at least one per district, 30).
    #[arg(long, default_value_t = 300)]
    pub gateways: usize,
    /// Traffic seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// A share in 0-1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?} is not a share between 0 and 1")),
    }
}

/// The demo's log file, `OUT/demo.log`, its folder created owner-only.
pub fn log_file(out: &Path) -> anyhow::Result<PathBuf> {
    camtrail_serve::demo::prepare_out(out)?;
    Ok(out.join("demo.log"))
}

/// Run the demo.
pub async fn run(args: DemoArgs, config: Config) -> anyhow::Result<()> {
    let options = DemoOptions {
        log_file: Some(args.out.join("demo.log")),
        out: args.out,
        duration: args.duration,
        rate: (!args.open).then_some(args.rate),
        keep: args.keep,
        snapshot_share: args.snapshots,
        city_seed: args.city_seed,
        cameras: args.cameras,
        gateways: args.gateways,
        seed: args.seed,
        quiet: args.quiet,
    };
    camtrail_serve::demo::run(options, config).await
}
