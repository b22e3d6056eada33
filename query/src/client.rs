//! A client of the query node's HTTP API, for `camtrail track`, `camtrail passes` and the
//! demo: builds the request, sends it with the investigator's token, turns errors into their
//! code and message, and prints a track or a page of passes as a table.

use std::fmt::Write as _;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// What to ask for.
#[derive(Debug, Clone)]
pub struct TrackQueryArgs {
    /// Plate (may contain `?`/`*`).
    pub plate: String,
    /// Window start (unix ms or RFC 3339).
    pub from: String,
    /// Window end.
    pub to: String,
    /// Case id.
    pub case_id: String,
    /// Reason.
    pub reason: String,
    /// Fuzzy matching.
    pub fuzzy: bool,
}

/// Output format: the path suffix of `/v1/track`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackFormat {
    /// JSON (also what the table is printed from).
    Json,
    /// GeoJSON.
    GeoJson,
    /// PNG map.
    Png,
}

impl TrackFormat {
    /// The path of this format's endpoint.
    pub fn path(self) -> &'static str {
        match self {
            Self::Json => "/v1/track",
            Self::GeoJson => "/v1/track.geojson",
            Self::Png => "/v1/track.png",
        }
    }
}

/// The request failed: transport, or an error answer from the node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not talk to the node.
    #[error("cannot reach the query node at {url}: {message}")]
    Transport {
        /// Base URL.
        url: String,
        /// Cause.
        message: String,
    },
    /// The node answered with an error.
    #[error("query refused ({status}): {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Message.
        message: String,
    },
}

/// `value` percent-encoded for a query string (everything but unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The path and query of a track request.
pub fn track_path(args: &TrackQueryArgs, format: TrackFormat) -> String {
    format!(
        "{}?plate={}&from={}&to={}&case={}&reason={}&fuzzy={}",
        format.path(),
        encode(&args.plate),
        encode(&args.from),
        encode(&args.to),
        encode(&args.case_id),
        encode(&args.reason),
        args.fuzzy
    )
}

/// What to ask `/v1/passes` for: each optional parameter is sent only when set.
#[derive(Debug, Clone, Default)]
pub struct PassesQueryArgs {
    /// Camera ids, comma-separated (or set `district`).
    pub cameras: Option<String>,
    /// District.
    pub district: Option<String>,
    /// Window start (unix ms or RFC 3339).
    pub from: String,
    /// Window end.
    pub to: String,
    /// Case id.
    pub case_id: String,
    /// Reason.
    pub reason: String,
    /// `object_class`, `plate_color`, `vehicle_color`, `vehicle_type`, `vehicle_brand`,
    /// `direction`, `limit`, `after`, as `(parameter, value)`.
    pub filters: Vec<(&'static str, String)>,
}

/// The path and query of a passes request.
pub fn passes_path(args: &PassesQueryArgs) -> String {
    let mut path = format!(
        "/v1/passes?from={}&to={}&case={}&reason={}",
        encode(&args.from),
        encode(&args.to),
        encode(&args.case_id),
        encode(&args.reason)
    );
    let place = [("cameras", &args.cameras), ("district", &args.district)];
    for (name, value) in place
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_ref()?)))
        .chain(args.filters.iter().map(|(name, value)| (*name, value)))
    {
        let _ = write!(path, "&{name}={}", encode(value));
    }
    path
}

/// A passes answer (`/v1/passes` JSON) as a table for the terminal, with the cursor of the
/// next page when there is one.
pub fn passes_table(answer: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<19}  {:<20}  {:<14}  {:<10}  vehicle",
        "time", "camera", "district", "plate"
    );
    let passes = answer["passes"].as_array().cloned().unwrap_or_default();
    for pass in &passes {
        let _ = writeln!(
            out,
            "{:<19}  {:<20}  {:<14}  {:<10}  {}",
            pass["time"].as_str().unwrap_or("?"),
            pass["camera_id"].as_str().unwrap_or("?"),
            pass["district"].as_str().unwrap_or("?"),
            pass["plate"].as_str().unwrap_or("?"),
            vehicle_summary(pass),
        );
    }
    audit_line(&mut out, &format!("{} passes", passes.len()), answer);
    if let Some(next) = answer["next"].as_str() {
        let _ = writeln!(out, "more: --after {next}");
    }
    out
}

