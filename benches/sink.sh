#!/usr/bin/env bash
# Sink benchmark (issue 5): rows/s from a pre-filled topic into ClickHouse on this machine,
#   (a) by `camtrail sink` (fresh consumer group, from the first record to the last row
#       inserted and committed; process start, group join and first fetch included),
#   (b) by `clickhouse-client` inserting the same rows as RowBinary from a file,
#   (c) by ClickHouse's own Kafka table engine + a materialized view: first on the same
#       topic (our protobuf records), then, because 18.16 cannot read those, on a companion
#       topic holding the same rows as JSONEachRow, one row per record,
# plus a/b, a/c, bytes on disk per stored event, and the sink's peak RSS. Appends the
# figures to BENCHMARKS.md. Materialized views (detections_by_hour, subject_keys_daily)
# run in every case: the same schema, migrated by `camtrail migrate`. (18.16 needs the
# Kafka-engine view to compute detections' MATERIALIZED `day` column itself: without it,
# "Code: 10 Expected column day: while pushing to view".)
#
# CPU seconds per million rows of ClickHouse, the sink and Kafka are counted over (a) and
# (b), first to the last row inserted, then to the end of the merges the insert started
# ("settled"): (b)'s merges run after its clock stops, (a)'s while it inserts.
#
#   benches/sink.sh            # EVENTS=10000000 PARTITIONS=12 KAFKA_ENGINE_TIMEOUT=900
#   SKIP_C=1 benches/sink.sh   # without (c), the Kafka-engine comparison
#   PROFILE=1 benches/sink.sh  # also `perf record` the sink during (a): benches/profiles/sink.svg
#   BENCH_MD=/tmp/runs.md benches/sink.sh   # figures elsewhere than BENCHMARKS.md
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/common/profile.sh
. benches/common/profile.sh
EVENTS="${EVENTS:-10000000}"
PARTITIONS="${PARTITIONS:-12}"
KAFKA_ENGINE_TIMEOUT="${KAFKA_ENGINE_TIMEOUT:-900}"
OUT="${OUT:-target/bench-sink}"
BROKERS=127.0.0.1:9092
BIN=target/release/camtrail
DATA=target/release/examples/sink_bench
CH="clickhouse-client --host 127.0.0.1 --port 9000"

