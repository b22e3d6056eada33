//! `camtrail export`: an evidence package for a case file, and `camtrail export verify`,
//! which anyone can run offline on a copy of it.
//!
//! The package re-asks the query node for the track an audited search returned (so the
//! export itself is audited, under the case, with a reason naming the original record):
//! `track.json`, `track.geojson`, `track.png`, every snapshot of the track under
//! `snapshots/`, and `audit.json` — the original record and every record the export's own
//! requests wrote, each with its chain link (`prev_hash`, `hash`). `manifest.json` lists
//! every file with its size and SHA-256. Verification recomputes each file's digest, refuses
//! a file the manifest does not list or lists but is missing, and recomputes each audit
//! record's hash from its content; it names the first file that does not match.
//!
//! The files hold personal data: the directory is 0700 and every file 0600.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use camtrail_model::audit::AuditRecord;
use camtrail_query::client::{TrackFormat, encode, get};
use camtrail_storage::private;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Options of `camtrail export`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ExportArgs {
    /// `verify DIR`: check a package offline.
    #[command(subcommand)]
    pub command: Option<ExportCommand>,
    /// Case the package is for (the original search's case; the export is audited under it).
    #[arg(long = "case", required = true)]
    pub case_id: Option<String>,
    /// The audit record of the track search to export: NODE/SEQ (as in X-Camtrail-Audit).
    #[arg(long, required = true)]
    pub audit_id: Option<String>,
    /// Why it is exported (audited, with the original record's id).
    #[arg(long, default_value = "evidence export")]
    pub reason: String,
    /// Directory to write (must not exist).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    /// The query node, and a supervisor's token (reading the audit trail needs one).
    #[command(flatten)]
    pub node: crate::query::NodeArgs,
}

/// `camtrail export ...` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ExportCommand {
    /// Check a package: every file's SHA-256 against manifest.json, nothing missing or
    /// added, every audit record's hash against its content. Exits non-zero naming the
    /// first file that does not match.
    Verify {
        /// The package directory.
        dir: PathBuf,
    },
}

/// One file of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the package directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Hex SHA-256.
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `camtrail.export.v1`.
    pub format: String,
    /// The case.
    pub case_id: String,
    /// The exported search: NODE/SEQ.
    pub audit_id: String,
    /// When the package was written, unix ms.
    pub created_at_ms: i64,
    /// Every other file of the package.
    pub files: Vec<ManifestFile>,
}

const MANIFEST: &str = "manifest.json";
/// How far the node's clock may be behind ours when the export lists its own records.
const CLOCK_MARGIN_MS: i64 = 10 * 60_000;
const FORMAT: &str = "camtrail.export.v1";

/// Run `camtrail export` or `camtrail export verify`.
pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    if let Some(ExportCommand::Verify { dir }) = &args.command {
        let manifest = verify(dir)?;
        println!(
            "package {} verifies: {} files match manifest.json (case {}, search {}); every \
             audit record matches its hash. That shows the package is whole and \
             self-consistent; that its records are the node's is shown by the node's audit \
             log (camtrail audit verify, with its signed checkpoints)",
            dir.display(),
            manifest.files.len(),
            manifest.case_id,
            manifest.audit_id
        );
        return Ok(());
    }
    let (Some(case_id), Some(audit_id), Some(out)) = (&args.case_id, &args.audit_id, &args.out)
    else {
        bail!("camtrail export needs --case, --audit-id and --out");
    };
    let node = &args.node;
    let manifest = create(
        &node.url,
        node.token()?,
        case_id,
        audit_id,
        &args.reason,
        out,
    )
    .await?;
    println!(
        "wrote {} ({} files and manifest.json; verify with: camtrail export verify {})",
        out.display(),
        manifest.files.len(),
        out.display()
    );
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Every audit record of `case_id` from `from_ms` on (paged through).
async fn audit_of_case(
    url: &str,
    token: &str,
    case_id: &str,
    from_ms: Option<i64>,
) -> anyhow::Result<Vec<AuditRecord>> {
    let mut records = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut path = format!("/v1/audit?case={}&limit=1000", encode(case_id));
        if let Some(from) = from_ms {
            path += &format!("&from={from}");
        }
        if !cursor.is_empty() {
            path += &format!("&cursor={}", encode(&cursor));
        }
        let body = get(url, &path, token).await?;
        let page: serde_json::Value =
            serde_json::from_slice(&body).context("the audit answer is not JSON")?;
        let batch: Vec<AuditRecord> = serde_json::from_value(page["records"].clone())
            .context("the audit answer holds no records")?;
        records.extend(batch);
        cursor = page["next_cursor"].as_str().unwrap_or_default().to_string();
        if cursor.is_empty() {
            return Ok(records);
        }
    }
}