/// `GET base_url + path_and_query` with a bearer token; the body on 2xx.
pub async fn get(
    base_url: &str,
    path_and_query: &str,
    token: &str,
) -> Result<Vec<u8>, ClientError> {
    send(base_url, path_and_query, token, None).await
}

/// `POST base_url + path` with a JSON body and a bearer token; the body on 2xx.
pub async fn post_json(
    base_url: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> Result<Vec<u8>, ClientError> {
    post_bytes(base_url, path, token, body.to_string().into_bytes()).await
}

/// [`post_json`] with the body as bytes, sent as they are (`content-type: application/json`
/// whatever they hold).
pub async fn post_bytes(
    base_url: &str,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, ClientError> {
    send(base_url, path, token, Some(body)).await
}

async fn send(
    base_url: &str,
    path_and_query: &str,
    token: &str,
    json: Option<Vec<u8>>,
) -> Result<Vec<u8>, ClientError> {
    let transport = |message: String| ClientError::Transport {
        url: base_url.to_string(),
        message,
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("{}{path_and_query}", base_url.trim_end_matches('/'));
    let builder = match json {
        Some(_) => hyper::Request::post(url).header("content-type", "application/json"),
        None => hyper::Request::get(url),
    };
    let request = builder
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from(json.unwrap_or_default())))
        .map_err(|e| transport(e.to_string()))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| transport(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| transport(e.to_string()))?
        .to_bytes()
        .to_vec();
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Err(ClientError::Refused {
        status,
        code: error["error"]["code"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        message: error["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string(),
    })
}

/// The audit line under every table: how many, the zone, which record released it.
fn audit_line(out: &mut String, what: &str, answer: &Value) {
    let _ = writeln!(
        out,
        "{what} ({}); audit {} #{}",
        answer["time_zone"].as_str().unwrap_or("?"),
        answer["audit"]["node_id"].as_str().unwrap_or("?"),
        answer["audit"]["seq"],
    );
}

/// A scene answer (`/v1/scene` JSON) as a table: one line per vehicle, its sightings
/// there under it.
pub fn scene_table(answer: &Value) -> String {
    let mut out = String::new();
    let vehicles = answer["vehicles"].as_array().cloned().unwrap_or_default();
    for vehicle in &vehicles {
        let sightings = vehicle["sightings"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<12}  first {}  {} sighting(s)",
            vehicle["plate"].as_str().unwrap_or("?"),
            vehicle["first"].as_str().unwrap_or("?"),
            sightings.len(),
        );
        for s in &sightings {
            let _ = writeln!(
                out,
                "    {}  {:<20}  {}",
                s["time"].as_str().unwrap_or("?"),
                s["camera_id"].as_str().unwrap_or("?"),
                vehicle_summary(s),
            );
        }
    }
    audit_line(
        &mut out,
        &format!(
            "{} of {} vehicles at {} cameras, {} sightings without a plate",
            vehicles.len(),
            answer["total_vehicles"],
            answer["cameras"],
            answer["unkeyed_sightings"],
        ),
        answer,
    );
    if let Some(next) = answer["next"].as_str() {
        let _ = writeln!(out, "more: --after {next}");
    }
    out
}

/// A series answer (`/v1/series` JSON) as a table: hits in rank order with their evidence
/// per scene.
pub fn series_table(answer: &Value) -> String {
    let mut out = String::new();
    let hits = answer["hits"].as_array().cloned().unwrap_or_default();
    for (rank, hit) in hits.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3}. {:<12}  {} scenes ({} fuzzy), time offset {:.2}",
            rank + 1,
            hit["plate"].as_str().unwrap_or("?"),
            hit["scenes"],
            hit["fuzzy_links"],
            hit["time_offset"].as_f64().unwrap_or(f64::NAN),
        );
        for evidence in hit["evidence"].as_array().into_iter().flatten() {
            let first = &evidence["sightings"][0];
            let _ = writeln!(
                out,
                "       scene {}: {} {}  {}  {}",
                evidence["scene"].as_u64().map_or(0, |i| i + 1),
                evidence["key"].as_str().unwrap_or("?"),
                evidence["link"].as_str().unwrap_or("?"),
                first["time"].as_str().unwrap_or("?"),
                first["camera_id"].as_str().unwrap_or("?"),
            );
        }
    }
    audit_line(
        &mut out,
        &format!(
            "{} of {} vehicles seen at >= {} scenes",
            hits.len(),
            answer["total_hits"],
            answer["min_scenes"]
        ),
        answer,
    );
    out
}

