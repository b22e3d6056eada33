//! `camtrail transparency report`: what the system was used for over a period, for the
//! public (aggregates only: no plates, no case ids or reasons, no user names), and a
//! separate anomaly page for supervisors (users whose search volume, hours or breadth
//! deviate from their own history).
//!
//! Everything is counted from the audit log (the record of every search), the camera
//! registry, the users file and the store's row count; [`aggregate`] and [`anomalies`] are
//! pure so tests can hold them to a known mix of records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Context;
use camtrail_model::audit::AuditRecord;
use camtrail_serve::Config;
use chrono::{TimeZone, Timelike};
use serde::Serialize;

/// The audit kinds that are searches of detections.
pub const SEARCH_KINDS: &[&str] = &["track", "passes", "scene", "series", "cotravel"];
/// The searches that see many people's vehicles at once.
pub const BROAD_KINDS: &[&str] = &["passes", "scene", "series", "cotravel"];
/// What this version does not record yet, listed so the report does not pass over it.
pub const NOT_RECORDED: &[&str] = &[
    "watchlist hits found (only the reviewed ones are counted)",
    "evidence exports (their searches are counted as searches)",
];
/// The category searches under a case the log holds no opening record of are counted in.
pub const UNREGISTERED: &str = "unregistered";
const DAY_MS: i64 = 86_400_000;

/// Options of `camtrail transparency report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Start of the period (unix ms, inclusive).
    #[arg(long)]
    pub from: i64,
    /// End of the period (unix ms, exclusive).
    #[arg(long)]
    pub to: i64,
    /// Read the embedded database (serve.database_path) instead of ClickHouse.
    #[arg(long)]
    pub embedded: bool,
    /// Days before --from that are each user's own history for the anomaly page (1-366).
    #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub history_days: u32,
    /// Directory for transparency.json/.html (public) and anomalies.json/.html
    /// (supervisors only, mode 0600).
    #[arg(long, default_value = "transparency")]
    pub out: PathBuf,
}

/// One kind of audited action in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindCount {
    /// `track`, `passes`, `scene`, … as in the audit log.
    pub kind: String,
    /// Audit records of that kind.
    pub count: u64,
    /// Results they returned (rows removed, for retention).
    pub results: u64,
}

/// The public report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Period start, unix ms (inclusive).
    pub from_ms: i64,
    /// Period end, unix ms (exclusive).
    pub to_ms: i64,
    /// Cameras in the registry.
    pub cameras: u64,
    /// Detections stored when the report was made.
    pub detections_stored: u64,
    /// Retention in force (`serve.retention_days`, or the policy of the last audited run).
    pub retention_days: Option<u64>,
    /// Retention runs in the period.
    pub retention_runs: u64,
    /// Searches of detections in the period (track, passes, scene, series, co-travel).
    pub searches: u64,
    /// Every audited kind in the period.
    pub by_kind: Vec<KindCount>,
    /// Searches in the period by the offence category of their case (from the case's
    /// `case_open` record, whenever it was written; [`UNREGISTERED`] when there is none).
    pub searches_by_category: BTreeMap<String, u64>,
    /// Cases opened in the period.
    pub cases_opened: u64,
    /// Cases closed in the period.
    pub cases_closed: u64,
    /// Distinct detections placed under a legal hold in the period.
    pub holds_placed: u64,
    /// Watchlist entries requested, approved and revoked in the period.
    pub watchlist_requested: u64,
    /// See `watchlist_requested`.
    pub watchlist_approved: u64,
    /// See `watchlist_requested`.
    pub watchlist_revoked: u64,
    /// Watchlist hits a person confirmed against the snapshot in the period.
    pub hits_confirmed: u64,
    /// Watchlist hits a person rejected (misreads, look-alikes) in the period.
    pub hits_rejected: u64,
    /// Users in the users file, by role.
    pub users_by_role: BTreeMap<String, u64>,
    /// Users who searched in the period, by role.
    pub searching_users_by_role: BTreeMap<String, u64>,
    /// Audit records in the period.
    pub audit_records: u64,
    /// What this version does not record yet.
    pub not_recorded: Vec<String>,
}

