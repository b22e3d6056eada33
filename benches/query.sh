#!/usr/bin/env bash
# Query benchmark (issue 6): 30-day track latency for random plates with ROWS detections
# (default 100 million, ~3 million plates, 30 days) in ClickHouse on this machine:
#   (api) through `camtrail query`'s HTTP API: token check, ClickHouse read, reconstruction,
#         audit record to Kafka (acks=all) before the answer, JSON;
#   (sql) the bare SQL the node issues, over ClickHouse's HTTP interface;
# p50/p99 of each and their ratio, plus rows read per query from system.query_log (the
# primary-key index at work). Appends the figures to BENCHMARKS.md.
#
# The two are measured interleaved (each plate both ways, one right after the other), ROUNDS
# times, so both see the same moments of the machine and the spread across rounds shows.
#
#   benches/query.sh     # ROWS=100000000 PLATES=3000000 REQUESTS=2000 ROUNDS=3 KEEP=1 (keep the data)
#   PROFILE=1 benches/query.sh   # also `perf record` the node in round 1: benches/profiles/query.svg
#   BENCH_MD=/tmp/runs.md benches/query.sh   # figures elsewhere than BENCHMARKS.md
#   FUZZY=1 benches/query.sh     # also each plate with misread tolerance (look-alikes read, attributed)
#   BIN=/tmp/camtrail-before FUZZY=1 benches/query.sh   # the same against another build of the node
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/common/profile.sh
. benches/common/profile.sh
ROWS="${ROWS:-100000000}"
PLATES="${PLATES:-3000000}"
REQUESTS="${REQUESTS:-2000}"
ROUNDS="${ROUNDS:-3}"
DB="${DB:-qbench_${ROWS}}"
OUT="${OUT:-target/bench-query}"
CHUNK=10000000
BIN="${BIN:-target/release/camtrail}"
BENCH=target/release/examples/track_bench
CH="clickhouse-client --host 127.0.0.1 --port 9000"

log() { printf '[query-bench] %s\n' "$*" >&2; }

cargo build --release -q -p camtrail
cargo build --release -q -p camtrail --example track_bench
deploy/local/services.sh up >&2
mkdir -p "$OUT"

RUN="qbench$(date +%s)"
export CAMTRAIL_CLICKHOUSE__DATABASE="$DB"
export CAMTRAIL_KAFKA__DETECTIONS_TOPIC="$RUN.detections.v1"
export CAMTRAIL_KAFKA__DEAD_LETTER_TOPIC="$RUN.dlq.v1"
export CAMTRAIL_KAFKA__AUDIT_TOPIC="$RUN.audit.v1"
export CAMTRAIL_KAFKA__DETECTIONS_PARTITIONS=1

[ -f "$OUT/city/cameras.csv" ] || "$BIN" city --seed 7 --out "$OUT/city" >&2
"$BIN" migrate --cameras "$OUT/city/cameras.csv" >&2

# The 30 days end at the start of the current hour, so tracks are "recent" (no supervisor
# tier) and the data stays the same between runs on the same day.
END_MS=$(( $(date +%s) / 3600 * 3600 * 1000 ))
START_MS=$(( END_MS - 30 * 86400000 ))
STORED=$($CH -q "SELECT count() FROM $DB.detections")
if [ "$STORED" -ne "$ROWS" ]; then
    log "loading $ROWS detections into $DB ($PLATES plates, 30 days, the city's cameras)"
    # An interrupted load resumes after its last whole chunk.
    if [ "$STORED" -lt "$ROWS" ] && [ $(( STORED % CHUNK )) -eq 0 ]; then
        LOADED=$STORED
        log "resuming after $LOADED rows"
    else
        $CH -q "DROP DATABASE $DB"
        "$BIN" migrate --cameras "$OUT/city/cameras.csv" >&2
        LOADED=0
    fi
    T0=$(date +%s)
    while [ "$LOADED" -lt "$ROWS" ]; do
        N=$(( ROWS - LOADED < CHUNK ? ROWS - LOADED : CHUNK ))
        # Plate k: 粤 + two letters + four digits (24*24*10,000 combinations), drawn uniformly;
        # times uniform over the 30 days; cameras uniform over the registry.
        $CH --max_insert_block_size=1048576 -q "
            INSERT INTO $DB.detections (subject_key, captured_at_ms, event_id, camera_id,
                object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x,
                bbox_y, bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms)
            WITH
                (SELECT groupArray(camera_id) FROM $DB.cameras) AS ids,
                ['A','B','C','D','E','F','G','H','J','K','L','M','N','P','Q','R','S','T','U','V','W','X','Y','Z'] AS letters
            SELECT
                concat('粤', letters[p % 24 + 1], letters[intDiv(p, 24) % 24 + 1],
                       substring(toString(10000 + intDiv(p, 576) % 10000), 2, 4)) AS key,
                toInt64($START_MS + cityHash64(n, 1) % (30 * 86400000)) AS at,
                toFixedString(concat(reinterpretAsString(cityHash64(n, 3)), reinterpretAsString(n)), 16),
                ids[cityHash64(n, 2) % length(ids) + 1],
                toUInt8(1), key, toFloat32(0.9), toUInt8(n % 10), toUInt8(n % 6),
                toUInt32(n % 1600), toUInt32(n % 900), toUInt32(200), toUInt32(100), toUInt8(0),
                'gw-000', at + 300
            FROM (SELECT number + $LOADED AS n, cityHash64(number + $LOADED, 0) % $PLATES AS p
                  FROM numbers($N))"
        LOADED=$(( LOADED + N ))
        log "  $LOADED / $ROWS rows ($(( $(date +%s) - T0 )) s)"
    done
    log "loaded in $(( $(date +%s) - T0 )) s"
