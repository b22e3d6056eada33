//! `camtrail query`, `camtrail track`, `camtrail passes`, `camtrail users issue`,
//! `camtrail audit verify`.

use camtrail_storage::private;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use camtrail_query::auth::{Role, UsersFile, issue as issue_user};
use camtrail_query::client::{
    PassesQueryArgs, TrackFormat, TrackQueryArgs, get, passes_path, passes_table, track_path,
    track_table,
};
use camtrail_serve::Config;

/// Run a query node (ClickHouse, audit to Kafka) until SIGTERM / Ctrl-C; health turns
/// NOT_SERVING first, in-flight requests finish.
#[cfg(feature = "distributed")]
pub async fn run(config: Config) -> anyhow::Result<()> {
    let node = camtrail_serve::distributed::bind_query(&config).await?;
    node.run_until_stopped(crate::shutdown::signal()).await
}

/// Options of `camtrail track`.
#[derive(Debug, clap::Args)]
pub struct TrackArgs {
    /// Plate as read or typed (normalised by the node); `?` one character, `*` any run.
    #[arg(long)]
    pub plate: String,
    /// Window start: RFC 3339 (2025-11-26T08:00:00+08:00) or unix ms.
    #[arg(long)]
    pub from: String,
    /// Window end (exclusive).
    #[arg(long)]
    pub to: String,
    /// Case id (required; audited).
    #[arg(long = "case")]
    pub case_id: String,
    /// Reason (required; audited).
    #[arg(long)]
    pub reason: String,
    /// Also find sightings stored under plausible misreadings of the plate.
    #[arg(long)]
    pub fuzzy: bool,
    /// Output: a table, the JSON answer, GeoJSON, or a PNG map.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the output here instead of stdout (required for png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The query node to ask.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Which query node a client command asks, and as whom.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Query node base URL.
    #[arg(
        long,
        env = "CAMTRAIL_QUERY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Bearer token (from `camtrail users issue`).
    #[arg(long, env = "CAMTRAIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl NodeArgs {
    /// The token: required by every command that asks the node (`export verify` does not,
    /// which is why clap does not enforce it).
    pub fn token(&self) -> anyhow::Result<&str> {
        self.token
            .as_deref()
            .filter(|token| !token.is_empty())
            .context("a bearer token is required: --token or CAMTRAIL_TOKEN (camtrail users issue)")
    }
}

/// Output formats of `camtrail track`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable table.
    Table,
    /// The JSON answer.
    Json,
    /// GeoJSON FeatureCollection.
    Geojson,
    /// PNG map.
    Png,
}

/// Ask a query node for a track and print or save it.
pub async fn track(args: TrackArgs) -> anyhow::Result<()> {
    let query = TrackQueryArgs {
        plate: args.plate,
        from: args.from,
        to: args.to,
        case_id: args.case_id,
        reason: args.reason,
        fuzzy: args.fuzzy,
    };
    let format = match args.format {
        Format::Table | Format::Json => TrackFormat::Json,
        Format::Geojson => TrackFormat::GeoJson,
        Format::Png => TrackFormat::Png,
    };
    if args.format == Format::Png && args.out.is_none() {
        anyhow::bail!("--format png needs --out FILE.png");
    }
    let body = get(
        &args.node.url,
        &track_path(&query, format),
        args.node.token()?,
    )
    .await?;
    let output = if args.format == Format::Table {
        let answer: serde_json::Value =
            serde_json::from_slice(&body).context("the node's answer is not JSON")?;
        track_table(&answer).into_bytes()
    } else {
        body
    };
    match args.out {
        Some(path) => {
            // A track is personal data: owner-only (0600).
            private::write(&path, &output)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => std::io::stdout().write_all(&output)?,
    }
    Ok(())
}

/// Options of `camtrail passes`.
#[derive(Debug, clap::Args)]
pub struct PassesArgs {
    /// Camera ids, comma-separated (or --district).
    #[arg(
        long,
        conflicts_with = "district",
        required_unless_present = "district"
    )]
    pub cameras: Option<String>,
    /// Every camera of a district.
    #[arg(long)]
    pub district: Option<String>,
    /// Window start: RFC 3339 (2025-11-26T08:00:00+08:00) or unix ms.
    #[arg(long)]
    pub from: String,
    /// Window end (exclusive).
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub filter: crate::analytics::FilterArgs,
    /// Page size (1-10,000; the node's default 1,000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue after this cursor (printed under a full page).
    #[arg(long)]
    pub after: Option<String>,
    #[command(flatten)]
    pub search: crate::analytics::SearchArgs,
}