/// Count `records` in `[from_ms, to_ms)`; the other figures come from outside the log.
pub fn aggregate(
    records: &[AuditRecord],
    from_ms: i64,
    to_ms: i64,
    cameras: u64,
    detections_stored: u64,
    configured_retention_days: Option<u64>,
    users_by_role: BTreeMap<String, u64>,
) -> Report {
    let in_period: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.entry.at_ms >= from_ms && r.entry.at_ms < to_ms)
        .collect();
    let mut by_kind: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut searching: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    // Each case's category, from its opening record (any time before the period's end).
    let category: BTreeMap<&str, String> = records
        .iter()
        .filter(|r| r.entry.kind == "case_open" && r.entry.at_ms < to_ms)
        .filter_map(|r| {
            let parameters: serde_json::Value =
                serde_json::from_str(&r.entry.parameters_json).ok()?;
            let name = parameters.get("category")?.as_str()?.to_string();
            Some((r.entry.case_id.as_str(), name))
        })
        .collect();
    let mut searches_by_category: BTreeMap<String, u64> = BTreeMap::new();
    for record in &in_period {
        let entry = &record.entry;
        let slot = by_kind.entry(entry.kind.as_str()).or_default();
        slot.0 += 1;
        slot.1 += entry.result_count;
        if SEARCH_KINDS.contains(&entry.kind.as_str()) {
            searching
                .entry(entry.role.clone())
                .or_default()
                .insert(entry.user.as_str());
            let name = category
                .get(entry.case_id.as_str())
                .map_or(UNREGISTERED, String::as_str);
            *searches_by_category.entry(name.to_string()).or_default() += 1;
        }
    }
    let count = |kind: &str| by_kind.get(kind).map_or(0, |c| c.0);
    let searches = SEARCH_KINDS
        .iter()
        .map(|kind| by_kind.get(kind).map_or(0, |c| c.0))
        .sum();
    // The newest audited retention run up to the end of the period states its policy.
    let last_policy = records
        .iter()
        .filter(|r| r.entry.kind == "retention" && r.entry.at_ms < to_ms)
        .max_by_key(|r| r.entry.at_ms)
        .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.entry.parameters_json).ok())
        .and_then(|p| p.get("days").and_then(serde_json::Value::as_u64));
    Report {
        from_ms,
        to_ms,
        cameras,
        detections_stored,
        retention_days: configured_retention_days.or(last_policy),
        retention_runs: count("retention"),
        searches,
        searches_by_category,
        cases_opened: count("case_open"),
        cases_closed: count("case_close"),
        watchlist_requested: count("watchlist_request"),
        watchlist_approved: count("watchlist_approve"),
        watchlist_revoked: count("watchlist_revoke"),
        hits_confirmed: count("alert_confirm"),
        hits_rejected: count("alert_reject"),
        holds_placed: in_period
            .iter()
            .filter(|r| r.entry.kind == "hold_place")
            .filter_map(|r| {
                serde_json::from_str::<serde_json::Value>(&r.entry.parameters_json).ok()
            })
            .flat_map(|p| {
                p.get("event_ids")
                    .and_then(serde_json::Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|id| id.as_str().map(String::from))
            .collect::<BTreeSet<String>>()
            .len() as u64,
        by_kind: by_kind
            .into_iter()
            .map(|(kind, (count, results))| KindCount {
                kind: kind.to_string(),
                count,
                results,
            })
            .collect(),
        users_by_role,
        searching_users_by_role: searching
            .into_iter()
            .map(|(role, users)| (role, users.len() as u64))
            .collect(),
        audit_records: in_period.len() as u64,
        not_recorded: NOT_RECORDED.iter().map(|s| s.to_string()).collect(),
    }
}

/// One user's period against their own history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserActivity {
    /// The user (token name).
    pub user: String,
    /// Searches in the period.
    pub searches: u64,
    /// Searches per day in the period.
    pub per_day: f64,
    /// Searches per day over the history: mean and standard deviation.
    pub history_per_day: f64,
    /// Standard deviation of the daily counts over the history.
    pub history_sd: f64,
    /// Share of the period's searches made between 22:00 and 06:00 local time.
    pub night_share: f64,
    /// The same share over the history.
    pub history_night_share: f64,
    /// Share of broad searches (passes, scene, series, co-travel) in the period.
    pub broad_share: f64,
    /// The same share over the history.
    pub history_broad_share: f64,
    /// Why this user is listed (empty: nothing deviates).
    pub flags: Vec<String>,
}

