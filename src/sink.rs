//! `camtrail sink`.

use camtrail_ingest::sink::SinkNode;

use crate::config::Config;

/// Run a sink until SIGTERM / Ctrl-C, then flush and commit the last batch.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let node = SinkNode::bind(config.sink, &config.kafka, &config.clickhouse).await?;
    node.run_until_stopped(crate::shutdown::signal()).await?;
    Ok(())
}
