//! `camtrail demo`: the command line of the demo (`camtrail_serve::demo` runs it).

use std::path::PathBuf;

use camtrail_serve::Config;
use camtrail_serve::demo::DemoOptions;

/// Options of `camtrail demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output folder (created; a previous demo's files in it are replaced).
    #[arg(long, default_value = "camtrail-demo")]
    pub out: PathBuf,
    /// How long to drive the node with the load generator, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub duration: f64,
    /// Target rate in events per second; default: as fast as the node acks.
    #[arg(long)]
    pub rate: Option<f64>,
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

/// Run the demo.
pub async fn run(args: DemoArgs, config: Config) -> anyhow::Result<()> {
    let options = DemoOptions {
        out: args.out,
        duration: args.duration,
        rate: args.rate,
        city_seed: args.city_seed,
        cameras: args.cameras,
        gateways: args.gateways,
        seed: args.seed,
        quiet: args.quiet,
    };
    camtrail_serve::demo::run(options, config).await
}
