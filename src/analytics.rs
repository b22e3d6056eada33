//! `camtrail scene`, `camtrail series`, `camtrail cotravel`: the broad searches from the
//! terminal, over a query node's HTTP API (POST /v1/scene, /v1/series, /v1/cotravel).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use camtrail_query::client::{cotravel_table, post_json, scene_table, series_table};
use serde_json::{Value, json};

/// Who asks, why, and where the node is: every search needs them.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Case id (required; audited).
    #[arg(long = "case")]
    pub case_id: String,
    /// Reason (required; audited).
    #[arg(long)]
    pub reason: String,
    /// Print the JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The query node to ask.
    #[command(flatten)]
    pub node: crate::query::NodeArgs,
}

/// Which detections count: each one given must match (names as in the answers).
#[derive(Debug, clap::Args)]
pub struct FilterArgs {
    /// Only this class: vehicle, person, non_motor.
    #[arg(long)]
    pub object_class: Option<String>,
    /// Only this plate colour: blue, yellow, white, black, green, yellow_green, other.
    #[arg(long)]
    pub plate_color: Option<String>,
    /// Only this body colour: white, black, silver, grey, red, blue, yellow, green, brown,
    /// other.
    #[arg(long)]
    pub vehicle_color: Option<String>,
    /// Only this body type: car, suv, van, bus, truck, motorcycle, other.
    #[arg(long)]
    pub vehicle_type: Option<String>,
    /// Only this brand (exactly as stored).
    #[arg(long)]
    pub vehicle_brand: Option<String>,
    /// Only this direction of travel: north, northeast, east, ... northwest.
    #[arg(long)]
    pub direction: Option<String>,
}

impl FilterArgs {
    /// The filters given, as API parameter names and values.
    pub fn given(&self) -> Vec<(&'static str, String)> {
        [
            ("object_class", &self.object_class),
            ("plate_color", &self.plate_color),
            ("vehicle_color", &self.vehicle_color),
            ("vehicle_type", &self.vehicle_type),
            ("vehicle_brand", &self.vehicle_brand),
            ("direction", &self.direction),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.clone()?)))
        .collect()
    }

    fn insert_into(&self, body: &mut Value) {
        for (name, value) in self.given() {
            body[name] = json!(value);
        }
    }
}

/// Options of `camtrail scene`.
#[derive(Debug, clap::Args)]
pub struct SceneArgs {
    /// A circle: `LON,LAT,RADIUS_M` (e.g. 114.05,22.54,800).
    #[arg(long, conflicts_with_all = ["polygon", "cameras"], required_unless_present_any = ["polygon", "cameras"])]
    pub circle: Option<String>,
    /// A simple polygon: `LON,LAT;LON,LAT;LON,LAT[;...]`.
    #[arg(long, conflicts_with = "cameras")]
    pub polygon: Option<String>,
    /// Camera ids, comma-separated.
    #[arg(long)]
    pub cameras: Option<String>,
    /// Window start: RFC 3339 (2025-11-26T08:00:00+08:00) or unix ms.
    #[arg(long)]
    pub from: String,
    /// Window end (exclusive).
    #[arg(long)]
    pub to: String,
    /// Vehicles per page (1-1,000; default 100).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue after this cursor (printed under a full page).
    #[arg(long)]
    pub after: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub search: SearchArgs,
}

/// Options of `camtrail series`.
#[derive(Debug, clap::Args)]
pub struct SeriesArgs {
    /// A scene as a circle and a window: `LON,LAT,RADIUS_M,FROM,TO` (times RFC 3339 or unix
    /// ms). Give 2-6.
    #[arg(long = "scene", required_unless_present = "scenes_file")]
    pub scenes: Vec<String>,
    /// The scenes as a JSON array of `{"area": {...}, "from": ..., "to": ...}` (polygons,
    /// camera lists), instead of --scene.
    #[arg(long, conflicts_with = "scenes")]
    pub scenes_file: Option<PathBuf>,
    /// Seen at at least this many scenes (default: all).
    #[arg(long)]
    pub min_scenes: Option<u32>,
    /// Link plausible misreadings of a plate across scenes.
    #[arg(long)]
    pub fuzzy: bool,
    /// Most vehicles (1-1,000; default 100).
    #[arg(long)]
    pub limit: Option<u32>,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub search: SearchArgs,
}

/// Options of `camtrail cotravel`.
#[derive(Debug, clap::Args)]
pub struct CoTravelArgs {
    /// The target's plate.
    #[arg(long)]
    pub plate: String,
    /// Only ask whether this plate travelled with the target.
    #[arg(long)]
    pub with: Option<String>,
    /// Window start: RFC 3339 or unix ms.
    #[arg(long)]
    pub from: String,
    /// Window end (exclusive).
    #[arg(long)]
    pub to: String,
    /// Distinct shared cameras needed (default 4).
    #[arg(long)]
    pub min_cameras: Option<u32>,
    /// Largest time difference at a shared camera, seconds (default 60).
    #[arg(long)]
    pub delta_s: Option<f64>,
    /// Shortest time together, first to last shared sighting, minutes (default 10; 0 counts
    /// any stretch).
    #[arg(long)]
    pub min_span_minutes: Option<f64>,
    /// Most companions (1-1,000; default 100).
    #[arg(long)]
    pub limit: Option<u32>,
    #[command(flatten)]
    pub search: SearchArgs,
}

