#!/usr/bin/env bash
# Investigative analytics benchmark (issue 17): scene search, series of scenes and co-travel,
# one request at a time, on
#   (clickhouse) `camtrail query` over the ROWS-detection ClickHouse database benches/query.sh
#                loaded (default qbench_100000000: 30 days, 3,000,000 plates, the city's
#                140,000 cameras), each request also as the node's bare SQL over ClickHouse's
#                HTTP interface, interleaved, plus rows read per query from system.query_log;
#   (embedded)   `camtrail serve` over an EMBEDDED_ROWS-detection SQLite database (the same
#                draws, written by the benchmark client through SqliteStore::write, kept in
#                $OUT/embedded and reused by later runs), through its HTTP API.
# Co-travel needs targets with 60 sightings in a day, which the uniform load has none of:
# 20 planted targets (京CT0001..) and their companions (京CF0001..), inserted once
# (idempotent: skipped when present). Appends the figures to BENCHMARKS.md.
#
#   benches/analytics.sh     # SCENES=200 SERIES=100 COTRAVEL=100 WARMUP=20 EMBEDDED_ROWS=10000000
#   BACKENDS=clickhouse benches/analytics.sh   # one backend only (clickhouse, embedded)
#   PREWARM=0 benches/analytics.sh   # do not read detections_by_hour into the page cache first
#   BENCH_MD=/tmp/runs.md benches/analytics.sh # figures elsewhere than BENCHMARKS.md
#
# The ClickHouse data is never dropped or reloaded here; `camtrail migrate` brings its schema
# up to date, as benches/query.sh does on every run (migration 008 copies the rows into
# detections_by_hour once: about three minutes at 100M rows).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/common/profile.sh
. benches/common/profile.sh
ROWS="${ROWS:-100000000}"
DB="${DB:-qbench_${ROWS}}"
EMBEDDED_ROWS="${EMBEDDED_ROWS:-10000000}"
PLATES="${PLATES:-3000000}"
SCENES="${SCENES:-200}"
SERIES="${SERIES:-100}"
COTRAVEL="${COTRAVEL:-100}"
WARMUP="${WARMUP:-20}"
PREWARM="${PREWARM:-1}"
BACKENDS="${BACKENDS:-clickhouse embedded}"
OUT="${OUT:-target/bench-analytics}"
BIN=target/release/camtrail
BENCH=target/release/examples/analytics_bench
CH="clickhouse-client --host 127.0.0.1 --port 9000"
# Ports away from the defaults and from benches/query.sh (8080) and benches/serve.sh (81xx).
QUERY_HTTP=127.0.0.1:8290
QUERY_GRPC=127.0.0.1:50292
SERVE_QUERY_HTTP=127.0.0.1:8280
SERVE_QUERY_GRPC=127.0.0.1:50282
SERVE_INGEST_HTTP=127.0.0.1:8281
SERVE_INGEST_GRPC=127.0.0.1:50281

log() { printf '[analytics-bench] %s\n' "$*" >&2; }
# The machine is shared: 1-minute load average, and the share of the last minute in which
# some task waited for CPU / for I/O (PSI, /proc/pressure).
machine() {
    printf 'load %s, cpu %s%%, io %s%%' "$(cut -d' ' -f1 /proc/loadavg)" \
        "$(awk '/^some/ {sub("avg60=", "", $3); print $3}' /proc/pressure/cpu 2>/dev/null)" \
        "$(awk '/^some/ {sub("avg60=", "", $3); print $3}' /proc/pressure/io 2>/dev/null)"
}
T_START=$(date +%s)
for addr in "$QUERY_HTTP" "$SERVE_QUERY_HTTP" "$SERVE_INGEST_HTTP"; do
    if curl -fsS --max-time 1 "http://$addr/healthz" >/dev/null 2>&1; then
        log "something already answers on $addr; stop it first"
        exit 1
    fi
done

