//! `camtrail sink` and `camtrail alert`, the roles that consume the detections topic.

/// Run a sink until SIGTERM / Ctrl-C, then flush and commit the last batch.
pub async fn run(config: camtrail_serve::Config) -> anyhow::Result<()> {
    let node = camtrail_serve::distributed::bind_sink(&config).await?;
    node.run_until_stopped(crate::shutdown::signal()).await?;
    Ok(())
}

/// Run the watchlist role until SIGTERM / Ctrl-C, then commit and leave the group.
pub async fn alert(config: camtrail_serve::Config) -> anyhow::Result<()> {
    let stop = tokio_util::sync::CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        crate::shutdown::signal().await;
        trigger.cancel();
    });
    let report = camtrail_serve::alert::run(&config, stop).await?;
    tracing::info!(
        records = report.records,
        hits = report.hits,
        "alert role done"
    );
    Ok(())
}
