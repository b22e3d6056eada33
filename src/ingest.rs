//! `camtrail ingest`, `camtrail gateways issue` and `camtrail gat1400 issue`.

use camtrail_storage::private;
use std::path::PathBuf;

use anyhow::Context;
use camtrail_ingest::auth::{IssuedToken, render_token_files};
use camtrail_model::CameraRegistry;

/// Run an ingest node (Kafka) until SIGTERM / Ctrl-C.
#[cfg(feature = "distributed")]
pub async fn run(config: camtrail_serve::Config) -> anyhow::Result<()> {
    let node = camtrail_serve::distributed::bind_ingest(&config).await?;
    node.run_until_stopped(crate::shutdown::signal()).await
}

/// Options of `camtrail gateways issue`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// Camera registry CSV; one token is minted for every gateway it names.
    #[arg(long)]
    pub registry: PathBuf,
    /// Folder for `gateway_tokens.csv` (secrets: give each gateway its line) and
    /// `gateway_token_hashes.csv` (for the ingest nodes' `ingest.gateway_tokens_path`).
    #[arg(long)]
    pub out: PathBuf,
}

/// Mint a fresh token for every gateway of a registry.
pub fn issue(args: IssueArgs) -> anyhow::Result<()> {
    let registry = CameraRegistry::from_csv_path(&args.registry)?;
    let gateways = gateways_of(&registry);
    let tokens: Vec<IssuedToken> = gateways.iter().map(|g| IssuedToken::mint(g)).collect();
    let (secrets, hashes) = render_token_files(&tokens);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let secrets_path = args.out.join("gateway_tokens.csv");
    let hashes_path = args.out.join("gateway_token_hashes.csv");
    // Secrets, and what proves them: owner-only (0600).
    for (path, text) in [(&secrets_path, secrets), (&hashes_path, hashes)] {
        private::write(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "{} gateways: tokens in {}, hashes in {}",
        tokens.len(),
        secrets_path.display(),
        hashes_path.display()
    );
    Ok(())
}

/// Options of `camtrail gat1400 issue`.
#[derive(Debug, clap::Args)]
pub struct Gat1400IssueArgs {
    /// Camera registry CSV; one platform credential is minted for every gateway it names
    /// (device id = gateway id).
    #[arg(long)]
    pub registry: PathBuf,
    /// Folder for `gat1400_credentials.csv` (passwords: give each platform its line) and
    /// `gat1400_devices.csv` (hashed, for `ingest.gat1400.devices_path`).
    #[arg(long)]
    pub out: PathBuf,
    /// Digest realm (must equal `ingest.gat1400.realm`).
    #[arg(long, default_value = "camtrail")]
    pub realm: String,
    /// Zone of the times the platforms send without an offset; "" to require offsets.
    #[arg(long, default_value = "Asia/Shanghai")]
    pub time_zone: String,
}

/// Mint GA/T 1400 platform credentials for every gateway of a registry.
pub fn issue_gat1400(args: Gat1400IssueArgs) -> anyhow::Result<()> {
    let registry = CameraRegistry::from_csv_path(&args.registry)?;
    let gateways = gateways_of(&registry);
    let (credentials, devices) =
        camtrail_ingest::gat1400::devices::issue(&gateways, &args.realm, &args.time_zone);
    // Check what was written reads back (e.g. a zone name that does not exist).
    camtrail_ingest::gat1400::devices::DeviceTable::parse(&devices)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let credentials_path = args.out.join("gat1400_credentials.csv");
    let devices_path = args.out.join("gat1400_devices.csv");
    for (path, text) in [(&credentials_path, credentials), (&devices_path, devices)] {
        private::write(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "{} platforms: passwords in {}, hashed credentials in {}",
        gateways.len(),
        credentials_path.display(),
        devices_path.display()
    );
    Ok(())
}

/// Every gateway a registry names, sorted, once each.
fn gateways_of(registry: &CameraRegistry) -> Vec<&str> {
    let mut gateways: Vec<&str> = registry
        .cameras()
        .iter()
        .map(|c| c.gateway_id.as_str())
        .collect();
    gateways.sort_unstable();
    gateways.dedup();
    gateways
}