log "building (release)"
cargo build --release -q -p camtrail
cargo build --release -q -p camtrail --example analytics_bench
mkdir -p "$OUT"
[ -f "$OUT/city/cameras.csv" ] || "$BIN" city --seed 7 --out "$OUT/city" >&2
CAMERAS="$OUT/city/cameras.csv"
RUN="abench$(date +%s)"
rm -f "$OUT"/*.json
NODE_PID=""
SERVE_PID=""
trap 'for p in $NODE_PID $SERVE_PID; do kill "$p" 2>/dev/null || true; done' EXIT

wait_ready() { # PID URL... : wait up to 60 s until every URL answers
    local pid=$1
    shift
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || return 1
        local ok=1
        for url in "$@"; do curl -fsS "$url" >/dev/null 2>&1 || ok=0; done
        [ "$ok" = 1 ] && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------- ClickHouse
if [[ " $BACKENDS " == *" clickhouse "* ]]; then
    # Kafka and ClickHouse must be up (deploy/local/services.sh up, in the checkout that owns
    # them); this script does not start or stop them.
    if ! curl -fsS --max-time 2 http://127.0.0.1:8123/ping >/dev/null ||
        ! (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then
        log "ClickHouse (127.0.0.1:8123) or Kafka (127.0.0.1:9092) is not up: deploy/local/services.sh up"
        exit 1
    fi
    STORED=$($CH -q "SELECT count() FROM $DB.detections" 2>/dev/null || echo 0)
    if [ "$STORED" -lt "$ROWS" ]; then
        log "$DB holds $STORED rows in detections, fewer than $ROWS;" \
            "load it with benches/query.sh first (not done here)"
        exit 1
    fi
    export CAMTRAIL_CLICKHOUSE__DATABASE="$DB"
    export CAMTRAIL_KAFKA__DETECTIONS_TOPIC="$RUN.detections.v1"
    export CAMTRAIL_KAFKA__DEAD_LETTER_TOPIC="$RUN.dlq.v1"
    export CAMTRAIL_KAFKA__AUDIT_TOPIC="$RUN.audit.v1"
    export CAMTRAIL_KAFKA__DETECTIONS_PARTITIONS=1
    # Migrations the database lacks are applied here (008 copies every row into
    # detections_by_hour once: minutes at 100M rows, logged).
    "$BIN" migrate >&2
    BY_HOUR=$($CH -q "SELECT count() FROM $DB.detections_by_hour" 2>/dev/null || echo 0)
    log "$DB: $STORED detections, $BY_HOUR in detections_by_hour"
    if [ "$BY_HOUR" -lt "$ROWS" ]; then
        log "$DB holds fewer than $ROWS rows in detections_by_hour"
        exit 1
    fi
    # The load's 30 days start at the hour of its first row.
    START_MS=$($CH -q "SELECT intDiv(min(captured_at_ms), 3600000) * 3600000 FROM $DB.detections")
    END_MS=$(( START_MS + 30 * 86400000 ))
    log "data window $(date -u -d @$(( START_MS / 1000 )) '+%F %H:%M') .. $(date -u -d @$(( END_MS / 1000 )) '+%F %H:%M') UTC"

    "$BENCH" planted "$CAMERAS" "$START_MS" >"$OUT/planted.tsv"
    PLANTED=$(wc -l <"$OUT/planted.tsv")
    planted_in() { $CH -q "SELECT count() FROM $DB.$1 WHERE subject_key >= '京C' AND subject_key < '京D'"; }
    HAVE=$(planted_in detections)
    if [ "$HAVE" -lt "$PLANTED" ]; then
        log "planting $PLANTED co-travel rows (20 targets, 20 companions; $HAVE there before)"
        $CH -q "INSERT INTO $DB.detections ($("$BENCH" planted-columns)) FORMAT TabSeparated" <"$OUT/planted.tsv"
    else
        log "planted rows present ($HAVE of $PLANTED)"
    fi
    log "planted rows: $(planted_in detections) in detections, $(planted_in detections_by_hour) in detections_by_hour"
    PARTS=$($CH -q "SELECT count() FROM system.parts WHERE database = '$DB' AND table = 'detections_by_hour' AND active")
    DISK=$($CH -q "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '$DB' AND table = 'detections_by_hour' AND active")
    PREWARM_S=-
    if [ "$PREWARM" = 1 ]; then
        log "reading detections_by_hour's columns once (page cache)"
        T0=$(date +%s)
        $CH --receive_timeout=3600 -q "SELECT count() FROM $DB.detections_by_hour WHERE NOT ignore(
            event_id, camera_id, captured_at_ms, subject_key, plate, plate_confidence, object_class,
            has_snapshot)" >/dev/null
        PREWARM_S=$(( $(date +%s) - T0 ))
        log "read in $PREWARM_S s"
    fi

    rm -f "$OUT/users.toml"
    TOKEN=$("$BIN" users issue --name bench --role supervisor --users "$OUT/users.toml" 2>/dev/null)
    export CAMTRAIL_QUERY__HTTP_ADDR="$QUERY_HTTP"
    export CAMTRAIL_QUERY__GRPC_ADDR="$QUERY_GRPC"
    export CAMTRAIL_QUERY__REGISTRY_PATH="$CAMERAS"
    export CAMTRAIL_QUERY__USERS_PATH="$OUT/users.toml"
    RUST_LOG=warn "$BIN" query 2>"$OUT/query.log" &
    NODE_PID=$!
    wait_ready "$NODE_PID" "http://$QUERY_HTTP/healthz" || { log "query node not ready"; tail -20 "$OUT/query.log" >&2; exit 1; }
    # Every search runs under an open case: one per run, opened by the bench's supervisor.
    "$BIN" cases open --url "http://$QUERY_HTTP" --token "$TOKEN" --case "BENCH-$RUN" \
        --title "analytics benchmark $RUN" --category robbery --ends 7d \
        --reason "benchmark run" >&2

    log "clickhouse: $SCENES scenes, $SERIES series, $COTRAVEL co-travels (after $WARMUP of each), API and bare SQL interleaved"
    SQL_START=$($CH -q "SELECT now()")
    LOAD_BEFORE=$(machine)
    T0=$(date +%s)
    "$BENCH" run --backend clickhouse --api "http://$QUERY_HTTP" --token "$TOKEN" \
        --cameras "$CAMERAS" --start "$START_MS" --end "$END_MS" \
        --clickhouse http://127.0.0.1:8123 --database "$DB" --run-id "$RUN" \
        --scenes "$SCENES" --series "$SERIES" --cotravel "$COTRAVEL" --warmup "$WARMUP" \
        | tee "$OUT/clickhouse.json" >&2
    CH_S=$(( $(date +%s) - T0 ))
    LOAD_AFTER=$(machine)
    curl -fsS "http://$QUERY_HTTP/metrics" >"$OUT/query-metrics.txt" 2>/dev/null || true
    kill "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null || true
    NODE_PID=""
    AUDITED=$(kcat -C -b 127.0.0.1:9092 -t "$RUN.audit.v1" -e -q -f '.\n' 2>/dev/null | wc -l || echo "?")
    sleep 8 # query_log flushes every 7.5 s
    $CH -q "SYSTEM FLUSH LOGS" || true
    # Rows read by the bare queries (the node's SQL, byte for byte; the node's own are not
    # logged: log_queries is off on this server).
    $CH -q "SELECT extract(query_id, '^abench[0-9]+-([a-z_]+)-') AS kind, count() AS queries,
            round(avg(read_rows)) AS avg_read, max(read_rows) AS max_read,
            round(avg(result_rows), 1) AS avg_result, round(avg(read_bytes)) AS avg_read_bytes,
            round(avg(query_duration_ms), 1) AS avg_server_ms
        FROM system.query_log
        WHERE type = 2 AND event_date >= toDate('$SQL_START') - 1
          AND query_start_time >= toDateTime('$SQL_START') AND query_id LIKE '$RUN-%'
        GROUP BY kind FORMAT JSONEachRow" >"$OUT/query_log.json"
    cat "$OUT/query_log.json" >&2
    echo "{\"start_ms\": $START_MS, \"parts\": $PARTS, \"disk\": $DISK, \"planted\": $PLANTED, \"audited\": \"$AUDITED\", \"prewarm_s\": \"$PREWARM_S\", \"run_s\": $CH_S, \"machine\": \"$LOAD_BEFORE at the start, $LOAD_AFTER at the end\"}" >"$OUT/clickhouse-setup.json"
fi

# ------------------------------------------------------------------------------ embedded
if [[ " $BACKENDS " == *" embedded "* ]]; then
    EDIR="$OUT/embedded"
    EDB="$EDIR/camtrail.db"
    META="$EDIR/meta.json"
    want="{\"rows\": $EMBEDDED_ROWS, \"plates\": $PLATES, \"layout\": 1"
    if [ -f "$META" ] && [ -f "$EDB" ] && grep -qF "$want" "$META"; then
        E_START_MS=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['start_ms'])" "$META")
        FILL_S=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['fill_s'])" "$META")
        log "reusing $EDB ($EMBEDDED_ROWS rows + planted, filled in $FILL_S s)"
    else
        rm -rf "$EDIR" && mkdir -p "$EDIR"
        # 30 days ending at the start of this hour.
        E_START_MS=$(( $(date +%s) / 3600 * 3600 * 1000 - 30 * 86400000 ))
        log "filling $EDB: $EMBEDDED_ROWS detections ($PLATES plates, 30 days, capture order) + planted"
        T0=$(date +%s)
        "$BENCH" fill-sqlite "$EDB" "$CAMERAS" "$EMBEDDED_ROWS" "$PLATES" "$E_START_MS"
        FILL_S=$(( $(date +%s) - T0 ))
        echo "$want, \"start_ms\": $E_START_MS, \"fill_s\": $FILL_S}" >"$META"
    fi
    E_END_MS=$(( E_START_MS + 30 * 86400000 ))
    [ -f "$EDIR/tokens/gateway_token_hashes.csv" ] ||
        "$BIN" gateways issue --registry "$CAMERAS" --out "$EDIR/tokens" >&2
    E_PREWARM_S=-
    if [ "$PREWARM" = 1 ]; then
        # As for ClickHouse above: the runs measure reads of a warm cache, not of a disk the
        # ClickHouse part has just filled the cache from.
        log "reading the embedded database's files once (page cache)"
        T0=$(date +%s)
        find "$EDB" "$EDB.parts" -type f -exec cat {} + >/dev/null
        E_PREWARM_S=$(( $(date +%s) - T0 ))
        log "read in $E_PREWARM_S s"
    fi
    rm -f "$EDIR/users.toml"
    E_TOKEN=$("$BIN" users issue --name bench --role supervisor --users "$EDIR/users.toml" 2>/dev/null)
    (
        export CAMTRAIL_SERVE__DATABASE_PATH="$EDB"
        export CAMTRAIL_INGEST__GRPC_ADDR="$SERVE_INGEST_GRPC"
        export CAMTRAIL_INGEST__HTTP_ADDR="$SERVE_INGEST_HTTP"
        export CAMTRAIL_INGEST__REGISTRY_PATH="$CAMERAS"
        export CAMTRAIL_INGEST__GATEWAY_TOKENS_PATH="$EDIR/tokens/gateway_token_hashes.csv"
        export CAMTRAIL_QUERY__HTTP_ADDR="$SERVE_QUERY_HTTP"
        export CAMTRAIL_QUERY__GRPC_ADDR="$SERVE_QUERY_GRPC"
        export CAMTRAIL_QUERY__REGISTRY_PATH="$CAMERAS"
        export CAMTRAIL_QUERY__USERS_PATH="$EDIR/users.toml"
        NO_COLOR=1 exec "$BIN" serve 2>"$EDIR/serve.log"
    ) &
    SERVE_PID=$!
    wait_ready "$SERVE_PID" "http://$SERVE_QUERY_HTTP/healthz" "http://$SERVE_INGEST_HTTP/healthz" ||
        { log "serve not ready"; tail -20 "$EDIR/serve.log" >&2; exit 1; }
    "$BIN" cases open --url "http://$SERVE_QUERY_HTTP" --token "$E_TOKEN" --case "BENCH-$RUN" \
        --title "analytics benchmark $RUN" --category robbery --ends 7d \
        --reason "benchmark run" >&2
    E_PARTS=$(curl -fsS "http://$SERVE_QUERY_HTTP/metrics" | awk '$1 == "camtrail_embedded_parts" { print $2 }')
    E_BYTES=$(( $(stat -c %s "$EDB") + $(du -sb "$EDB.parts" | cut -f1) ))
    log "embedded: $SCENES scenes, $SERIES series, $COTRAVEL co-travels (after $WARMUP of each), API ($E_PARTS parts)"
    LOAD_BEFORE=$(machine)
    T0=$(date +%s)
    "$BENCH" run --backend embedded --api "http://$SERVE_QUERY_HTTP" --token "$E_TOKEN" \
        --cameras "$CAMERAS" --start "$E_START_MS" --end "$E_END_MS" --run-id "$RUN" \
        --scenes "$SCENES" --series "$SERIES" --cotravel "$COTRAVEL" --warmup "$WARMUP" \
        | tee "$OUT/embedded.json" >&2
    E_S=$(( $(date +%s) - T0 ))
    LOAD_AFTER=$(machine)
    E_RSS=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVE_PID/status")
    curl -fsS "http://$SERVE_QUERY_HTTP/metrics" >"$OUT/embedded-metrics.txt" 2>/dev/null || true
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=""
    echo "{\"rows\": $EMBEDDED_ROWS, \"plates\": $PLATES, \"start_ms\": $E_START_MS, \"fill_s\": $FILL_S, \"parts\": \"$E_PARTS\", \"bytes\": $E_BYTES, \"rss_mib\": $E_RSS, \"prewarm_s\": \"$E_PREWARM_S\", \"run_s\": $E_S, \"machine\": \"$LOAD_BEFORE at the start, $LOAD_AFTER at the end\"}" >"$OUT/embedded-setup.json"
fi
trap - EXIT

TOTAL_S=$(( $(date +%s) - T_START ))
log "whole run $TOTAL_S s"
python3 - "$OUT" "$(build_label)" "$ROWS" "$DB" "$SCENES" "$SERIES" "$COTRAVEL" "$WARMUP" "$PREWARM" "$TOTAL_S" <<'PY'
import datetime, json, os, sys
out, label, rows, db, scenes, series, cotravel, warmup, prewarm, total_s = sys.argv[1:11]
def lines(name):
    path = f"{out}/{name}"
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
def load(name):
    path = f"{out}/{name}"
    return json.load(open(path)) if os.path.exists(path) else None
TARGET = {"scene": 100, "series": 500, "cotravel": 1000}
WHAT = {
    "scene": "scene, 1 km × 1 h",
    "series": "series, 5 scenes of 1 km × 2 h",
    "cotravel": "co-travel, 60-sighting target × 1 day",
}
def audit(name, where):
    # The node's camtrail_query_audit_write_seconds: mean, and the bucket 99% fall within.
    path = f"{out}/{name}"
    if not os.path.exists(path):
        return ""
    total, count, buckets = 0.0, 0, []
    for line in open(path):
        if line.startswith("camtrail_query_audit_write_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("camtrail_query_audit_write_seconds_count"):
            count = int(float(line.split()[-1]))
        elif line.startswith("camtrail_query_audit_write_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), int(float(line.split()[-1]))))
    if not count:
        return ""
    p99 = next(le for le, n in sorted(buckets) if n >= 0.99 * count)
    return (f" Audit writes ({where}, from the node's `camtrail_query_audit_write_seconds`, {count} of them,"
            f" warm-up included): mean {total / count * 1000:.1f} ms, 99% within {p99 * 1000:g} ms.")
def verdict(p99, kind):
    return f"{'met' if p99 < TARGET[kind] else '**missed**'} (< {TARGET[kind]:,} ms)"
def sizes(kind, a, s=None):
    if kind == "scene":
        text = f"{a['mean_cameras']:.0f} cameras, {a['mean_vehicles']:.1f} vehicles ({a['mean_sightings']:.1f} sightings)"
    elif kind == "series":
        text = f"{a['mean_cameras']:.0f} cameras over the 5 scenes, {a['mean_hits']:.2f} hits"
    else:
        found = a.get("planted_companion_first", 0)
        text = (f"{a['mean_target_sightings']:.1f} target sightings, {a['mean_companions']:.2f} companions; "
                f"planted companion ranked first in {found} of {a['requests']}")
    return text + f"; answer {a['mean_body_bytes'] / 1024:.0f} KiB"
text = f"\n## Investigative analytics (issue 17) — {datetime.date.today().isoformat()}, build {label}\n"
text += f"""
Command: `benches/analytics.sh` (SCENES={scenes}, SERIES={series}, COTRAVEL={cotravel}, WARMUP={warmup},
PREWARM={prewarm}). One 2-core machine runs ClickHouse 18.16, Kafka, the node, the benchmark
client, and whatever else its users run (the load and pressure figures below say how busy it
was). One request at a time, a supervisor token (five scenes need one). Scenes: a 1 km
circle around a random registry camera over a random hour of the 30 days (`limit` 1000).
Series: five 1 km circles over 2 h each; every second series is random, the others centre
their five scenes on five sightings of a planted target, ±1 h (the incident-style search, with
the target and its companion to find). Co-travel: one of 20 planted targets (60 sightings
along nearby cameras in one day, a companion 20–40 s behind at ~80% of them) over its day,
default thresholds (≥ 4 shared cameras within ±60 s over ≥ 10 min). {warmup} unrecorded
requests of each search (other scenes, same targets) go first.
"""
ch, chs, ql = lines("clickhouse.json"), load("clickhouse-setup.json"), lines("query_log.json")
if ch:
    by = {(l["kind"], l["mode"]): l for l in ch}
    read = {q["kind"]: q for q in ql}
    text += f"""
**ClickHouse, {int(rows):,} rows** (`{db}`, 30 days, 3,000,000 plates, 140,000 cameras, plus
{chs['planted']:,} planted rows; `detections_by_hour` {chs['parts']} active parts, {chs['disk'] / 2**30:.1f} GiB;
{"its read columns read once into the page cache first (" + chs['prewarm_s'] + " s)" if chs['prewarm_s'] != '-' else "no page-cache warm-up"}).
Each request through `camtrail query`'s HTTP API (token, area → cameras, one ClickHouse read
per search — two for co-travel —, analysis, audit record to Kafka with acks=all, JSON) and
as the node's bare SQL over ClickHouse HTTP (the same text and values, `RowBinary`), one right
after the other, alternating which goes first. {chs['audited']} audit records on the run's topic;
{chs['run_s']} s. The machine (1-minute load average of 2 cores; share of the last minute some task
waited for CPU, for I/O): {chs['machine']}.{audit("query-metrics.txt", "to Kafka, acks=all")}

| search | requests | API p50 / p99 / max, ms | bare SQL p50 / p99 / max, ms | p99 target | rows read per bare query, avg / max (returned) | result (API, mean) |
|---|---|---|---|---|---|---|
"""
    for kind in ("scene", "series", "cotravel"):
        a, s = by.get((kind, "api")), by.get((kind, "sql"))
        if not a:
            continue
        if kind == "cotravel":
            t, w = read.get("cotravel_target", {}), read.get("cotravel_around", {})
            rr = (f"target {int(t.get('avg_read', 0)):,} / {int(t.get('max_read', 0)):,} ({t.get('avg_result', 0)}); "
                  f"around {int(w.get('avg_read', 0)):,} / {int(w.get('max_read', 0)):,} ({w.get('avg_result', 0)})")
        else:
            q = read.get(kind, {})
            rr = f"{int(q.get('avg_read', 0)):,} / {int(q.get('max_read', 0)):,} ({q.get('avg_result', 0)})"
        text += (f"| {WHAT[kind]} | {a['requests']} | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} / {a['max_ms']:.1f} "
                 f"| {s['p50_ms']:.1f} / {s['p99_ms']:.1f} / {s['max_ms']:.1f} | {verdict(a['p99_ms'], kind)} "
                 f"| {rr} | {sizes(kind, a)} |\n")
def prewarmed(setup):
    seconds = setup.get("prewarm_s", "-")
    return "" if seconds == "-" else f"; its files read once into the page cache first ({seconds} s)"
em, ems = lines("embedded.json"), load("embedded-setup.json")
if em:
    by = {l["kind"]: l for l in em}
    text += f"""
**Embedded, {ems['rows']:,} rows** (`camtrail serve`, bundled SQLite: {ems['rows']:,} detections drawn
as the ClickHouse load draws them — plate of 3,000,000, camera and time uniform over 30 days —
but written in capture order, as a live node receives them, through `SqliteStore::write` by the
benchmark client ({ems['fill_s']} s when filled), plus the same planted rows; {ems['parts']} parts,
{ems['bytes'] / 2**30:.2f} GiB; peak RSS of `serve` {ems['rss_mib']} MiB{prewarmed(ems)}). Through the HTTP API
(audit record committed to the same database before the answer); {ems['run_s']} s. The
machine: {ems['machine']}.{audit("embedded-metrics.txt", "a SQLite commit each, synchronous=FULL")}

| search | requests | API p50 / p90 / p99 / max, ms | p99 target | result (mean) |
|---|---|---|---|---|
"""
    for kind in ("scene", "series", "cotravel"):
        a = by.get(kind)
        if a:
            text += (f"| {WHAT[kind]} | {a['requests']} | {a['p50_ms']:.1f} / {a['p90_ms']:.1f} / {a['p99_ms']:.1f} / {a['max_ms']:.1f} "
                     f"| {verdict(a['p99_ms'], kind)} | {sizes(kind, a)} |\n")
text += f"\nWhole run {int(total_s) // 60} min {int(total_s) % 60} s.\n"
with open(os.environ.get("BENCH_MD", "BENCHMARKS.md"), "a") as f:
    f.write(text)
print(text)
PY
