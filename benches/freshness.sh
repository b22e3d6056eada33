#!/usr/bin/env bash
# Freshness (issue 19, part 5): ingest ack → the event in a query answer, at a steady load,
#   (a) distributed on one machine: `camtrail ingest`, `camtrail sink`, `camtrail query`
#       with the local single broker and ClickHouse server (fresh topics and database);
#   (b) embedded: `camtrail serve` on a fresh database.
# The load generator drives RATE events/s of the city's traffic; meanwhile the probe
# (benches/freshness_probe.rs) publishes one marked event every INTERVAL_MS and polls the
# track API (audited, under a case of its own) every 20 ms until the event is in the answer.
# Appends the table to BENCHMARKS.md.
#
#   benches/freshness.sh      # RATE=20000 DURATION=30 INTERVAL_MS=500 CAMERAS=140000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/common/run.sh
. benches/common/run.sh
RATE="${RATE:-20000}"
DURATION="${DURATION:-30}"
INTERVAL_MS="${INTERVAL_MS:-500}"
CAMERAS="${CAMERAS:-140000}"
GATEWAYS="${GATEWAYS:-300}"
OUT="${OUT:-target/bench-freshness}"
BIN=target/release/camtrail
PROBE=target/release/examples/freshness_probe
INGEST_GRPC=127.0.0.1:50181 INGEST_HTTP=127.0.0.1:8181
QUERY_GRPC=127.0.0.1:50182 QUERY_HTTP=127.0.0.1:8180
SINK_HTTP=127.0.0.1:8182

log() { printf '[freshness] %s\n' "$*" >&2; }

cargo build --release -q -p camtrail
cargo build --release -q -p camtrail --example freshness_probe
deploy/local/services.sh up >&2
rm -rf "$OUT" && mkdir -p "$OUT" && chmod 700 "$OUT"

log "city ($CAMERAS cameras, $GATEWAYS gateways), gateway tokens, the probe's supervisor"
"$BIN" city --seed 7 --cameras "$CAMERAS" --gateways "$GATEWAYS" --out "$OUT/city" >&2
"$BIN" gateways issue --registry "$OUT/city/cameras.csv" --out "$OUT/tokens" >&2
TOKEN=$("$BIN" users issue --name probe --role supervisor --users "$OUT/users.toml" 2>/dev/null)
# The probe publishes as the first camera's gateway, on a stream of its own.
read -r CAMERA GATEWAY < <(awk -F, 'NR == 2 { print $1, $7 }' "$OUT/city/cameras.csv")
# (Compared as text: awk compares 20-digit ids as numbers, and several would be equal.)
GATEWAY_TOKEN=$(awk -F, -v g="$GATEWAY" '$1 "" == g "" { print $2 }' "$OUT/tokens/gateway_tokens.csv")

use_run fresh
export CAMTRAIL_INGEST__GRPC_ADDR="$INGEST_GRPC" CAMTRAIL_INGEST__HTTP_ADDR="$INGEST_HTTP"
export CAMTRAIL_INGEST__REGISTRY_PATH="$OUT/city/cameras.csv"
export CAMTRAIL_INGEST__GATEWAY_TOKENS_PATH="$OUT/tokens/gateway_token_hashes.csv"
export CAMTRAIL_QUERY__GRPC_ADDR="$QUERY_GRPC" CAMTRAIL_QUERY__HTTP_ADDR="$QUERY_HTTP"
export CAMTRAIL_QUERY__REGISTRY_PATH="$OUT/city/cameras.csv"
export CAMTRAIL_QUERY__USERS_PATH="$OUT/users.toml"
export CAMTRAIL_SINK__GROUP_ID="$RUN-sink" CAMTRAIL_SINK__HTTP_ADDR="$SINK_HTTP"
export CAMTRAIL_SERVE__DATABASE_PATH="$OUT/embedded.db"

PIDS=()
stop_all() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
cleanup() {
    stop_all
    drop_run
}
trap cleanup EXIT

start() { # ROLE READY_URL
    "$BIN" "$1" 2>"$OUT/$1.log" &
    local pid=$!
    PIDS+=("$pid")
    wait_ready "$pid" "$2" || { log "$1 did not start:"; tail -20 "$OUT/$1.log" >&2; exit 1; }
}

# measure MODE: the load, the probe meanwhile; appends a table row to $OUT/rows.
measure() {
    local case="FRESH-$RUN-$1"
    "$BIN" cases open --url "http://$QUERY_HTTP" --token "$TOKEN" --case "$case" \
        --title "freshness probe $RUN" --category robbery --ends 7d --reason "benchmark run" >&2
    log "($1) $RATE events/s for $((DURATION + 5)) s; a probe every $INTERVAL_MS ms after 3 s"
    "$BIN" loadgen --registry "$OUT/city/cameras.csv" --cameras "$CAMERAS" \
        --city-gateways "$GATEWAYS" --target "http://$INGEST_GRPC" \
        --tokens "$OUT/tokens/gateway_tokens.csv" --rate "$RATE" --duration "$((DURATION + 5))" \
        --batch-size 500 --quiet --report "$OUT/$1.load.json" >"$OUT/$1.load.txt" 2>&1 &
    local load=$!
    sleep 3
    "$PROBE" "$INGEST_GRPC" "$QUERY_HTTP" "$GATEWAY" "$GATEWAY_TOKEN" "$CAMERA" "$TOKEN" \
        "$case" "$((DURATION * 1000 / INTERVAL_MS))" "$INTERVAL_MS" >"$OUT/$1.probe.txt"
    wait "$load"
    local achieved
    achieved=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['achieved_rate_eps']))" "$OUT/$1.load.json")
    get() { awk -v k="$1" '$1 == k { print $2 }' "$OUT/$2.probe.txt"; }
    echo "| $2 | $RATE / $achieved | $(get seen "$1") of $(get probes "$1") | $(get p50 "$1") / $(get p99 "$1") / $(get max "$1") | $(get polls "$1") |" >>"$OUT/rows"
}

"$BIN" migrate >&2
start ingest "http://$INGEST_HTTP/healthz"
start sink "http://$SINK_HTTP/healthz"
start query "http://$QUERY_HTTP/healthz"
measure distributed "(a) distributed, one machine: ingest + sink (batches of ≤ 1 s) + query, one broker, one ClickHouse"
stop_all

start serve "http://$QUERY_HTTP/healthz"
measure embedded "(b) embedded, \`camtrail serve\`"
stop_all

TABLE=$(
    echo "| mode | load, target / achieved (events/s) | probes in an answer | ack → in a query answer, p50 / p99 / max (ms) | track queries made |"
    echo "|---|---|---|---|---|"
    cat "$OUT/rows"
)
echo "$TABLE"
{
    echo
    echo "### Freshness, single node ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)"
    echo
    echo "\`benches/freshness.sh\` (RATE=$RATE DURATION=$DURATION INTERVAL_MS=$INTERVAL_MS CAMERAS=$CAMERAS):"
    echo "the load generator drives the city's traffic at RATE; a probe publishes one marked event"
    echo "every INTERVAL_MS on a stream of its own and polls \`GET /v1/track\` for its plate every"
    echo "20 ms (each an audited search under a case of its own) until the event is in the answer;"
    echo "the time from the probe's ack to that answer. Everything on this machine."
    echo
    echo "$TABLE"
} >>"${BENCH_MD:-BENCHMARKS.md}"