/// Every user who searched in the period or its history, flagged where the period deviates
/// from their own history (a period shorter than a day counts as one):
/// volume (per-day mean above the history's mean + 3 × its standard
/// deviation, at least 1), hours (night share up by more than 30 points) or breadth (share of
/// broad searches up by more than 30 points); the last two only with 5 or more searches in the
/// period. A user without history is listed and not flagged.
pub fn anomalies(
    records: &[AuditRecord],
    from_ms: i64,
    to_ms: i64,
    history_days: u32,
    zone: chrono_tz::Tz,
) -> Vec<UserActivity> {
    let history_from = from_ms.saturating_sub(i64::from(history_days) * DAY_MS);
    // A period shorter than a day counts as a day: a rate from an hour's searches would
    // flag ordinary bursts.
    let period_days = ((to_ms as f64 - from_ms as f64) / DAY_MS as f64).max(1.0);
    let mut users: BTreeMap<&str, (Vec<&AuditRecord>, Vec<&AuditRecord>)> = BTreeMap::new();
    for record in records {
        let entry = &record.entry;
        if !SEARCH_KINDS.contains(&entry.kind.as_str()) {
            continue;
        }
        let slot = users.entry(entry.user.as_str()).or_default();
        if entry.at_ms >= from_ms && entry.at_ms < to_ms {
            slot.0.push(record);
        } else if entry.at_ms >= history_from && entry.at_ms < from_ms {
            slot.1.push(record);
        }
    }
    let night = |r: &&AuditRecord| {
        zone.timestamp_millis_opt(r.entry.at_ms)
            .single()
            .is_some_and(|t| t.hour() >= 22 || t.hour() < 6)
    };
    let broad = |r: &&AuditRecord| BROAD_KINDS.contains(&r.entry.kind.as_str());
    let share = |set: &[&AuditRecord], test: &dyn Fn(&&AuditRecord) -> bool| {
        if set.is_empty() {
            0.0
        } else {
            set.iter().filter(|r| test(r)).count() as f64 / set.len() as f64
        }
    };
    users
        .into_iter()
        .filter(|(_, (period, history))| !period.is_empty() || !history.is_empty())
        .map(|(user, (period, history))| {
            let mut daily = vec![0u64; history_days as usize];
            for record in &history {
                let day = ((record.entry.at_ms - history_from) / DAY_MS) as usize;
                if let Some(count) = daily.get_mut(day) {
                    *count += 1;
                }
            }
            let n = daily.len().max(1) as f64;
            let mean = daily.iter().sum::<u64>() as f64 / n;
            let sd = (daily
                .iter()
                .map(|&c| (c as f64 - mean).powi(2))
                .sum::<f64>()
                / n)
                .sqrt();
            let activity = UserActivity {
                user: user.to_string(),
                searches: period.len() as u64,
                per_day: period.len() as f64 / period_days,
                history_per_day: mean,
                history_sd: sd,
                night_share: share(&period, &night),
                history_night_share: share(&history, &night),
                broad_share: share(&period, &broad),
                history_broad_share: share(&history, &broad),
                flags: Vec::new(),
            };
            let mut flags = Vec::new();
            if !history.is_empty() {
                let limit = mean + 3.0 * sd.max(1.0);
                if activity.per_day > limit {
                    flags.push(format!(
                        "volume: {:.1} searches a day against {:.1} ± {:.1} before",
                        activity.per_day, mean, sd
                    ));
                }
                if period.len() >= 5 {
                    if activity.night_share - activity.history_night_share > 0.3 {
                        flags.push(format!(
                            "hours: {:.0}% at night (22:00–06:00) against {:.0}% before",
                            100.0 * activity.night_share,
                            100.0 * activity.history_night_share
                        ));
                    }
                    if activity.broad_share - activity.history_broad_share > 0.3 {
                        flags.push(format!(
                            "breadth: {:.0}% broad searches against {:.0}% before",
                            100.0 * activity.broad_share,
                            100.0 * activity.history_broad_share
                        ));
                    }
                }
            }
            UserActivity { flags, ..activity }
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.2em .6em;\
         text-align:left}}td.n{{text-align:right}}</style></head><body><h1>{t}</h1>\n{body}\
         </body></html>\n",
        t = escape(title)
    )
}

fn local(ms: i64, zone: chrono_tz::Tz) -> String {
    zone.timestamp_millis_opt(ms).single().map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M %Z").to_string(),
    )
}

