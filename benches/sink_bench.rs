//! Data for the sink benchmark (benches/sink.sh). The same `n`-th record everywhere:
//!
//! - `fill BROKERS TOPIC EVENTS`: produce EVENTS records to TOPIC exactly as the ingest node
//!   writes them (its producer, its record encoding), so the sink reads what it would in
//!   production;
//! - `fill-json BROKERS TOPIC EVENTS`: the same rows as one JSONEachRow object per record
//!   (`event_id` in hex), for a ClickHouse Kafka engine table on a server that cannot read
//!   our protobuf records (18.16 has no Protobuf format);
//! - `rowbinary EVENTS FILE`: write the same rows as `detections` RowBinary to FILE, in the
//!   column order of [`ROWBINARY_COLUMNS`], for `clickhouse-client ... FORMAT RowBinary`.
//!
//! `cargo run --release --example sink_bench -- fill 127.0.0.1:9092 t 10000000`

use std::io::Write;
use std::time::Instant;

use camtrail_clickhouse::rows::DetectionRow;
use camtrail_kafka::ProducerConfig;
use common::detection;

mod common;

/// Column list for the INSERT that reads the RowBinary file (the sink's column order).
const ROWBINARY_COLUMNS: &str = "subject_key, captured_at_ms, event_id, camera_id, \
    object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, \
    bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms, plate_color, \
    vehicle_brand, direction, speed_kmh, plate_char_confidence";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, cmd, brokers, topic, events] if cmd == "fill" => {
            common::publish_all(brokers, topic, events.parse()?, true).await
        }
        [_, cmd, brokers, topic, events] if cmd == "fill-json" => {
            fill_json(brokers, topic, events.parse()?).await
        }
        [_, cmd, events, file] if cmd == "rowbinary" => rowbinary(events.parse()?, file),
        [_, cmd] if cmd == "columns" => {
            println!("{ROWBINARY_COLUMNS}");
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: sink_bench fill|fill-json BROKERS TOPIC EVENTS | rowbinary EVENTS FILE | columns"
        ),
    }
}

/// One `detections` row as a JSON object, `event_id` hex-encoded.
fn json_row(row: &DetectionRow) -> serde_json::Value {
    serde_json::json!({
        "subject_key": row.subject_key,
        "captured_at_ms": row.captured_at_ms,
        "event_id_hex": hex::encode(row.event_id),
        "camera_id": row.camera_id,
        "object_class": row.object_class,
        "plate": row.plate,
        "plate_confidence": row.plate_confidence,
        "vehicle_color": row.vehicle_color,
        "vehicle_type": row.vehicle_type,
        "bbox_x": row.bbox_x,
        "bbox_y": row.bbox_y,
        "bbox_width": row.bbox_width,
        "bbox_height": row.bbox_height,
        "has_snapshot": row.has_snapshot,
        "gateway_id": row.gateway_id,
        "received_at_ms": row.received_at_ms,
    })
}

async fn fill_json(brokers: &str, topic: &str, total: u64) -> anyhow::Result<()> {
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let settings = ProducerConfig::default();
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", settings.linger_ms.to_string())
        .set("batch.size", settings.batch_bytes.to_string())
        .set("compression.type", &settings.compression)
        .set(
            "queue.buffering.max.messages",
            settings.queue_max_messages.to_string(),
        )
        .create()?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(50_000);
    for n in 0..total {
        let detection = detection(n);
        let key = detection.camera_id.clone();
        let (row, _) = DetectionRow::from_detection(detection);
        let value = serde_json::to_vec(&json_row(&row))?;
        let delivery = producer
            .send_result(FutureRecord::to(topic).key(&key).payload(&value))
            .map_err(|(error, _)| error)?;
        pending.push(delivery);
        if pending.len() == 50_000 {
            for delivery in pending.drain(..) {
                delivery.await?.map_err(|(error, _)| error)?;
            }
        }
        if n > 0 && n % 1_000_000 == 0 {
            eprintln!("fill-json: {n} records produced");
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(error, _)| error)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"events\": {total}, \"seconds\": {seconds:.3}, \"events_per_second\": {:.0}}}",
        total as f64 / seconds
    );
    Ok(())
}

fn rowbinary(total: u64, file: &str) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(file)?);
    for n in 0..total {
        let (row, _) = DetectionRow::from_detection(detection(n));
        write_row(&mut out, &row)?;
    }
    out.flush()?;
    Ok(())
}

/// RowBinary: strings as LEB128 length + bytes, numbers little-endian, FixedString raw.
fn write_row(out: &mut impl Write, row: &DetectionRow) -> std::io::Result<()> {
    fn string(out: &mut impl Write, s: &str) -> std::io::Result<()> {
        bytes(out, s.as_bytes())
    }
    // `String` and `Array(UInt8)` look the same: LEB128 length, then the bytes.
    fn bytes(out: &mut impl Write, s: &[u8]) -> std::io::Result<()> {
        let mut len = s.len();
        loop {
            let byte = (len & 0x7F) as u8;
            len >>= 7;
            if len == 0 {
                out.write_all(&[byte])?;
                break;
            }
            out.write_all(&[byte | 0x80])?;
        }
        out.write_all(s)
    }
    string(out, &row.subject_key)?;
    out.write_all(&row.captured_at_ms.to_le_bytes())?;
    out.write_all(&row.event_id)?;
    string(out, &row.camera_id)?;
    out.write_all(&[row.object_class])?;
    string(out, &row.plate)?;
    out.write_all(&row.plate_confidence.to_le_bytes())?;
    out.write_all(&[row.vehicle_color, row.vehicle_type])?;
    for value in [row.bbox_x, row.bbox_y, row.bbox_width, row.bbox_height] {
        out.write_all(&value.to_le_bytes())?;
    }
    out.write_all(&[row.has_snapshot])?;
    string(out, &row.gateway_id)?;
    out.write_all(&row.received_at_ms.to_le_bytes())?;
    out.write_all(&[row.plate_color])?;
    string(out, &row.vehicle_brand)?;
    out.write_all(&[row.direction])?;
    out.write_all(&row.speed_kmh.to_le_bytes())?;
    bytes(out, &row.plate_char_confidence)
}
