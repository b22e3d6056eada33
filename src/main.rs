//! The `camtrail` binary: parses the command line, loads configuration, starts telemetry
//! and hands over to the command. Behaviour lives in the library crates.

mod analytics;
mod cases;
mod city;
mod cli;
mod demo;
mod export;
mod ingest;
mod loadgen;
#[cfg(feature = "distributed")]
mod migrate;
mod query;
mod retention;
mod serve;
mod shutdown;
#[cfg(feature = "distributed")]
mod sink;
mod telemetry;
mod transparency;

use clap::Parser;

/// mimalloc: the ingest path allocates small buffers on many threads, where glibc malloc
/// showed up at ~15% of CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    // The demo's terminal is for its steps; its log lines go to a file in its folder.
    let log_file = match &cli.command {
        cli::Command::Demo(args) => Some(demo::log_file(&args.out)?),
        _ => None,
    };
    telemetry::init(cli.log_format, cli.verbose, log_file.as_deref())?;
    let config = camtrail_serve::Config::load(cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(cli::run(cli.command, config))
}