/// The public report as HTML.
pub fn report_html(report: &Report, zone: chrono_tz::Tz) -> String {
    let mut body = format!(
        "<p>From {} to {}. Counted from the audit log, in which every search is recorded \
         before its answer is released. Aggregates only: no plates, no case ids, no \
         names.</p>\n<table>\n",
        local(report.from_ms, zone),
        local(report.to_ms, zone)
    );
    let retention = report
        .retention_days
        .map_or_else(|| "not set".to_string(), |d| format!("{d} days"));
    for (what, value) in [
        ("Cameras", report.cameras.to_string()),
        (
            "Detections stored (now)",
            report.detections_stored.to_string(),
        ),
        ("Retention in force", retention),
        ("Retention runs", report.retention_runs.to_string()),
        ("Searches of detections", report.searches.to_string()),
        ("Cases opened", report.cases_opened.to_string()),
        ("Cases closed", report.cases_closed.to_string()),
        (
            "Detections placed under legal hold",
            report.holds_placed.to_string(),
        ),
        (
            "Watchlist entries requested / approved / revoked",
            format!(
                "{} / {} / {}",
                report.watchlist_requested, report.watchlist_approved, report.watchlist_revoked
            ),
        ),
        (
            "Watchlist hits confirmed / rejected by a person",
            format!("{} / {}", report.hits_confirmed, report.hits_rejected),
        ),
        ("Audit records", report.audit_records.to_string()),
    ] {
        body += &format!(
            "<tr><th>{}</th><td class=n>{}</td></tr>\n",
            escape(what),
            escape(&value)
        );
    }
    body += "</table>\n<h2>By kind</h2>\n<table><tr><th>kind</th><th>records</th>\
             <th>results returned</th></tr>\n";
    for kind in &report.by_kind {
        body += &format!(
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
            escape(&kind.kind),
            kind.count,
            kind.results
        );
    }
    body += "</table>\n<h2>Searches by offence category</h2>\n<table><tr><th>category</th>\
             <th>searches</th></tr>\n";
    for (name, searches) in &report.searches_by_category {
        body += &format!(
            "<tr><td>{}</td><td class=n>{searches}</td></tr>\n",
            escape(name)
        );
    }
    body += "</table>\n<h2>Users</h2>\n<table><tr><th>role</th><th>accounts</th>\
             <th>searched in the period</th></tr>\n";
    let roles: BTreeSet<&String> = report
        .users_by_role
        .keys()
        .chain(report.searching_users_by_role.keys())
        .collect();
    for role in roles {
        body += &format!(
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
            escape(role),
            report.users_by_role.get(role).copied().unwrap_or(0),
            report
                .searching_users_by_role
                .get(role)
                .copied()
                .unwrap_or(0)
        );
    }
    body += "</table>\n<h2>Not recorded by this version</h2>\n<ul>\n";
    for item in &report.not_recorded {
        body += &format!("<li>{}</li>\n", escape(item));
    }
    body += "</ul>\n";
    page("camtrail transparency report", &body)
}

/// The supervisors' anomaly page as HTML.
pub fn anomalies_html(users: &[UserActivity], report: &Report, zone: chrono_tz::Tz) -> String {
    let mut body = format!(
        "<p>For supervisors, not for publication. From {} to {}, each user against their own \
         history before it. Listed: a per-day search count above the history's mean plus \
         three standard deviations (at least one); a share of searches at night (22:00–06:00) \
         or of broad searches (passes, scene, series, co-travel) up by more than 30 points, \
         with five or more searches. A flag is a reason to look, not a finding.</p>\n\
         <table><tr><th>user</th><th>searches</th><th>per day</th><th>before</th>\
         <th>night</th><th>broad</th><th>flags</th></tr>\n",
        local(report.from_ms, zone),
        local(report.to_ms, zone)
    );
    for user in users {
        body += &format!(
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{:.1}</td><td class=n>{:.1} ± \
             {:.1}</td><td class=n>{:.0}% ({:.0}%)</td><td class=n>{:.0}% ({:.0}%)</td>\
             <td>{}</td></tr>\n",
            escape(&user.user),
            user.searches,
            user.per_day,
            user.history_per_day,
            user.history_sd,
            100.0 * user.night_share,
            100.0 * user.history_night_share,
            100.0 * user.broad_share,
            100.0 * user.history_broad_share,
            escape(&user.flags.join("; "))
        );
    }
    body += "</table>\n";
    page("camtrail anomalies (supervisors)", &body)
}