/// A time as the API takes it: unix ms as a number, anything else as text.
fn time(text: &str) -> Value {
    text.trim()
        .parse::<i64>()
        .map_or_else(|_| json!(text.trim()), |ms| json!(ms))
}

fn numbers(text: &str, what: &str, count: usize) -> anyhow::Result<Vec<f64>> {
    let values = text
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<Vec<f64>, _>>()
        .with_context(|| format!("{what}: numbers separated by commas"))?;
    anyhow::ensure!(values.len() == count, "{what}: {count} numbers expected");
    Ok(values)
}

fn circle(text: &str) -> anyhow::Result<Value> {
    let v = numbers(text, "--circle LON,LAT,RADIUS_M", 3)?;
    Ok(json!({"kind": "circle", "lon": v[0], "lat": v[1], "radius_m": v[2]}))
}

fn area(args: &SceneArgs) -> anyhow::Result<Value> {
    if let Some(text) = &args.circle {
        return circle(text);
    }
    if let Some(text) = &args.polygon {
        let ring = text
            .split(';')
            .map(|point| numbers(point, "--polygon LON,LAT;LON,LAT;...", 2))
            .collect::<anyhow::Result<Vec<Vec<f64>>>>()?;
        return Ok(json!({"kind": "polygon", "ring": ring}));
    }
    let ids: Vec<&str> = args
        .cameras
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    Ok(json!({"kind": "cameras", "ids": ids}))
}

fn purpose(search: &SearchArgs) -> Value {
    json!({"case": search.case_id, "reason": search.reason})
}

async fn ask(
    search: &SearchArgs,
    path: &str,
    body: &Value,
    table: fn(&Value) -> String,
) -> anyhow::Result<()> {
    let answer = post_json(&search.node.url, path, search.node.token()?, body).await?;
    let output = if search.json {
        answer
    } else {
        let answer: Value =
            serde_json::from_slice(&answer).context("the node's answer is not JSON")?;
        table(&answer).into_bytes()
    };
    std::io::stdout().write_all(&output)?;
    Ok(())
}

/// Ask a query node who passed one scene and print one page.
pub async fn scene(args: SceneArgs) -> anyhow::Result<()> {
    let mut body = purpose(&args.search);
    body["area"] = area(&args)?;
    body["from"] = time(&args.from);
    body["to"] = time(&args.to);
    if let Some(limit) = args.limit {
        body["limit"] = json!(limit);
    }
    if let Some(after) = &args.after {
        body["after"] = json!(after);
    }
    args.filter.insert_into(&mut body);
    ask(&args.search, "/v1/scene", &body, scene_table).await
}

/// Ask a query node which vehicles were seen at several scenes.
pub async fn series(args: SeriesArgs) -> anyhow::Result<()> {
    let scenes: Value = match &args.scenes_file {
        Some(path) => serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{}: a JSON array of scenes", path.display()))?,
        None => Value::Array(
            args.scenes
                .iter()
                .map(|text| {
                    let parts: Vec<&str> = text.splitn(5, ',').collect();
                    anyhow::ensure!(
                        parts.len() == 5,
                        "--scene LON,LAT,RADIUS_M,FROM,TO (got {text:?})"
                    );
                    Ok(json!({
                        "area": circle(&parts[..3].join(","))?,
                        "from": time(parts[3]),
                        "to": time(parts[4]),
                    }))
                })
                .collect::<anyhow::Result<Vec<Value>>>()?,
        ),
    };
    let mut body = purpose(&args.search);
    body["scenes"] = scenes;
    body["fuzzy"] = json!(args.fuzzy);
    if let Some(min) = args.min_scenes {
        body["min_scenes"] = json!(min);
    }
    if let Some(limit) = args.limit {
        body["limit"] = json!(limit);
    }
    args.filter.insert_into(&mut body);
    ask(&args.search, "/v1/series", &body, series_table).await
}

/// Ask a query node which vehicles travelled with a plate (or whether one did).
pub async fn cotravel(args: CoTravelArgs) -> anyhow::Result<()> {
    let mut body = purpose(&args.search);
    body["target"] = json!(args.plate);
    body["from"] = time(&args.from);
    body["to"] = time(&args.to);
    if let Some(other) = &args.with {
        body["other"] = json!(other);
    }
    if let Some(min) = args.min_cameras {
        body["min_cameras"] = json!(min);
    }
    if let Some(delta) = args.delta_s {
        body["delta_s"] = json!(delta);
    }
    if let Some(span) = args.min_span_minutes {
        body["min_span_minutes"] = json!(span);
    }
    if let Some(limit) = args.limit {
        body["limit"] = json!(limit);
    }
    ask(&args.search, "/v1/cotravel", &body, cotravel_table).await
}