async fn create(
    url: &str,
    token: &str,
    case_id: &str,
    audit_id: &str,
    reason: &str,
    out: &Path,
) -> anyhow::Result<Manifest> {
    let (node, seq) = audit_id
        .rsplit_once('/')
        .and_then(|(node, seq)| Some((node, seq.parse::<u64>().ok()?)))
        .context("--audit-id is NODE/SEQ, as in the X-Camtrail-Audit header")?;
    if out.exists() {
        bail!(
            "{} exists; a package is written to a new directory",
            out.display()
        );
    }
    let started = now_ms();
    let original = audit_of_case(url, token, case_id, None)
        .await?
        .into_iter()
        .find(|r| r.node_id == node && r.seq == seq)
        .with_context(|| format!("no audit record {audit_id} under case {case_id}"))?;
    if original.entry.kind != "track" {
        bail!(
            "audit record {audit_id} is a {} search; only tracks are exported",
            original.entry.kind
        );
    }
    let asked: serde_json::Value = serde_json::from_str(&original.entry.parameters_json)
        .context("the audit record's parameters are not JSON")?;
    let subject = match asked["subject"].as_str() {
        Some("subject_key") => "subject_key",
        _ => "plate",
    };
    let value = asked["asked"]
        .as_str()
        .context("the record names no plate")?;
    let (from, to) = (
        asked["from_ms"].as_i64().context("no from_ms")?,
        asked["to_ms"].as_i64().context("no to_ms")?,
    );
    let fuzzy = asked["fuzzy"].as_bool().unwrap_or(false);
    let stops = asked["stop_min_ms"]
        .as_i64()
        .map(|ms| format!("&stop_min_ms={ms}"))
        .unwrap_or_default();
    let export_reason = format!("export of {audit_id}: {reason}");
    let track_path = |format: TrackFormat| {
        format!(
            "{}?{subject}={}&from={from}&to={to}&case={}&reason={}&fuzzy={fuzzy}{stops}",
            format.path(),
            encode(value),
            encode(case_id),
            encode(&export_reason)
        )
    };
    private::create_dir(out).with_context(|| format!("creating {}", out.display()))?;
    private::create_dir(&out.join("snapshots"))?;
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = out.join(name);
        private::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(ManifestFile {
            path: name.to_string(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        });
        Ok(())
    };
    let json = get(url, &track_path(TrackFormat::Json), token).await?;
    let track: serde_json::Value =
        serde_json::from_slice(&json).context("the track answer is not JSON")?;
    write("track.json", &json)?;
    write(
        "track.geojson",
        &get(url, &track_path(TrackFormat::GeoJson), token).await?,
    )?;
    write(
        "track.png",
        &get(url, &track_path(TrackFormat::Png), token).await?,
    )?;
    let mut snapshots = BTreeSet::new();
    // The first vehicle's fields sit at the top of the answer, the second's under its name.
    for vehicle in [&track, &track["second_vehicle"]] {
        for sighting in vehicle["sightings"].as_array().into_iter().flatten() {
            if sighting["has_snapshot"].as_bool() == Some(true)
                && let Some(id) = sighting["event_id"].as_str()
            {
                snapshots.insert(id.to_string());
            }
        }
    }
    for id in &snapshots {
        if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("the node named a snapshot {id:?} that is not an event id");
        }
        let jpeg = get(
            url,
            &format!(
                "/v1/snapshots/{id}.jpg?case={}&reason={}",
                encode(case_id),
                encode(&export_reason)
            ),
            token,
        )
        .await?;
        write(&format!("snapshots/{id}.jpg"), &jpeg)?;
    }
    // The original record and what the export's own requests wrote: three track formats and
    // a record per snapshot. The listing starts well before `started` (the node's clock is
    // not ours) and is repeated while the distributed mode's sink has not loaded them yet.
    let expected = 3 + snapshots.len();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let own = loop {
        let own: Vec<AuditRecord> =
            audit_of_case(url, token, case_id, Some(started - CLOCK_MARGIN_MS))
                .await?
                .into_iter()
                .filter(|r| r.entry.reason == export_reason)
                .collect();
        if own.len() >= expected {
            break own;
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "{} of the export's {expected} audit records are readable after 60 s; \
                 nothing written to a package",
                own.len()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let mut audit = vec![original];
    audit.extend(own);
    audit.sort_by(|a, b| (&a.node_id, a.seq).cmp(&(&b.node_id, b.seq)));
    audit.dedup();
    write("audit.json", &serde_json::to_vec_pretty(&audit)?)?;
    let manifest = Manifest {
        format: FORMAT.into(),
        case_id: case_id.to_string(),
        audit_id: audit_id.to_string(),
        created_at_ms: now_ms(),
        files,
    };
    private::write(&out.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(manifest)
}

/// Check the package in `dir`; the error names the first file that does not match.
pub fn verify(dir: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read(dir.join(MANIFEST))
        .with_context(|| format!("reading {}", dir.join(MANIFEST).display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).context("manifest.json: not a manifest")?;
    if manifest.format != FORMAT {
        bail!(
            "manifest.json: format {:?}, expected {FORMAT}",
            manifest.format
        );
    }
    let mut listed = BTreeSet::new();
    for file in &manifest.files {
        let relative = Path::new(&file.path);
        if file.path.is_empty()
            || relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            bail!(
                "manifest.json lists {:?}, which is not a path inside the package",
                file.path
            );
        }
        let bytes = std::fs::read(dir.join(relative))
            .with_context(|| format!("{}: listed in manifest.json but missing", file.path))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        if digest != file.sha256 || bytes.len() as u64 != file.bytes {
            bail!(
                "{}: does not match manifest.json (SHA-256 {digest}, {} bytes; listed {}, {} \
                 bytes)",
                file.path,
                bytes.len(),
                file.sha256,
                file.bytes
            );
        }
        listed.insert(file.path.clone());
    }
    for path in files_under(dir, dir)? {
        if path != MANIFEST && !listed.contains(&path) {
            bail!("{path}: in the package but not in manifest.json");
        }
    }
    for required in ["track.json", "audit.json"] {
        if !listed.contains(required) {
            bail!("manifest.json does not list {required}, which every package holds");
        }
    }
    {
        let records: Vec<AuditRecord> =
            serde_json::from_slice(&std::fs::read(dir.join("audit.json"))?)
                .context("audit.json: not audit records")?;
        if let Some(other) = records.iter().find(|r| r.entry.case_id != manifest.case_id) {
            bail!(
                "audit.json: record {}/{} is of another case than the package's",
                other.node_id,
                other.seq
            );
        }
        for record in &records {
            if record.compute_hash() != record.hash {
                bail!(
                    "audit.json: record {}/{} does not match its hash",
                    record.node_id,
                    record.seq
                );
            }
        }
        if !records
            .iter()
            .any(|r| format!("{}/{}", r.node_id, r.seq) == manifest.audit_id)
        {
            bail!(
                "audit.json: the exported search {} is missing",
                manifest.audit_id
            );
        }
    }
    Ok(manifest)
}

/// Every file under `dir`, relative to `root`, `/`-separated.
fn files_under(root: &Path, dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let kind = std::fs::symlink_metadata(&path)?.file_type();
        if kind.is_symlink() {
            bail!(
                "{}: a symbolic link; a package holds plain files only",
                path.display()
            );
        }
        if kind.is_dir() {
            out.extend(files_under(root, &path)?);
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            out.push(
                relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::audit::{AuditChain, AuditEntry};

    /// A package written by hand as `create` writes one.
    fn package(dir: &Path) {
        let chain = AuditChain::new("q/1");
        let record = chain.seal(AuditEntry {
            kind: "track".into(),
            case_id: "C".into(),
            ..AuditEntry::default()
        });
        let files = [
            ("track.json", b"{\"n\":1}".to_vec()),
            ("snapshots/ab.jpg", vec![0xff, 0xd8, 0xff]),
            (
                "audit.json",
                serde_json::to_vec(&vec![record]).expect("json"),
            ),
        ];
        std::fs::create_dir_all(dir.join("snapshots")).expect("dir");
        let mut listed = Vec::new();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), &bytes).expect("write");
            listed.push(ManifestFile {
                path: name.into(),
                bytes: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(&bytes)),
            });
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            case_id: "C".into(),
            audit_id: "q/1/1".into(),
            created_at_ms: 0,
            files: listed,
        };
        std::fs::write(
            dir.join(MANIFEST),
            serde_json::to_vec(&manifest).expect("json"),
        )
        .expect("manifest");
    }

    /// Change the package's manifest in place.
    fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Manifest)) {
        let mut manifest: Manifest =
            serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).expect("read"))
                .expect("manifest");
        edit(&mut manifest);
        std::fs::write(
            dir.join(MANIFEST),
            serde_json::to_vec(&manifest).expect("json"),
        )
        .expect("manifest");
    }

    fn error(dir: &Path) -> String {
        format!("{:#}", verify(dir).expect_err("must fail"))
    }

    #[test]
    fn an_intact_package_verifies_and_any_changed_byte_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        package(dir.path());
        assert_eq!(verify(dir.path()).expect("verifies").files.len(), 3);
        let jpeg = dir.path().join("snapshots/ab.jpg");
        std::fs::write(&jpeg, [0xff, 0xd8, 0xfe]).expect("tamper");
        assert!(error(dir.path()).starts_with("snapshots/ab.jpg: does not match"));
        std::fs::remove_file(&jpeg).expect("remove");
        assert!(
            error(dir.path()).contains("snapshots/ab.jpg: listed in manifest.json but missing")
        );
    }

    #[test]
    fn a_package_without_its_audit_or_with_a_link_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        package(dir.path());
        std::fs::remove_file(dir.path().join("audit.json")).expect("remove");
        edit_manifest(dir.path(), |manifest| {
            manifest.files.retain(|f| f.path != "audit.json")
        });
        assert_eq!(
            error(dir.path()),
            "manifest.json does not list audit.json, which every package holds"
        );
        let other = tempfile::tempdir().expect("tempdir");
        package(other.path());
        std::os::unix::fs::symlink(other.path(), other.path().join("snapshots/loop"))
            .expect("symlink");
        assert!(error(other.path()).contains("a symbolic link"));
    }

    #[test]
    fn added_files_edited_records_and_escaping_paths_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        package(dir.path());
        std::fs::write(dir.path().join("extra.txt"), "x").expect("extra");
        assert_eq!(
            error(dir.path()),
            "extra.txt: in the package but not in manifest.json"
        );
        std::fs::remove_file(dir.path().join("extra.txt")).expect("remove");

        // An audit record edited without re-sealing it, and the manifest updated to match:
        // the record's hash fails. (Re-sealed records pass here: the node's own log and its
        // signed checkpoints are what show them forged.)
        let mut records: Vec<AuditRecord> =
            serde_json::from_slice(&std::fs::read(dir.path().join("audit.json")).expect("read"))
                .expect("records");
        records[0].entry.reason = "edited".into();
        let bytes = serde_json::to_vec(&records).expect("json");
        std::fs::write(dir.path().join("audit.json"), &bytes).expect("write");
        edit_manifest(dir.path(), |manifest| {
            for file in &mut manifest.files {
                if file.path == "audit.json" {
                    file.bytes = bytes.len() as u64;
                    file.sha256 = hex::encode(Sha256::digest(&bytes));
                }
            }
        });
        assert_eq!(
            error(dir.path()),
            "audit.json: record q/1/1 does not match its hash"
        );

        edit_manifest(dir.path(), |manifest| {
            manifest.files[0].path = "../outside".into()
        });
        assert!(error(dir.path()).contains("not a path inside the package"));
    }
}