/// A co-travel answer (`/v1/cotravel` JSON) as a table: companions in rank order with the
/// shared sightings.
pub fn cotravel_table(answer: &Value) -> String {
    let mut out = String::new();
    let companions = answer["companions"].as_array().cloned().unwrap_or_default();
    for (rank, companion) in companions.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3}. {:<12}  {} shared cameras over {:.0} min, mean |dt| {:.0} s",
            rank + 1,
            companion["plate"].as_str().unwrap_or("?"),
            companion["shared_cameras"],
            companion["span_ms"].as_f64().unwrap_or(f64::NAN) / 60_000.0,
            companion["mean_abs_dt_ms"].as_f64().unwrap_or(f64::NAN) / 1_000.0,
        );
        for evidence in companion["evidence"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "       {}  {:<20}  {:+.0} s",
                evidence["target"]["time"].as_str().unwrap_or("?"),
                evidence["camera_id"].as_str().unwrap_or("?"),
                evidence["dt_ms"].as_f64().unwrap_or(f64::NAN) / 1_000.0,
            );
        }
    }
    let together = match answer["together"].as_bool() {
        Some(true) => ", together: yes",
        Some(false) => ", together: no",
        None => "",
    };
    audit_line(
        &mut out,
        &format!(
            "{} of {} companions of {} ({} sightings; >= {} cameras within {} s){together}",
            companions.len(),
            answer["total_companions"],
            answer["target"].as_str().unwrap_or("?"),
            answer["target_sightings"],
            answer["min_cameras"],
            answer["delta_ms"].as_i64().unwrap_or(0) / 1_000,
        ),
        answer,
    );
    out
}

/// A track answer (`/v1/track` JSON) as a table for the terminal.
pub fn track_table(answer: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "track {}, searched {} → {} ({})",
        answer["asked"].as_str().unwrap_or("?"),
        answer["from"].as_str().unwrap_or("?"),
        answer["to"].as_str().unwrap_or("?"),
        answer["time_zone"].as_str().unwrap_or("?"),
    );
    let sightings = answer["sightings"].as_array().cloned().unwrap_or_default();
    if let (Some(first), Some(last)) = (sightings.first(), sightings.last()) {
        let _ = writeln!(
            out,
            "seen {} → {}",
            first["time"].as_str().unwrap_or("?"),
            last["time"].as_str().unwrap_or("?"),
        );
    }
    if answer["second_vehicle"].is_object() {
        let _ = writeln!(
            out,
            "CLONED PLATE: two vehicles drove with it at the same time; vehicle 1:"
        );
    }
    vehicle_rows(&mut out, answer, "");
    if let Some(second) = answer["second_vehicle"].as_object() {
        let _ = writeln!(out, "vehicle 2 (same plate, elsewhere at the same time):");
        vehicle_rows(&mut out, &Value::Object(second.clone()), "B");
    }
    let dropped = answer["dropped"].as_array().cloned().unwrap_or_default();
    let attributed: Vec<&Value> = dropped
        .iter()
        .filter(|d| d["reason"] == "attributed_to_look_alike")
        .collect();
    if !attributed.is_empty() {
        let _ = writeln!(
            out,
            "left out, attributed to a look-alike vehicle (probably misread):"
        );
        for d in attributed {
            let _ = writeln!(
                out,
                "      {:<19}  {:<20}  → {}",
                d["time"].as_str().unwrap_or("?"),
                d["camera_id"].as_str().unwrap_or("?"),
                d["attributed_to"].as_str().unwrap_or("?"),
            );
        }
    }
    let _ = writeln!(
        out,
        "{} dropped in all (duplicates, bursts, misreads that do not fit, look-alikes); audit {} #{}",
        dropped.len(),
        answer["audit"]["node_id"].as_str().unwrap_or("?"),
        answer["audit"]["seq"],
    );
    out
}

