//! Track latency benchmark client (benches/query.sh): for each plate in a file, one 30-day
//! track request at a time, either through the query node's HTTP API (`api` mode: auth,
//! ClickHouse read, reconstruction, audit to Kafka, JSON) or as the bare SQL the node issues,
//! sent to ClickHouse's HTTP interface (`sql` mode). Prints p50/p90/p99/max in ms as JSON.
//!
//! `track_bench api  URL TOKEN PLATES_FILE FROM_MS TO_MS`
//! `track_bench sql  CLICKHOUSE_URL DATABASE PLATES_FILE FROM_MS TO_MS`

use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The read the query node makes for an exact track (clickhouse/src/reader.rs).
fn bare_sql(plate: &str, from_ms: i64, to_ms: i64) -> String {
    let day = camtrail_clickhouse::utc_day;
    format!(
        "SELECT event_id, camera_id, captured_at_ms, subject_key, plate, plate_confidence, \
         object_class, has_snapshot FROM detections WHERE subject_key IN ('{plate}') \
         AND captured_at_ms >= {from_ms} AND captured_at_ms < {to_ms} \
         AND day >= toDate('{}') AND day <= toDate('{}') \
         ORDER BY captured_at_ms, event_id LIMIT 1 BY event_id LIMIT 100000 FORMAT RowBinary",
        day(from_ms),
        day(to_ms)
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, base, auth, plates_file, from, to] = args.as_slice() else {
        anyhow::bail!("usage: track_bench api|sql URL TOKEN|DATABASE PLATES_FILE FROM_MS TO_MS");
    };
    let (from_ms, to_ms): (i64, i64) = (from.parse()?, to.parse()?);
    let plates: Vec<String> = std::fs::read_to_string(plates_file)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut latencies_us = Vec::with_capacity(plates.len());
    let mut rows_or_bytes = 0usize;
    for plate in &plates {
        let request = match mode.as_str() {
            "api" => hyper::Request::get(format!(
                "{base}/v1/track?plate={}&from={from_ms}&to={to_ms}&case=BENCH-1&reason=benchmark",
                encode(plate)
            ))
            .header("authorization", format!("Bearer {auth}"))
            .body(Full::new(Bytes::new()))?,
            "sql" => hyper::Request::post(format!("{base}/?database={auth}&log_queries=1"))
                .body(Full::new(Bytes::from(bare_sql(plate, from_ms, to_ms))))?,
            other => anyhow::bail!("unknown mode {other}"),
        };
        let started = Instant::now();
        let response = client.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let took = started.elapsed();
        anyhow::ensure!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        rows_or_bytes += body.len();
        latencies_us.push(took.as_micros() as u64);
    }
    latencies_us.sort_unstable();
    let pct = |p: f64| {
        let index = ((latencies_us.len() as f64 - 1.0) * p).round() as usize;
        latencies_us[index] as f64 / 1000.0
    };
    println!(
        "{{\"mode\": \"{mode}\", \"requests\": {}, \"p50_ms\": {:.2}, \"p90_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \"mean_body_bytes\": {}}}",
        latencies_us.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        rows_or_bytes / latencies_us.len().max(1)
    );
    Ok(())
}