fi
# Compact each week into one part, as a nightly `OPTIMIZE ... FINAL` of closed weeks does in
# operation (ReplacingMergeTree also drops re-delivered duplicates then). Without it a track
# probes every part of every week: the first run below measured 39 parts.
PARTS=$($CH -q "SELECT count() FROM system.parts WHERE database = '$DB' AND table = 'detections' AND active")
WEEKS=$($CH -q "SELECT uniqExact(partition) FROM system.parts WHERE database = '$DB' AND table = 'detections' AND active")
if [ "${COMPACT:-1}" = 1 ] && [ "$PARTS" -gt "$WEEKS" ]; then
    log "compacting $PARTS parts into $WEEKS weekly parts (OPTIMIZE FINAL)"
    T0=$(date +%s)
    $CH --receive_timeout=3600 -q "OPTIMIZE TABLE $DB.detections FINAL"
    $CH --receive_timeout=3600 -q "OPTIMIZE TABLE $DB.subject_keys_daily FINAL"
    log "compacted in $(( $(date +%s) - T0 )) s"
fi
DISK=$($CH -q "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '$DB' AND table = 'detections' AND active")
PARTS=$($CH -q "SELECT count() FROM system.parts WHERE database = '$DB' AND table = 'detections' AND active")

# Random plates of the population (same formula as the load).
$CH -q "
    WITH ['A','B','C','D','E','F','G','H','J','K','L','M','N','P','Q','R','S','T','U','V','W','X','Y','Z'] AS letters
    SELECT concat('粤', letters[p % 24 + 1], letters[intDiv(p, 24) % 24 + 1],
                  substring(toString(10000 + intDiv(p, 576) % 10000), 2, 4))
    FROM (SELECT cityHash64(number, 77) % $PLATES AS p FROM numbers($REQUESTS))" >"$OUT/plates.txt"
head -200 "$OUT/plates.txt" >"$OUT/warmup.txt"

rm -f "$OUT/users.toml"
TOKEN=$("$BIN" users issue --name bench --role investigator --users "$OUT/users.toml" 2>/dev/null)
SUPERVISOR=$("$BIN" users issue --name bench-supervisor --role supervisor --users "$OUT/users.toml" 2>/dev/null)
export CAMTRAIL_QUERY__HTTP_ADDR=127.0.0.1:8080
export CAMTRAIL_QUERY__REGISTRY_PATH="$OUT/city/cameras.csv"
export CAMTRAIL_QUERY__USERS_PATH="$OUT/users.toml"
RUST_LOG=warn "$BIN" query 2>"$OUT/query.log" &
QUERY_PID=$!
trap 'kill $QUERY_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break; sleep 0.1; done
# Every search runs under an open case the investigator is assigned to (BENCH-1 stays in
# the bench database's registry from one run to the next: a repeat answers case_exists).
"$BIN" cases open --url http://127.0.0.1:8080 --token "$SUPERVISOR" --case BENCH-1 \
    --title "track benchmark" --category robbery --assign bench --ends 30d \
    --reason "benchmark" >&2 || "$BIN" cases extend --url http://127.0.0.1:8080 \
    --token "$SUPERVISOR" --case BENCH-1 --ends 30d --reason "benchmark rerun" >&2

log "warm-up"
"$BENCH" api http://127.0.0.1:8080 "$TOKEN" "$OUT/warmup.txt" "$START_MS" "$END_MS" >/dev/null
"$BENCH" sql http://127.0.0.1:8123 "$DB" "$OUT/warmup.txt" "$START_MS" "$END_MS" >/dev/null
SQL_START=$($CH -q "SELECT now()")
for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS: $REQUESTS 30-day tracks through the HTTP API and as bare SQL, interleaved"
    if [ "$round" = 1 ]; then profile_start "$QUERY_PID" 0 8 499; fi
    "$BENCH" "$( [ "${FUZZY:-0}" = 1 ] && echo all || echo both )" http://127.0.0.1:8080 "$TOKEN" http://127.0.0.1:8123 "$DB" "$OUT/plates.txt" \
        "$START_MS" "$END_MS" | tee "$OUT/round$round.json" >&2