/// `text` padded with spaces to `width` terminal columns (a CJK character takes two), so
/// columns of plates and names line up; longer text is left as it is.
fn pad(text: &str, width: usize) -> String {
    let used = unicode_width::UnicodeWidthStr::width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(used)))
}

/// The sightings table and summary line of one vehicle of a track answer; sighting numbers
/// get `prefix` (B for a cloned plate's second vehicle).
fn vehicle_rows(out: &mut String, vehicle: &Value, prefix: &str) {
    let sightings = vehicle["sightings"].as_array().cloned().unwrap_or_default();
    // The vehicle column as wide as its widest entry, so the flags after it line up.
    let summaries: Vec<String> = sightings.iter().map(vehicle_summary).collect();
    let vehicle_width = summaries
        .iter()
        .map(|s| unicode_width::UnicodeWidthStr::width(s.as_str()))
        .max()
        .unwrap_or(0)
        .max(7);
    let _ = writeln!(
        out,
        "{:>4}  {:<19}  {:<20}  {}  {}  {:<6}  {:>5}  {}  flags",
        "#",
        "time",
        "camera",
        pad("district", 14),
        pad("plate", 10),
        "match",
        "conf",
        pad("vehicle", vehicle_width)
    );
    let links = vehicle["links"].as_array().cloned().unwrap_or_default();
    for (index, sighting) in sightings.iter().enumerate() {
        let mut flags = Vec::new();
        if let Some(count) = sighting["burst_count"].as_u64()
            && count > 1
        {
            flags.push(format!("burst×{count}"));
        }
        if index > 0
            && links
                .get(index - 1)
                .and_then(|l| l["impossible"].as_bool())
                .unwrap_or(false)
        {
            flags.push("IMPOSSIBLE HOP".into());
        }
        if index > 0 && sightings[index - 1]["district"] != sighting["district"] {
            flags.push(format!(
                "→ {}",
                sighting["district"].as_str().unwrap_or("?")
            ));
        }
        let _ = writeln!(
            out,
            "{:>4}  {:<19}  {:<20}  {}  {}  {:<6}  {:>5.2}  {}  {}",
            format!("{prefix}{}", sighting["n"]),
            sighting["time"].as_str().unwrap_or("?"),
            sighting["camera_id"].as_str().unwrap_or("?"),
            pad(sighting["district"].as_str().unwrap_or("?"), 14),
            // As the plate was asked for: without the display separator.
            pad(
                &sighting["plate"].as_str().unwrap_or("?").replace('·', ""),
                10
            ),
            sighting["match_kind"].as_str().unwrap_or("?"),
            sighting["match_confidence"].as_f64().unwrap_or(0.0),
            pad(&summaries[index], vehicle_width),
            flags.join(", ")
        );
    }
    let stops = vehicle["stops"].as_array().cloned().unwrap_or_default();
    for stop in &stops {
        let _ = writeln!(
            out,
            "      stop {} -> {}: {:.0} min between #{} and #{} ({:.1} km apart)",
            stop["from"].as_str().unwrap_or("?"),
            stop["to"].as_str().unwrap_or("?"),
            stop["duration_ms"].as_f64().unwrap_or(f64::NAN) / 60_000.0,
            stop["before_n"],
            stop["after_n"],
            stop["moved_km"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let transitions = vehicle["transitions"].as_array().map_or(0, Vec::len);
    let trips = vehicle["trips"].as_array().map_or(0, Vec::len);
    let _ = writeln!(
        out,
        "{} sightings, {} trips, {} stops, {} district changes, {} impossible hops",
        sightings.len(),
        trips,
        stops.len(),
        transitions,
        vehicle["impossible_hops"],
    );
}

/// A sighting's vehicle attributes in a few words ("blue suv, green plate, east 48 km/h,
/// 大众"); what is unknown is left out, "-" when nothing is known.
pub fn vehicle_summary(sighting: &Value) -> String {
    let text = |field: &str| sighting[field].as_str().map(|s| s.replace('_', " "));
    let body = [text("vehicle_color"), text("vehicle_type")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let motion = [
        text("direction"),
        sighting["speed_kmh"]
            .as_f64()
            .map(|speed| format!("{speed:.0} km/h")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let parts: Vec<String> = [
        Some(body),
        text("plate_color").map(|color| format!("{color} plate")),
        Some(motion),
        text("vehicle_brand"),
    ]
    .into_iter()
    .flatten()
    .filter(|part| !part.is_empty())
    .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_paths_escape_everything_outside_the_safe_set() {
        let args = TrackQueryArgs {
            plate: "粤S 1?3*".into(),
            from: "2025-11-26T08:00:00+08:00".into(),
            to: "1764158400000".into(),
            case_id: "C-1".into(),
            reason: "a&b=c".into(),
            fuzzy: true,
        };
        let path = track_path(&args, TrackFormat::Png);
        assert!(
            path.starts_with("/v1/track.png?plate=%E7%B2%A4S%201%3F3%2A&"),
            "{path}"
        );
        assert!(path.contains("reason=a%26b%3Dc"), "{path}");
        assert!(
            path.contains("from=2025-11-26T08%3A00%3A00%2B08%3A00"),
            "{path}"
        );
        assert!(path.ends_with("fuzzy=true"));
    }

    #[test]
    fn the_table_shows_both_vehicles_of_a_cloned_plate_and_what_went_to_look_alikes() {
        let sighting = |n: u32, camera: &str| {
            serde_json::json!({
                "n": n, "time": "2026-01-01 08:00:00", "camera_id": camera,
                "district": "Futian", "plate": "粤B12310", "match_kind": "exact",
                "match_confidence": 1.0, "burst_count": 1,
            })
        };
        let answer = serde_json::json!({
            "asked": "粤B12310", "from": "a", "to": "b", "time_zone": "Asia/Shanghai",
            "sightings": [sighting(1, "cam-a1"), sighting(2, "cam-a2")],
            "links": [], "trips": [{}], "transitions": [], "impossible_hops": 0,
            "second_vehicle": {
                "sightings": [sighting(1, "cam-b1")],
                "links": [], "trips": [{}], "transitions": [], "impossible_hops": 0,
            },
            "dropped": [
                {"reason": "attributed_to_look_alike", "attributed_to": "粤B12370",
                 "time": "2026-01-01 08:05:00", "camera_id": "cam-x"},
                {"reason": "duplicate", "time": "2026-01-01 08:00:00", "camera_id": "cam-a1"},
            ],
            "audit": {"node_id": "query/1", "seq": 7},
        });
        let table = track_table(&answer);
        assert!(table.contains("CLONED PLATE"), "{table}");
        assert!(
            table.contains("  B1  ") && table.contains("cam-b1"),
            "{table}"
        );
        assert!(
            table.contains("cam-x") && table.contains("→ 粤B12370"),
            "{table}"
        );
        assert!(table.contains("2 dropped in all"), "{table}");
        assert!(table.contains("audit query/1 #7"), "{table}");
    }

    #[test]
    fn columns_line_up_with_wide_characters_and_the_plate_is_spelled_as_asked() {
        let answer = serde_json::json!({
            "asked": "粤B12310", "from": "2026-01-01 07:00:00", "to": "2026-01-01 09:00:00",
            "time_zone": "Asia/Shanghai",
            "sightings": [
                {"n": 1, "time": "2026-01-01 08:00:00", "camera_id": "cam-a1",
                 "district": "福田区", "plate": "粤B·12310", "match_kind": "exact",
                 "match_confidence": 1.0},
                {"n": 12, "time": "2026-01-01 08:10:00", "camera_id": "cam-a2",
                 "district": "Futian", "plate": "粤B·12310", "match_kind": "exact",
                 "match_confidence": 1.0},
            ],
            "links": [], "trips": [], "transitions": [], "impossible_hops": 0,
            "dropped": [], "audit": {"node_id": "q", "seq": 1},
        });
        let table = track_table(&answer);
        assert!(
            table.contains("seen 2026-01-01 08:00:00 → 2026-01-01 08:10:00"),
            "{table}"
        );
        assert!(!table.contains('·'), "one spelling of the plate:\n{table}");
        // The match column starts at the same terminal column on every row.
        let column = |line: &str| {
            let at = line
                .find("exact")
                .or_else(|| line.find("match"))
                .expect("column");
            unicode_width::UnicodeWidthStr::width(&line[..at])
        };
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.contains("exact") || l.contains("match"))
            .collect();
        assert_eq!(rows.len(), 3, "{table}");
        assert!(rows.iter().all(|r| column(r) == column(rows[0])), "{table}");
    }

    #[test]
    fn passes_paths_send_only_the_filters_given_and_tables_show_the_vehicle() {
        let args = PassesQueryArgs {
            cameras: Some("a,b".into()),
            from: "1".into(),
            to: "2".into(),
            case_id: "C-1".into(),
            reason: "r".into(),
            filters: vec![
                ("plate_color", "yellow_green".into()),
                ("vehicle_brand", "大众".into()),
            ],
            ..PassesQueryArgs::default()
        };
        assert_eq!(
            passes_path(&args),
            "/v1/passes?from=1&to=2&case=C-1&reason=r&cameras=a%2Cb&plate_color=yellow_green\
             &vehicle_brand=%E5%A4%A7%E4%BC%97"
        );
        let answer = serde_json::json!({
            "passes": [{"time": "t", "camera_id": "c", "district": "d", "plate": "p",
                        "plate_color": "blue", "direction": "east"}],
            "next": "5:ab", "time_zone": "UTC", "audit": {"node_id": "q", "seq": 3},
        });
        let table = passes_table(&answer);
        assert!(table.contains("blue plate, east"), "{table}");
        assert!(table.contains("more: --after 5:ab"), "{table}");
    }

    #[test]
    fn vehicles_are_summed_up_in_a_few_words() {
        let full = serde_json::json!({
            "vehicle_color": "blue", "vehicle_type": "suv", "plate_color": "yellow_green",
            "direction": "east", "speed_kmh": 48.5, "vehicle_brand": "大众",
        });
        assert_eq!(
            vehicle_summary(&full),
            "blue suv, yellow green plate, east 48 km/h, 大众"
        );
        let some =
            serde_json::json!({"vehicle_color": null, "vehicle_type": "car", "plate_color": null});
        assert_eq!(vehicle_summary(&some), "car");
        assert_eq!(vehicle_summary(&serde_json::json!({})), "-");
    }
}
