//! `camtrail cases open|list|assign|extend|close` and `camtrail holds place|list`: the case
//! registry and legal holds, asked of a query node over HTTP (`/v1/cases`, `/v1/holds`).
//! Opening and changing need a supervisor's token; every change needs --reason and prints
//! the audit record it was written as.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use camtrail_query::client::{encode, get, post_json};
use serde_json::{Value, json};

use crate::analytics::SearchArgs;
use crate::query::NodeArgs;

/// `camtrail cases ...`
#[derive(Debug, clap::Subcommand)]
pub enum CasesCommand {
    /// Open a case (supervisor): id, title, offence category from the node's taxonomy,
    /// assigned investigators and an end date (at most query.cases.max_days ahead).
    Open(OpenArgs),
    /// List cases: all of them for a supervisor, those assigned to you for an
    /// investigator; with the taxonomy in force.
    List(ListArgs),
    /// Add or remove investigators (supervisor).
    Assign(AssignArgs),
    /// Move a case's end date later (supervisor; --reason required).
    Extend(ExtendArgs),
    /// Close a case (supervisor): no more searches under it; its legal holds lapse.
    Close(CloseArgs),
}

/// `camtrail holds ...`
#[derive(Debug, clap::Subcommand)]
pub enum HoldsCommand {
    /// Keep detections (by event id) through retention while the case is not closed
    /// (supervisor).
    Place(PlaceArgs),
    /// List legal holds (supervisor), optionally of one case.
    List(HoldsListArgs),
}

/// Options of `camtrail cases open`.
#[derive(Debug, clap::Args)]
pub struct OpenArgs {
    /// Short title.
    #[arg(long)]
    pub title: String,
    /// Offence category (`camtrail cases list` prints the taxonomy).
    #[arg(long)]
    pub category: String,
    /// Investigators who may search under it (repeat, or separate with commas).
    #[arg(long = "assign", value_delimiter = ',')]
    pub assigned: Vec<String>,
    /// End date: unix ms or RFC 3339 (e.g. 2026-03-01T00:00:00+08:00), or a number of days
    /// from now with a `d` suffix (e.g. 30d).
    #[arg(long)]
    pub ends: String,
    /// The case, why, and the node to ask.
    #[command(flatten)]
    pub change: SearchArgs,
}

/// Options of `camtrail cases list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only open or only closed cases.
    #[arg(long, value_parser = ["open", "closed"])]
    pub status: Option<String>,
    /// Print the JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Options of `camtrail cases assign`.
#[derive(Debug, clap::Args)]
pub struct AssignArgs {
    /// Investigators to add (repeat, or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub add: Vec<String>,
    /// Investigators to remove.
    #[arg(long, value_delimiter = ',')]
    pub remove: Vec<String>,
    /// The case, why, and the node to ask.
    #[command(flatten)]
    pub change: SearchArgs,
}

/// Options of `camtrail cases extend`.
#[derive(Debug, clap::Args)]
pub struct ExtendArgs {
    /// The new end date (as for `cases open --ends`).
    #[arg(long)]
    pub ends: String,
    /// The case, why, and the node to ask.
    #[command(flatten)]
    pub change: SearchArgs,
}

/// Options of `camtrail cases close`.
#[derive(Debug, clap::Args)]
pub struct CloseArgs {
    /// The case, why, and the node to ask.
    #[command(flatten)]
    pub change: SearchArgs,
}

/// Options of `camtrail holds place`.
#[derive(Debug, clap::Args)]
pub struct PlaceArgs {
    /// Event ids, 32 hex digits (repeat, or separate with commas).
    #[arg(long = "event", value_delimiter = ',')]
    pub event_ids: Vec<String>,
    /// A file with one event id per line (e.g. from an export's track.json), added to
    /// --event.
    #[arg(long)]
    pub from_file: Option<std::path::PathBuf>,
    /// The case, why, and the node to ask.
    #[command(flatten)]
    pub change: SearchArgs,
}