/// Write the report and the anomaly page for `args`.
pub async fn run(args: ReportArgs, config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(args.from < args.to, "--from must be before --to");
    let zone: chrono_tz::Tz = config
        .query
        .time_zone
        .parse()
        .map_err(|_| anyhow::anyhow!("query.time_zone: unknown zone"))?;
    let (records, stored) = if args.embedded {
        let records = crate::serve::audit_records(&config).await?;
        (records, crate::serve::detection_count(&config).await?)
    } else {
        distributed(&config).await?
    };
    let registry = camtrail_model::CameraRegistry::from_csv_path(&config.query.registry_path)
        .with_context(|| format!("reading {}", config.query.registry_path.display()))?;
    let users_text = std::fs::read_to_string(&config.query.users_path)
        .with_context(|| format!("reading {}", config.query.users_path.display()))?;
    let users: camtrail_query::auth::UsersFile = toml::from_str(&users_text)
        .with_context(|| format!("parsing {}", config.query.users_path.display()))?;
    let mut users_by_role = BTreeMap::new();
    for user in &users.user {
        *users_by_role
            .entry(user.role.as_str().to_string())
            .or_insert(0) += 1;
    }
    let configured = config
        .serve
        .retention_days
        .filter(|&days| args.embedded && days > 0)
        .map(u64::from);
    let report = aggregate(
        &records,
        args.from,
        args.to,
        registry.len() as u64,
        stored,
        configured,
        users_by_role,
    );
    let flagged = anomalies(&records, args.from, args.to, args.history_days, zone);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let write = |name: &str, bytes: &[u8], private: bool| -> anyhow::Result<()> {
        let path = args.out.join(name);
        if private {
            camtrail_storage::private::write(&path, bytes)
        } else {
            std::fs::write(&path, bytes)
        }
        .with_context(|| format!("writing {}", path.display()))
    };
    write(
        "transparency.json",
        &serde_json::to_vec_pretty(&report)?,
        false,
    )?;
    write(
        "transparency.html",
        report_html(&report, zone).as_bytes(),
        false,
    )?;
    write(
        "anomalies.json",
        &serde_json::to_vec_pretty(&flagged)?,
        true,
    )?;
    write(
        "anomalies.html",
        anomalies_html(&flagged, &report, zone).as_bytes(),
        true,
    )?;
    println!(
        "{} searches, {} audit records in the period; {} of {} users flagged; wrote \
         transparency.json/.html (public) and anomalies.json/.html (supervisors, 0600) to {}",
        report.searches,
        report.audit_records,
        flagged.iter().filter(|u| !u.flags.is_empty()).count(),
        flagged.len(),
        args.out.display()
    );
    Ok(())
}

#[cfg(feature = "distributed")]
async fn distributed(config: &Config) -> anyhow::Result<(Vec<AuditRecord>, u64)> {
    Ok((
        camtrail_serve::distributed::audit_records(config).await?,
        camtrail_serve::distributed::detection_count(config).await?,
    ))
}