/// Ask a query node for one page of passes and print it.
pub async fn passes(args: PassesArgs) -> anyhow::Result<()> {
    let mut filters = args.filter.given();
    filters.extend(
        [
            ("limit", args.limit.map(|limit| limit.to_string())),
            ("after", args.after),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?))),
    );
    let query = PassesQueryArgs {
        cameras: args.cameras,
        district: args.district,
        from: args.from,
        to: args.to,
        case_id: args.search.case_id,
        reason: args.search.reason,
        filters,
    };
    let body = get(
        &args.search.node.url,
        &passes_path(&query),
        args.search.node.token()?,
    )
    .await?;
    let output = if args.search.json {
        body
    } else {
        let answer: serde_json::Value =
            serde_json::from_slice(&body).context("the node's answer is not JSON")?;
        passes_table(&answer).into_bytes()
    };
    std::io::stdout().write_all(&output)?;
    Ok(())
}

/// Options of `camtrail users issue`.
#[derive(Debug, clap::Args)]
pub struct UsersIssueArgs {
    /// User name (recorded in every audit record of theirs).
    #[arg(long)]
    pub name: String,
    /// Role.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// The users file to add to (created if missing). Stores only the token's hash.
    #[arg(long, default_value = "users.toml")]
    pub users: PathBuf,
}

/// Roles, as CLI values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Tracks and passes within ordinary bounds.
    Investigator,
    /// Broad searches and the audit log.
    Supervisor,
    /// Camera lookups and metrics.
    Operator,
}

/// Mint a token, add its hash to the users file, print the token once.
pub fn issue(args: UsersIssueArgs) -> anyhow::Result<()> {
    let role = match args.role {
        RoleArg::Investigator => Role::Investigator,
        RoleArg::Supervisor => Role::Supervisor,
        RoleArg::Operator => Role::Operator,
    };
    let mut file: UsersFile = if args.users.exists() {
        toml::from_str(&std::fs::read_to_string(&args.users)?)
            .with_context(|| format!("reading {}", args.users.display()))?
    } else {
        UsersFile::default()
    };
    anyhow::ensure!(
        !file.user.iter().any(|u| u.name == args.name),
        "user {} already exists in {}",
        args.name,
        args.users.display()
    );
    let issued = issue_user(&args.name, role);
    file.user.push(issued.entry);
    // Token hashes and who holds which role: owner-only (0600).
    private::write(&args.users, toml::to_string_pretty(&file)?.as_bytes())
        .with_context(|| format!("writing {}", args.users.display()))?;
    eprintln!(
        "added {} ({}) to {}; the token below is shown once",
        args.name,
        role.as_str(),
        args.users.display()
    );
    println!("{}", issued.token);
    Ok(())
}

/// Options of `camtrail audit verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Check the embedded database (serve.database_path) instead of ClickHouse.
    #[arg(long)]
    pub embedded: bool,
    /// Also prove the log holds every record up to each signed checkpoint in this file (as
    /// the nodes wrote it, or as an outside witness kept it), unchanged: a cut tail shows.
    #[arg(long, requires = "public_key")]
    pub checkpoints: Option<PathBuf>,
    /// Public key file(s) of the checkpoint signers (`camtrail audit keygen` writes
    /// `<key>.pub`); give every key in use since the oldest checkpoint (rotation).
    #[arg(long = "public-key", requires = "checkpoints")]
    pub public_key: Vec<PathBuf>,
}

/// Options of `camtrail audit keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the private key (mode 0600); the public key goes to `<out>.pub`.
    #[arg(long)]
    pub out: PathBuf,
}

