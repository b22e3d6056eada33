//! Track latency benchmark client (benches/query.sh): for each plate in a file, one 30-day
//! track request at a time, either through the query node's HTTP API (`api` mode: auth,
//! ClickHouse read, reconstruction, audit to Kafka, JSON) or as the bare SQL the node issues,
//! sent to ClickHouse's HTTP interface (`sql` mode). Prints p50/p90/p99/max in ms as JSON.
//!
//! `track_bench api  URL TOKEN PLATES_FILE FROM_MS TO_MS` (`fuzzy`: the same with `fuzzy=true`)
//! `track_bench sql  CLICKHOUSE_URL DATABASE PLATES_FILE FROM_MS TO_MS`
//! `track_bench both URL TOKEN CLICKHOUSE_URL DATABASE PLATES_FILE FROM_MS TO_MS`
//! `track_bench all  URL TOKEN CLICKHOUSE_URL DATABASE PLATES_FILE FROM_MS TO_MS`
//!
//! `both` asks each plate both ways, one right after the other (rotating which goes first),
//! so the two distributions see the same moments of a busy machine (background merges, the
//! page cache); it prints one JSON line per mode. `all` adds a third way, `fuzzy`: the API
//! with misread tolerance on (the look-alike keys read by primary key and attributed).

use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use camtrail_query::client::encode;

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

/// One way of asking for a track.
enum Mode {
    Api {
        base: String,
        token: String,
        fuzzy: bool,
    },
    Sql {
        base: String,
        database: String,
    },
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Mode::Api { fuzzy: false, .. } => "api",
            Mode::Api { fuzzy: true, .. } => "fuzzy",
            Mode::Sql { .. } => "sql",
        }
    }

    fn request(
        &self,
        plate: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        Ok(match self {
            Mode::Api { base, token, fuzzy } => hyper::Request::get(format!(
                "{base}/v1/track?plate={}&from={from_ms}&to={to_ms}&fuzzy={fuzzy}&case=BENCH-1&reason=benchmark",
                encode(plate)
            ))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))?,
            Mode::Sql { base, database } => {
                hyper::Request::post(format!("{base}/?database={database}&log_queries=1"))
                    .body(Full::new(Bytes::from(bare_sql(plate, from_ms, to_ms))))?
            }
        })
    }
}

/// Latencies and body sizes of one mode.
#[derive(Default)]
struct Measured {
    latencies_us: Vec<u64>,
    body_bytes: usize,
}

impl Measured {
    fn json(&mut self, mode: &str) -> String {
        let latencies_us = &mut self.latencies_us;
        latencies_us.sort_unstable();
        let pct = |p: f64| {
            let index = ((latencies_us.len() as f64 - 1.0) * p).round() as usize;
            latencies_us.get(index).copied().unwrap_or(0) as f64 / 1000.0
        };
        format!(
            "{{\"mode\": \"{mode}\", \"requests\": {}, \"p50_ms\": {:.2}, \"p90_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \"mean_body_bytes\": {}}}",
            latencies_us.len(),
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(1.0),
            self.body_bytes / latencies_us.len().max(1)
        )
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: track_bench api|fuzzy|sql URL TOKEN|DATABASE PLATES_FILE FROM_MS TO_MS\n\
                 \x20      track_bench both|all URL TOKEN CLICKHOUSE_URL DATABASE PLATES_FILE FROM_MS TO_MS";
    let (modes, plates_file, from, to) = match args.as_slice() {
        [_, mode, base, auth, plates, from, to] => {
            let mode = match mode.as_str() {
                "api" | "fuzzy" => Mode::Api {
                    base: base.clone(),
                    token: auth.clone(),
                    fuzzy: mode == "fuzzy",
                },
                "sql" => Mode::Sql {
                    base: base.clone(),
                    database: auth.clone(),
                },
                _ => anyhow::bail!("{usage}"),
            };
            (vec![mode], plates, from, to)
        }
        [_, which, base, token, ch, database, plates, from, to]
            if which == "both" || which == "all" =>
        {
            let api = |fuzzy| Mode::Api {
                base: base.clone(),
                token: token.clone(),
                fuzzy,
            };
            let mut modes = vec![
                api(false),
                Mode::Sql {
                    base: ch.clone(),
                    database: database.clone(),
                },
            ];
            if which == "all" {
                modes.push(api(true));
            }
            (modes, plates, from, to)
        }
        _ => anyhow::bail!("{usage}"),
    };
    let (from_ms, to_ms): (i64, i64) = (from.parse()?, to.parse()?);
    let plates: Vec<String> = std::fs::read_to_string(plates_file)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut measured: Vec<Measured> = modes.iter().map(|_| Measured::default()).collect();
    for (n, plate) in plates.iter().enumerate() {
        for k in 0..modes.len() {
            // Alternate which mode goes first.
            let m = (k + n) % modes.len();
            let request = modes[m].request(plate, from_ms, to_ms)?;
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
            measured[m].body_bytes += body.len();
            measured[m].latencies_us.push(took.as_micros() as u64);
        }
    }
    for (mode, measured) in modes.iter().zip(&mut measured) {
        println!("{}", measured.json(mode.name()));
    }
    Ok(())
}