done
AUDIT_MEAN_MS=$(curl -fsS http://127.0.0.1:8080/metrics | awk '
    /^camtrail_query_audit_write_seconds_sum/ {s=$2} /^camtrail_query_audit_write_seconds_count/ {c=$2}
    END {if (c > 0) printf "%.2f", s / c * 1000; else print "?"}')
log "mean audit write: $AUDIT_MEAN_MS ms"
sleep 8 # query_log flushes every 7.5 s
$CH -q "SYSTEM FLUSH LOGS" || true
READ=$($CH -q "SELECT round(avg(read_rows)), max(read_rows), round(avg(result_rows), 1) FROM system.query_log
    WHERE type = 2 AND query LIKE '%FROM detections WHERE subject_key IN%'
      AND query LIKE '%FORMAT RowBinary' AND query_start_time >= toDateTime('$SQL_START')" | tr '\t' ' ')
AUDITED=$(kcat -C -b 127.0.0.1:9092 -t "$RUN.audit.v1" -e -q -f '.\n' 2>/dev/null | wc -l || echo "?")
kill $QUERY_PID; wait $QUERY_PID 2>/dev/null || true
profile_finish query "camtrail query, 30-day tracks one at a time, $(build_label)"

LABEL=$(build_label)
[ "$BIN" = target/release/camtrail ] || LABEL="$LABEL, node binary $BIN"
python3 - "$ROWS" "$PLATES" "$OUT" "$DISK" "$PARTS" "$READ" "$AUDITED" "$AUDIT_MEAN_MS" "$ROUNDS" "$LABEL" <<'PY'
import json, os, sys, datetime
rows, plates, out, disk, parts, read, audited, audit_ms, rounds, label = sys.argv[1:11]
avg_read, max_read, avg_result = read.split()
table = []
for r in range(1, int(rounds) + 1):
    lines = [json.loads(l) for l in open(f"{out}/round{r}.json") if l.strip()]
    by = {l["mode"]: l for l in lines}
    table.append((r, by["api"], by["sql"], by.get("fuzzy")))
rows_md = "\n".join(
    f"| {r} | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} / {a['max_ms']:.1f} | {q['p50_ms']:.1f} / {q['p99_ms']:.1f} / {q['max_ms']:.1f} | {a['p50_ms'] / q['p50_ms']:.2f} | {a['p99_ms'] / q['p99_ms']:.2f} |"
    for r, a, q, _ in table)
ratios = [a["p99_ms"] / q["p99_ms"] for _, a, q, _ in table]
fuzzy_md = ""
if all(f for *_, f in table):
    fuzzy_rows = "\n".join(
        f"| {r} | {f['p50_ms']:.1f} / {f['p99_ms']:.1f} / {f['max_ms']:.1f} | {f['mean_body_bytes']:,} |"
        for r, _, _, f in table)
    fuzzy_md = f"""
The same plates with misread tolerance on (`fuzzy=true`: every misreading of the plate looked
up in the per-day key table, the look-alikes found read by primary key, each sighting
attributed), asked right after the two above:

| round | fuzzy API p50 / p99 / max, ms | mean answer bytes |
|---|---|---|
{fuzzy_rows}
"""
mid = sorted(ratios)[len(ratios) // 2]
spread = max(abs(x - mid) / mid for x in ratios) * 100
requests = table[0][1]["requests"]
text = f"""
## Query node — {datetime.date.today().isoformat()}, build {label}

Command: `benches/query.sh` (ROWS={int(rows):,}, {int(plates):,} plates over 30 days, the
city's 140,000 cameras, weekly partitions: {parts} active parts, {int(disk) / 2**30:.1f} GiB for
`detections` after `OPTIMIZE FINAL`, as a nightly job on closed weeks would). One 2-core
machine runs ClickHouse 18.16, Kafka 4.1, the query node and the client. {requests:,} random
plates per round, one request at a time, each asked through the HTTP API (auth, read,
reconstruction, audit record to Kafka with acks=all before the answer, JSON) and as the
node's bare SQL over ClickHouse HTTP, one right after the other; {rounds} rounds after a
200-request warm-up ({audited} audit records on the topic; mean audit write {audit_ms} ms,
from the node's `camtrail_query_audit_write_seconds`).

| round | API p50 / p99 / max, ms | bare SQL p50 / p99 / max, ms | ratio p50 | ratio p99 (target ≤ 1.2) |
|---|---|---|---|---|
{rows_md}

Spread of the p99 ratio over the rounds: ±{spread:.0f}% around the median {mid:.2f}.
{fuzzy_md}
Index use (system.query_log for the bare reads): {avg_read} rows read per query on average
(max {max_read}) of {int(rows):,}, for {avg_result} rows returned.
"""
with open(os.environ.get("BENCH_MD", "BENCHMARKS.md"), "a") as f:
    f.write(text)
print(text)
PY