/// Write a new Ed25519 checkpoint signing key and its public key; refuses to overwrite.
pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let public = PathBuf::from(format!("{}.pub", args.out.display()));
    for path in [&args.out, &public] {
        if path.exists() {
            anyhow::bail!(
                "{} exists; a key is never overwritten (rotate by writing a new one elsewhere)",
                path.display()
            );
        }
    }
    // 256 random bits, as for every token camtrail mints.
    let signer = camtrail_model::checkpoint::CheckpointSigner::from_key_text(
        &camtrail_common::token::mint(""),
    )?;
    // create_new: a key that appeared since the check above is not overwritten either.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(private::FILE_MODE);
    }
    let mut file = options
        .open(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    file.write_all(signer.key_text().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", args.out.display()))?;
    std::fs::write(&public, signer.public_text())
        .with_context(|| format!("writing {}", public.display()))?;
    println!(
        "key {}: private {} (0600, set query.audit_checkpoints.key_path to it), public {} \
         (give it to whoever verifies)",
        signer.key_id(),
        args.out.display(),
        public.display()
    );
    Ok(())
}

/// Check every audit chain stored in ClickHouse (or the embedded database); exit non-zero
/// at the first broken link.
pub async fn verify(args: VerifyArgs, config: Config) -> anyhow::Result<()> {
    let records = if args.embedded {
        crate::serve::audit_records(&config).await?
    } else {
        distributed_audit_records(&config).await?
    };
    let total = records.len();
    let checkpoints = match &args.checkpoints {
        Some(path) => Some(checkpoints_of(path, &args.public_key, &records)?),
        None => None,
    };
    let report = camtrail_model::audit::verify_all(records);
    for (node, count) in &report.chains {
        println!("chain {node}: {count} records");
    }
    let mut failed = Vec::new();
    if report.broken.is_empty() {
        println!(
            "audit log intact: {} chains, {total} stored records",
            report.chains.len()
        );
    } else {
        for broken in &report.broken {
            println!("BROKEN: {broken}");
        }
        failed.push(format!("{} audit chain(s) broken", report.broken.len()));
    }
    if let Some(checkpoints) = checkpoints {
        for (chain, count) in &report.chains {
            match checkpoints.covered.iter().find(|(c, _)| c == chain) {
                Some((_, length)) => println!(
                    "chain {chain}: records 1..={length} match a signed checkpoint{}",
                    if length < count {
                        format!(" ({} newer records not covered yet)", count - length)
                    } else {
                        String::new()
                    }
                ),
                None => println!("chain {chain}: no signed checkpoint covers it"),
            }
        }
        for failure in &checkpoints.failures {
            println!("CHECKPOINT NOT HONOURED: {failure}");
        }
        if checkpoints.honoured + checkpoints.failures.len() == 0 {
            failed.push("the checkpoint file holds no checkpoint".to_string());
        } else if checkpoints.failures.is_empty() {
            println!("checkpoints honoured: {}", checkpoints.honoured);
        } else {
            failed.push(format!(
                "{} checkpoint(s) not honoured",
                checkpoints.failures.len()
            ));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    anyhow::bail!("{}", failed.join("; "))
}

/// Check the checkpoint file at `path`, signed by one of the keys in `key_paths`, against
/// `records`.
fn checkpoints_of(
    path: &std::path::Path,
    key_paths: &[PathBuf],
    records: &[camtrail_model::audit::AuditRecord],
) -> anyhow::Result<camtrail_model::checkpoint::CheckpointReport> {
    use camtrail_model::checkpoint::{parse_checkpoints, parse_public_keys, verify_checkpoints};
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the checkpoints {}", path.display()))?;
    let checkpoints =
        parse_checkpoints(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    let mut keys = Vec::new();
    for key_path in key_paths {
        let text = std::fs::read_to_string(key_path)
            .with_context(|| format!("reading the public key {}", key_path.display()))?;
        keys.extend(
            parse_public_keys(&text)
                .with_context(|| format!("the public key {}", key_path.display()))?,
        );
    }
    println!(
        "{} checkpoints in {}, {} public key(s)",
        checkpoints.len(),
        path.display(),
        keys.len()
    );
    Ok(verify_checkpoints(records.to_vec(), &checkpoints, &keys))
}

#[cfg(feature = "distributed")]
async fn distributed_audit_records(
    config: &Config,
) -> anyhow::Result<Vec<camtrail_model::audit::AuditRecord>> {
    camtrail_serve::distributed::audit_records(config).await
}

#[cfg(not(feature = "distributed"))]
async fn distributed_audit_records(
    _config: &Config,
) -> anyhow::Result<Vec<camtrail_model::audit::AuditRecord>> {
    anyhow::bail!(crate::cli::NOT_DISTRIBUTED)
}