/// Options of `camtrail holds list`.
#[derive(Debug, clap::Args)]
pub struct HoldsListArgs {
    /// Only this case.
    #[arg(long = "case")]
    pub case_id: Option<String>,
    /// Print the JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// An end date as the API takes it: `30d` → now + 30 days in ms, digits → ms, else text.
fn ends(text: &str) -> anyhow::Result<Value> {
    let text = text.trim();
    if let Some(days) = text.strip_suffix('d') {
        let days: i64 = days
            .parse()
            .with_context(|| format!("--ends {text:?}: a number of days before `d`"))?;
        return Ok(json!(camtrail_common::now_ms() + days * 86_400_000));
    }
    Ok(text
        .parse::<i64>()
        .map_or_else(|_| json!(text), |ms| json!(ms)))
}

fn print(answer: &[u8], json: bool, table: fn(&Value) -> String) -> anyhow::Result<()> {
    let output = if json {
        answer.to_vec()
    } else {
        let answer: Value =
            serde_json::from_slice(answer).context("the node's answer is not JSON")?;
        table(&answer).into_bytes()
    };
    std::io::stdout().write_all(&output)?;
    Ok(())
}

fn case_line(out: &mut String, case: &Value) {
    let _ = writeln!(
        out,
        "{:<20} {:<7} {:<15} ends {}  assigned {}  v{}",
        case["case"].as_str().unwrap_or("?"),
        case["status"].as_str().unwrap_or("?"),
        case["category"].as_str().unwrap_or("?"),
        case["ends"].as_str().unwrap_or("?"),
        case["assigned"]
            .as_array()
            .map(|users| users
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default(),
        case["version"],
    );
    let _ = writeln!(out, "    {}", case["title"].as_str().unwrap_or(""));
}

fn changed_table(answer: &Value) -> String {
    let mut out = String::new();
    case_line(&mut out, answer);
    let _ = writeln!(
        out,
        "audit {} #{}",
        answer["audit"]["node_id"].as_str().unwrap_or("?"),
        answer["audit"]["seq"]
    );
    out
}

fn list_table(answer: &Value) -> String {
    let mut out = String::new();
    let cases = answer["cases"].as_array().cloned().unwrap_or_default();
    if cases.is_empty() {
        out.push_str("no cases\n");
    }
    for case in &cases {
        case_line(&mut out, case);
    }
    let categories: Vec<&str> = answer["categories"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "categories: {}; times in {}",
        categories.join(", "),
        answer["time_zone"].as_str().unwrap_or("?")
    );
    out
}

fn holds_table(answer: &Value) -> String {
    let mut out = String::new();
    let holds = answer["holds"].as_array().cloned().unwrap_or_default();
    if holds.is_empty() {
        out.push_str("no holds\n");
    }
    for hold in &holds {
        let _ = writeln!(
            out,
            "{:<20} {}  by {} at {}",
            hold["case"].as_str().unwrap_or("?"),
            hold["event_id"].as_str().unwrap_or("?"),
            hold["placed_by"].as_str().unwrap_or("?"),
            hold["placed"].as_str().unwrap_or("?"),
        );
    }
    if let Some(seq) = answer["audit"]["seq"].as_u64() {
        let _ = writeln!(
            out,
            "audit {} #{seq}",
            answer["audit"]["node_id"].as_str().unwrap_or("?")
        );
    }
    out
}

/// Run `camtrail cases ...`.
pub async fn cases(command: CasesCommand) -> anyhow::Result<()> {
    match command {
        CasesCommand::Open(args) => {
            let change = &args.change;
            let body = json!({
                "case": change.case_id,
                "title": args.title,
                "category": args.category,
                "assigned": args.assigned,
                "ends": ends(&args.ends)?,
                "reason": change.reason,
            });
            let answer =
                post_json(&change.node.url, "/v1/cases", change.node.token()?, &body).await?;
            print(&answer, change.json, changed_table)
        }
        CasesCommand::List(args) => {
            let path = match &args.status {
                Some(status) => format!("/v1/cases?status={}", encode(status)),
                None => "/v1/cases".to_string(),
            };
            let answer = get(&args.node.url, &path, args.node.token()?).await?;
            print(&answer, args.json, list_table)
        }
        CasesCommand::Assign(args) => {
            let body =
                json!({"add": args.add, "remove": args.remove, "reason": args.change.reason});
            change(&args.change, "assign", &body).await
        }
        CasesCommand::Extend(args) => {
            let body = json!({"ends": ends(&args.ends)?, "reason": args.change.reason});
            change(&args.change, "extend", &body).await
        }
        CasesCommand::Close(args) => {
            let body = json!({"reason": args.change.reason});
            change(&args.change, "close", &body).await
        }
    }
}

async fn change(args: &SearchArgs, what: &str, body: &Value) -> anyhow::Result<()> {
    let path = format!("/v1/cases/{}/{what}", encode(&args.case_id));
    let answer = post_json(&args.node.url, &path, args.node.token()?, body).await?;
    print(&answer, args.json, changed_table)
}

/// Run `camtrail holds ...`.
pub async fn holds(command: HoldsCommand) -> anyhow::Result<()> {
    match command {
        HoldsCommand::Place(args) => {
            let mut ids = args.event_ids.clone();
            if let Some(path) = &args.from_file {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                ids.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|line| !line.is_empty())
                        .map(String::from),
                );
            }
            anyhow::ensure!(
                !ids.is_empty(),
                "name event ids with --event or --from-file"
            );
            let change = &args.change;
            let body = json!({"case": change.case_id, "event_ids": ids, "reason": change.reason});
            let answer =
                post_json(&change.node.url, "/v1/holds", change.node.token()?, &body).await?;
            print(&answer, change.json, holds_table)
        }
        HoldsCommand::List(args) => {
            let path = match &args.case_id {
                Some(case) => format!("/v1/holds?case={}", encode(case)),
                None => "/v1/holds".to_string(),
            };
            let answer = get(&args.node.url, &path, args.node.token()?).await?;
            print(&answer, args.json, holds_table)
        }
    }
}