log() { printf '[sink-bench] %s\n' "$*" >&2; }
now() { date +%s.%N; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# cpu_s PID: user+system CPU seconds the process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# settle DB: wait (at most 600 s) until no merge runs in DB.
settle() {
    for _ in $(seq 1200); do
        [ "$($CH -q "SELECT count() FROM system.merges WHERE database = '$1'")" = 0 ] && return
        sleep 0.5
    done
}

cargo build --release -q -p camtrail
cargo build --release -q -p camtrail --example sink_bench
deploy/local/services.sh up >&2
rm -rf "$OUT" && mkdir -p "$OUT"
exec 2> >(tee "$OUT/bench.log" >&2)

RUN="sinkbench$(date +%s)"
DB_A="${RUN}_a" DB_B="${RUN}_b" DB_C="${RUN}_c"
TOPIC="$RUN.detections.v1"
JSON_TOPIC="$RUN.json.v1"
export CAMTRAIL_KAFKA__BROKERS="$BROKERS"
export CAMTRAIL_KAFKA__DETECTIONS_TOPIC="$TOPIC"
export CAMTRAIL_KAFKA__DEAD_LETTER_TOPIC="$RUN.dlq.v1"
export CAMTRAIL_KAFKA__AUDIT_TOPIC="$RUN.audit.v1"
export CAMTRAIL_KAFKA__DETECTIONS_PARTITIONS="$PARTITIONS"

cleanup() {
    [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
    for db in "$DB_A" "$DB_B" "$DB_C"; do $CH -q "DROP DATABASE IF EXISTS $db" || true; done
    java -Xmx256m -cp '.local/kafka/libs/*' org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$BROKERS" --delete --topic "$RUN.*" >/dev/null 2>&1 || true
    rm -f "$OUT/rows.bin"
}
trap cleanup EXIT

log "migrating $DB_A $DB_B $DB_C and creating topics"
CAMTRAIL_CLICKHOUSE__DATABASE="$DB_A" "$BIN" migrate >&2
CAMTRAIL_CLICKHOUSE__DATABASE="$DB_B" "$BIN" migrate >&2
CAMTRAIL_CLICKHOUSE__DATABASE="$DB_C" CAMTRAIL_KAFKA__DETECTIONS_TOPIC="$JSON_TOPIC" "$BIN" migrate >&2

log "filling $TOPIC with $EVENTS records (the ingest node's producer and encoding)"
"$DATA" fill "$BROKERS" "$TOPIC" "$EVENTS" >"$OUT/fill.json"
log "filling $JSON_TOPIC with the same rows as JSONEachRow"
"$DATA" fill-json "$BROKERS" "$JSON_TOPIC" "$EVENTS" >"$OUT/fill-json.json"
log "writing the same rows as RowBinary"
"$DATA" rowbinary "$EVENTS" "$OUT/rows.bin"
COLUMNS_LIST="$("$DATA" columns)"
TOPIC_BYTES=$(cat .local/kafka/data/"$TOPIC"-*/*.log | wc -c)

# ---------------------------------------------------------------- (a) camtrail sink
log "(a) camtrail sink from a fresh group"
metric_rows() {
    curl -fsS --max-time 2 http://127.0.0.1:8082/metrics 2>/dev/null |
        awk '/^camtrail_sink_rows_inserted_total\{table="detections"\}/ {print $2}'
}
CH_PID=$(cat .local/clickhouse/clickhouse.pid)
KAFKA_PID=$(cat .local/kafka/kafka.pid)
settle "$DB_A"
T0=$(now)
CH0=$(cpu_s "$CH_PID"); KAF0=$(cpu_s "$KAFKA_PID")
CAMTRAIL_CLICKHOUSE__DATABASE="$DB_A" CAMTRAIL_SINK__GROUP_ID="$RUN.sink" \
    CAMTRAIL_SINK__HTTP_ADDR=127.0.0.1:8082 RUST_LOG=warn "$BIN" sink 2>"$OUT/sink.log" &
SINK_PID=$!
profile_start "$SINK_PID" 5 8 499
FIRST=""
while :; do
    rows="$(metric_rows || true)"
    rows="${rows:-0}"
    if [ -z "$FIRST" ] && [ "$rows" -gt 0 ]; then FIRST=$(now); fi
    [ "$rows" -ge "$EVENTS" ] && break
    kill -0 "$SINK_PID" 2>/dev/null || { cat "$OUT/sink.log" >&2; exit 1; }
    sleep 0.1
done
T1=$(now)
CH1=$(cpu_s "$CH_PID"); KAF1=$(cpu_s "$KAFKA_PID"); SINK_CPU=$(cpu_s "$SINK_PID")
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SINK_PID/status")
kill -TERM "$SINK_PID"
wait "$SINK_PID"
SINK_PID=""
settle "$DB_A"
profile_finish sink "camtrail sink, (a) from a full topic, $(build_label)"
A_SETTLED_SECS=$(minus "$(now)" "$T0"); CH2=$(cpu_s "$CH_PID")
CPU_A="$(minus "$CH1" "$CH0") $(minus "$CH2" "$CH0") $SINK_CPU $(minus "$KAF1" "$KAF0")"
A_SECS=$(minus "$T1" "$T0")
A_STEADY_SECS=$(minus "$T1" "$FIRST")
log "(a) $EVENTS rows in $A_SECS s (from first insert: $A_STEADY_SECS s), peak RSS $RSS_KB KiB"

# ---------------------------------------------------------------- (b) clickhouse-client
log "(b) clickhouse-client, RowBinary from a file"
settle "$DB_B"
T0=$(now)
CH0=$(cpu_s "$CH_PID")
/usr/bin/time -f '%U %S' -o "$OUT/b.time" \
    $CH --database "$DB_B" --query "INSERT INTO detections ($COLUMNS_LIST) FORMAT RowBinary" <"$OUT/rows.bin"
T1=$(now)
CH1=$(cpu_s "$CH_PID")
B_SECS=$(minus "$T1" "$T0")
settle "$DB_B"
B_SETTLED_SECS=$(minus "$(now)" "$T0"); CH2=$(cpu_s "$CH_PID")
CPU_B="$(minus "$CH1" "$CH0") $(minus "$CH2" "$CH0") $(awk '{print $1 + $2}' "$OUT/b.time")"
log "(b) $EVENTS rows in $B_SECS s"
ROWBINARY_BYTES=$(stat -c %s "$OUT/rows.bin")
rm -f "$OUT/rows.bin"

# Same rows in both: identical multiset of (every column) hashes.
CHECK="SELECT count(), sum(cityHash64(subject_key, captured_at_ms, event_id, camera_id, object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, bbox_width, bbox_height, gateway_id, received_at_ms)) FROM detections"
SUM_A="$($CH --database "$DB_A" -q "$CHECK")"
SUM_B="$($CH --database "$DB_B" -q "$CHECK")"
[ "$SUM_A" = "$SUM_B" ] || { log "a and b stored different rows: '$SUM_A' vs '$SUM_B'"; exit 1; }

# ---------------------------------------------------------------- (c) Kafka engine + MV
C_SECS=0 C_ROWS=0 C_PROTOBUF_ERROR="not run (SKIP_C=1)"
if [ "${SKIP_C:-0}" != 1 ]; then
log "(c) ClickHouse Kafka engine on $TOPIC (protobuf records)"
KAFKA_COLUMNS="subject_key String, captured_at_ms Int64, event_id_hex String, camera_id String,
    object_class UInt8, plate String, plate_confidence Float32, vehicle_color UInt8,
    vehicle_type UInt8, bbox_x UInt32, bbox_y UInt32, bbox_width UInt32, bbox_height UInt32,
    has_snapshot UInt8, gateway_id String, received_at_ms Int64"
# 18.16 accepts the table definition; the format is looked up when the engine reads.
$CH --database "$DB_C" -q "CREATE TABLE kafka_protobuf ($KAFKA_COLUMNS)
    ENGINE = Kafka SETTINGS kafka_broker_list = '$BROKERS', kafka_topic_list = '$TOPIC',
    kafka_group_name = '$RUN.ch_protobuf', kafka_format = 'Protobuf',
    kafka_schema = 'detection:StoredDetection'" 2>"$OUT/protobuf.err" || true
timeout 60 $CH --database "$DB_C" -q "SELECT count() FROM kafka_protobuf" \
    >/dev/null 2>>"$OUT/protobuf.err" || true
C_PROTOBUF_ERROR="$(grep -m1 -o 'Code: [0-9]*.*' "$OUT/protobuf.err" || true)"
C_PROTOBUF_ERROR="${C_PROTOBUF_ERROR:-none: the engine read the protobuf records}"
log "(c) protobuf: $C_PROTOBUF_ERROR"

log "(c) ClickHouse Kafka engine on $JSON_TOPIC (JSONEachRow, same rows)"
$CH --database "$DB_C" -q "CREATE TABLE kafka_json ($KAFKA_COLUMNS)
    ENGINE = Kafka SETTINGS kafka_broker_list = '$BROKERS', kafka_topic_list = '$JSON_TOPIC',
    kafka_group_name = '$RUN.ch_json', kafka_format = 'JSONEachRow', kafka_num_consumers = 1"
T0=$(now)
$CH --database "$DB_C" -q "CREATE MATERIALIZED VIEW kafka_json_mv TO detections AS
    SELECT subject_key, captured_at_ms, toFixedString(unhex(event_id_hex), 16) AS event_id,
    toDate(toDateTime(intDiv(captured_at_ms, 1000), 'UTC'), 'UTC') AS day,
    camera_id, object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y,
    bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms FROM kafka_json"
C_ROWS=0
while :; do
    C_ROWS=$($CH --database "$DB_C" -q "SELECT count() FROM detections")
    [ "$C_ROWS" -ge "$EVENTS" ] && break
    if awk -v e="$(minus "$(now)" "$T0")" -v t="$KAFKA_ENGINE_TIMEOUT" 'BEGIN { exit !(e > t) }'; then
        log "(c) gave up after ${KAFKA_ENGINE_TIMEOUT} s with $C_ROWS rows"
        break
    fi
    sleep 0.5
done
T1=$(now)
C_SECS=$(minus "$T1" "$T0")
$CH --database "$DB_C" -q "DROP TABLE kafka_json_mv"
log "(c) $C_ROWS rows in $C_SECS s"
fi

# ---------------------------------------------------------------- storage
$CH --database "$DB_A" -q "OPTIMIZE TABLE detections FINAL" || true
PARTS="$($CH -q "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts
    WHERE database = '$DB_A' AND active GROUP BY table ORDER BY table FORMAT TSV")"
echo "$PARTS" >"$OUT/parts.tsv"

python3 - "$EVENTS" "$A_SECS" "$A_STEADY_SECS" "$B_SECS" "$C_SECS" "$C_ROWS" "$RSS_KB" \
    "$OUT" "$ROWBINARY_BYTES" "$TOPIC_BYTES" "$PARTITIONS" "$C_PROTOBUF_ERROR" \
    "$A_SETTLED_SECS" "$B_SETTLED_SECS" "$CPU_A" "$CPU_B" "$(build_label)" <<'PY'
import json, os, sys, datetime
(events, a_secs, a_steady, b_secs, c_secs, c_rows, rss_kb, out, rb_bytes, topic_bytes,
 partitions, c_err, a_settled, b_settled, cpu_a, cpu_b, label) = sys.argv[1:18]
events = int(events); c_rows = int(c_rows)
a = events / float(a_secs); a_steady = events / float(a_steady); b = events / float(b_secs)
c = c_rows / float(c_secs) if float(c_secs) > 0 else float("nan")
a_set = events / float(a_settled); b_set = events / float(b_settled)
ch_a, ch_a_set, sink_a, kaf_a = (float(x) * 1e6 / events for x in cpu_a.split())
ch_b, ch_b_set, client_b = (float(x) * 1e6 / events for x in cpu_b.split())
fill = json.load(open(f"{out}/fill.json"))
parts = {}
for line in open(f"{out}/parts.tsv"):
    if line.strip():
        table, rows, size = line.split("\t")
        parts[table] = (int(rows), int(size))
det_rows, det_bytes = parts.get("detections", (0, 0))
total_bytes = sum(size for _, size in parts.values() if True)
c_note = "" if c_rows >= events else f" (stopped at {c_rows:,} of {events:,} rows)"
text = f"""
## Sink — {datetime.date.today().isoformat()}, build {label}

Command: `benches/sink.sh` (EVENTS={events}, {partitions} partitions). One 2-core machine
runs Kafka 4.1 (512 MiB heap), ClickHouse 18.16 and the loader being measured. The topic is
pre-filled by the ingest node's own producer and record encoding ({fill['events_per_second']:,}
records/s, {int(topic_bytes) / events:.0f} bytes/record on the broker, LZ4); rows are shaped
like the city's traffic (140,000 cameras, ~3M plates, no snapshots). The materialized views
(detections_by_hour, subject_keys_daily) run in every case. (a) and (b) were checked to
store the same rows (count and a hash over every column).

| figure | value | target |
|---|---|---|
| (a) rows/s, `camtrail sink` (process start → last row inserted) | {a:,.0f} ({float(a_secs):.1f} s) | |
| (a') same, from the first insert | {a_steady:,.0f} | |
| (b) rows/s, `clickhouse-client` RowBinary from a file ({int(rb_bytes) / events:.0f} bytes/row) | {b:,.0f} ({float(b_secs):.1f} s) | |
| (c) rows/s, Kafka engine + MV, companion JSONEachRow topic{c_note} | {c:,.0f} ({float(c_secs):.1f} s) | |
| a/b | {a / b:.2f} | ≥ 0.8 |
| (a'') rows/s to the end of the merges (a) started / (b'') same for (b) / ratio | {a_set:,.0f} / {b_set:,.0f} / {a_set / b_set:.2f} | |
| ClickHouse CPU s per million rows, (a) / (b): to the last row; with the merges | {ch_a:.2f} / {ch_b:.2f}; {ch_a_set:.2f} / {ch_b_set:.2f} | |
| CPU s per million rows of the loader: the sink (a) / clickhouse-client (b); Kafka during (a) | {sink_a:.2f} / {client_b:.2f}; {kaf_a:.2f} | |
| a/c | {a / c:.2f} | |
| bytes on disk per stored event, `detections` (after OPTIMIZE FINAL) | {det_bytes / max(det_rows, 1):.1f} | |
| bytes on disk per event, all tables (detections, by_hour, keys) | {total_bytes / events:.1f} | |
| peak RSS of the sink (VmHWM) | {int(rss_kb) / 1024:.0f} MiB | |

(c) on the same topic: ClickHouse 18.16 cannot read our protobuf records:
`{c_err.strip()}` — so (c) reads a companion topic with the same rows as JSON, one per record.
"""
with open(os.environ.get("BENCH_MD", "BENCHMARKS.md"), "a") as f:
    f.write(text)
print(text)
PY
