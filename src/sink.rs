//! `camtrail sink`.

/// Run a sink until SIGTERM / Ctrl-C, then flush and commit the last batch.
pub async fn run(config: camtrail_serve::Config) -> anyhow::Result<()> {
    let node = camtrail_serve::distributed::bind_sink(&config).await?;
    node.run_until_stopped(crate::shutdown::signal()).await?;
    Ok(())
}