#[cfg(not(feature = "distributed"))]
async fn distributed(_config: &Config) -> anyhow::Result<(Vec<AuditRecord>, u64)> {
    anyhow::bail!(crate::cli::NOT_DISTRIBUTED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::audit::{AuditChain, AuditEntry};

    const DAY0: i64 = 1_764_547_200_000; // 2025-12-01 00:00 UTC

    fn records(entries: &[(&str, &str, &str, i64, u64)]) -> Vec<AuditRecord> {
        let mut chain = AuditChain::new("q");
        entries
            .iter()
            .map(|(user, role, kind, at_ms, results)| {
                let record = chain.seal(AuditEntry {
                    at_ms: *at_ms,
                    user: user.to_string(),
                    role: role.to_string(),
                    kind: kind.to_string(),
                    result_count: *results,
                    case_id: if *kind == "passes" { "C-9" } else { "C-1" }.into(),
                    parameters_json: match *kind {
                        "retention" => r#"{"days":30}"#.into(),
                        "case_open" => r#"{"category":"robbery"}"#.into(),
                        "hold_place" => r#"{"event_ids":["aa","bb"]}"#.into(),
                        _ => "{}".into(),
                    },
                    ..AuditEntry::default()
                });
                chain.commit(&record);
                record
            })
            .collect()
    }

    #[test]
    fn counts_what_the_log_holds_in_the_period_only() {
        let log = records(&[
            ("sam", "supervisor", "case_open", DAY0 - 2, 1), // before
            ("ann", "investigator", "track", DAY0 - 1, 5),   // before
            ("ann", "investigator", "track", DAY0, 5),
            ("ann", "investigator", "scene", DAY0 + 10, 40),
            ("bob", "supervisor", "audit_read", DAY0 + 20, 3),
            ("bob", "supervisor", "passes", DAY0 + 30, 7),
            ("ops", "operator", "retention", DAY0 + 40, 1000),
            ("sam", "supervisor", "hold_place", DAY0 + 50, 2),
            ("sam", "supervisor", "hold_place", DAY0 + 60, 2), // the same two again
            ("ann", "investigator", "watchlist_request", DAY0 + 70, 1),
            ("bob", "supervisor", "alert_reject", DAY0 + 80, 1),
            ("ann", "investigator", "track", DAY0 + DAY_MS, 5), // at the end: excluded
        ]);
        let users = BTreeMap::from([("investigator".to_string(), 3), ("supervisor".into(), 1)]);
        let report = aggregate(&log, DAY0, DAY0 + DAY_MS, 140, 9, None, users);
        assert_eq!(report.searches, 3);
        assert_eq!(report.audit_records, 9);
        assert_eq!(
            (report.watchlist_requested, report.watchlist_approved),
            (1, 0)
        );
        assert_eq!((report.hits_confirmed, report.hits_rejected), (0, 1));
        assert_eq!(report.holds_placed, 2, "distinct detections held");
        assert_eq!(report.retention_runs, 1);
        assert_eq!(report.retention_days, Some(30));
        assert_eq!(report.cases_opened, 0, "opened before the period");
        assert_eq!(
            report.searches_by_category,
            BTreeMap::from([("robbery".to_string(), 2), (UNREGISTERED.into(), 1)]),
            "case C-1 is a robbery; C-9 has no opening record"
        );
        let kinds: Vec<(&str, u64, u64)> = report
            .by_kind
            .iter()
            .map(|k| (k.kind.as_str(), k.count, k.results))
            .collect();
        assert_eq!(
            kinds,
            [
                ("alert_reject", 1, 1),
                ("audit_read", 1, 3),
                ("hold_place", 2, 4),
                ("passes", 1, 7),
                ("retention", 1, 1000),
                ("scene", 1, 40),
                ("track", 1, 5),
                ("watchlist_request", 1, 1)
            ]
        );
        assert_eq!(
            report.searching_users_by_role,
            BTreeMap::from([("investigator".to_string(), 1), ("supervisor".into(), 1)])
        );
        let html = report_html(&report, chrono_tz::UTC);
        assert!(html.contains("<tr><td>scene</td><td class=n>1</td><td class=n>40</td></tr>"));
        assert!(!html.contains("ann"), "no names in the public report");
    }

    #[test]
    fn flags_only_what_deviates_from_the_users_own_history() {
        let mut entries = Vec::new();
        // 28 days of history: ann 2 searches a day at 10:00, carl 1 broad search at noon.
        for day in 0..28 {
            let at = DAY0 - (28 - day) * DAY_MS + 10 * 3_600_000;
            entries.push(("ann", "investigator", "track", at, 1));
            entries.push(("ann", "investigator", "track", at + 60_000, 1));
            entries.push(("carl", "investigator", "scene", at + 7_200_000, 1));
        }
        // The period (one day): ann 30 searches at 23:00, carl as usual, dan new.
        for i in 0..30 {
            entries.push(("ann", "investigator", "scene", DAY0 + 23 * 3_600_000 + i, 1));
        }
        entries.push(("carl", "investigator", "scene", DAY0 + 12 * 3_600_000, 1));
        entries.push(("dan", "investigator", "track", DAY0 + 3_600_000, 1));
        let log = records(&entries);
        let users = anomalies(&log, DAY0, DAY0 + DAY_MS, 28, chrono_tz::UTC);
        let ann = &users[0];
        assert_eq!((ann.user.as_str(), ann.searches), ("ann", 30));
        assert_eq!(ann.flags.len(), 3, "{:?}", ann.flags);
        assert!(ann.flags[0].starts_with("volume: 30.0 searches a day against 2.0"));
        assert!(ann.flags[1].starts_with("hours: 100% at night"));
        assert!(ann.flags[2].starts_with("breadth: 100% broad"));
        assert_eq!(users[1].user, "carl");
        assert!(users[1].flags.is_empty(), "{:?}", users[1].flags);
        assert_eq!(users[2].user, "dan");
        assert!(users[2].flags.is_empty(), "no history, nothing to compare");
    }
}
