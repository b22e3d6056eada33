#!/usr/bin/env bash
# Watchlist alerts in the distributed mode (issue 18), every role a process on this machine
# against the local single Kafka broker and ClickHouse server:
#   (a) ack → hit on the query node's Server-Sent Events stream at a steady RATE with
#       ENTRIES approved entries (1% fuzzy): `camtrail ingest` acks, `camtrail alert`
#       (a consumer group on the detections topic) matches, stores the hits in ClickHouse
#       and relays them on the alerts topic, `camtrail query` streams them;
#   (b) ingest at open throttle without the alert role (and query node), before they start;
#       with them running; and without again after they stop (the change is against the
#       mean of the two runs without, so a drift over the bench does not count for or
#       against the role).
# Client side: benches/alerts_distributed_bench.rs. CPU seconds of each process during (a).
# Fresh topics (12 partitions) and database per run, dropped at the end; appends the table
# to BENCHMARKS.md.
#
#   benches/alerts_distributed.sh       # RATE=100000 DURATION=20 ENTRIES=10000 OPEN=10
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/common/run.sh
. benches/common/run.sh
RATE="${RATE:-100000}"
DURATION="${DURATION:-20}"
ENTRIES="${ENTRIES:-10000}"
OPEN="${OPEN:-10}"
PARTITIONS="${PARTITIONS:-12}"
OUT="${OUT:-target/bench-alerts-distributed}"
BIN=target/release/camtrail
BENCH=target/release/examples/alerts_distributed_bench
INGEST_GRPC=127.0.0.1:50071 INGEST_HTTP=127.0.0.1:8071
QUERY_GRPC=127.0.0.1:50072 QUERY_HTTP=127.0.0.1:8072

log() { printf '[alerts-distributed] %s\n' "$*" >&2; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }

cargo build --release -q -p camtrail
cargo build --release -q -p camtrail --example alerts_distributed_bench
deploy/local/services.sh up >&2
rm -rf "$OUT" && mkdir -p "$OUT"
chmod 700 "$OUT"

use_run alertbench
export CAMTRAIL_KAFKA__DETECTIONS_PARTITIONS="$PARTITIONS"
export CAMTRAIL_INGEST__GRPC_ADDR="$INGEST_GRPC" CAMTRAIL_INGEST__HTTP_ADDR="$INGEST_HTTP"
export CAMTRAIL_INGEST__REGISTRY_PATH="$OUT/cameras.csv"
export CAMTRAIL_INGEST__GATEWAY_TOKENS_PATH="$OUT/hashes.csv"
export CAMTRAIL_QUERY__GRPC_ADDR="$QUERY_GRPC" CAMTRAIL_QUERY__HTTP_ADDR="$QUERY_HTTP"
export CAMTRAIL_QUERY__REGISTRY_PATH="$OUT/cameras.csv"
export CAMTRAIL_QUERY__USERS_PATH="$OUT/users.toml"
export CAMTRAIL_ALERT__GROUP_ID="$RUN-alert"
# From the end of the topic: the records of the first run without the role are not its
# backlog (the warm-up of (a) covers the group's first assignment).
export CAMTRAIL_ALERT__AUTO_OFFSET_RESET=latest
export RUST_LOG=info

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    drop_run
}
trap cleanup EXIT

"$BIN" migrate >&2
log "preparing $ENTRIES approved entries in $RUN"
"$BENCH" prepare "$OUT" "$ENTRIES" http://127.0.0.1:8123 "$RUN"

"$BIN" ingest 2>"$OUT/ingest.log" &
INGEST_PID=$!
PIDS+=("$INGEST_PID")
wait_ready "$INGEST_PID" "http://$INGEST_HTTP/healthz" || { tail -20 "$OUT/ingest.log" >&2; exit 1; }
# Read through ${!pid} in cpu_of.
# shellcheck disable=SC2034
KAFKA_PID=$(cat .local/kafka/kafka.pid) CH_PID=$(cat .local/clickhouse/clickhouse.pid)
# cpu_of CMD...: run CMD; CPU_OF is then the CPU seconds each of PROCS used meanwhile.
cpu_of() {
    local -A before
    local p pid
    for p in "${PROCS[@]}"; do pid="${p}_PID"; before[$p]=$(cpu_s "${!pid}"); done
    "$@"
    CPU_OF=""
    for p in "${PROCS[@]}"; do
        pid="${p}_PID"
        CPU_OF+="$(minus "$(cpu_s "${!pid}")" "${before[$p]}") / "
    done
    CPU_OF="${CPU_OF% / }"
}
open_throttle() { "$BENCH" open "$OUT" "$INGEST_GRPC" "$OPEN" | awk '{ print $2 }' >"$OUT/$1.txt"; }

log "(b) open throttle for $OPEN s without the alert role, before it starts"
PROCS=(INGEST KAFKA CH)
cpu_of open_throttle before
CPU_BEFORE="$CPU_OF" BEFORE=$(cat "$OUT/before.txt")

"$BIN" query 2>"$OUT/query.log" &
QUERY_PID=$!
PIDS+=("$QUERY_PID")
wait_ready "$QUERY_PID" "http://$QUERY_HTTP/healthz" || { tail -20 "$OUT/query.log" >&2; exit 1; }
"$BIN" alert 2>"$OUT/alert.log" &
ALERT_PID=$!
PIDS+=("$ALERT_PID")

log "(a) ack → SSE at $RATE events/s for $DURATION s"
latency() { "$BENCH" latency "$OUT" "$INGEST_GRPC" "$QUERY_HTTP" "$RATE" "$DURATION" >"$OUT/a.txt"; }
PROCS=(INGEST ALERT QUERY KAFKA CH)
cpu_of latency
CPU_A="$CPU_OF"
kill -0 "$ALERT_PID" || { tail -20 "$OUT/alert.log" >&2; exit 1; }
get() { awk -v k="$1" '$1 == k { print $2 }' "$OUT/a.txt"; }

log "(b) open throttle for $OPEN s with the alert role running"
cpu_of open_throttle with
CPU_WITH="$CPU_OF" WITH=$(cat "$OUT/with.txt")
HITS=$($CH -q "SELECT uniqExact(hit_id) FROM $RUN.watchlist_hits")
for pid in "$ALERT_PID" "$QUERY_PID"; do kill -TERM "$pid"; wait "$pid" || true; done
PIDS=("$INGEST_PID")
PROCS=(INGEST KAFKA CH)
log "(b) open throttle for $OPEN s without the alert role, after it stopped"
cpu_of open_throttle after
CPU_AFTER="$CPU_OF" AFTER=$(cat "$OUT/after.txt")
CHANGE=$(awk -v w="$WITH" -v b="$BEFORE" -v a="$AFTER" 'BEGIN { printf "%+.1f%%", (w / ((b + a) / 2) - 1) * 100 }')

TABLE=$(cat <<EOF
| figure | value |
|---|---|
| (a) steady ingest, target / achieved (events/s) | $RATE / $(get achieved) ($(get acked) acked in $DURATION s, 8 streams, batches of 1,000, $PARTITIONS partitions) |
| (a) planted reads acked / hits received on the SSE stream | $(get planted) / $(get received) |
| (a) ack → hit on the query node's SSE stream, p50 / p99 / max (ms), $ENTRIES entries (1% fuzzy) | $(get p50) / $(get p99) / $(get max) |
| (a) CPU s over the run: ingest / alert role / query node / Kafka / ClickHouse | $CPU_A |
| (b) ingest at open throttle for $OPEN s: without the alert role and query node (before they start) / with them / without (after they stop) (events/s) | $BEFORE / $WITH / $AFTER |
| (b) with the role against the mean of the two runs without | $CHANGE |
| (b) CPU s without (before): ingest / Kafka / ClickHouse | $CPU_BEFORE |
| (b) CPU s with: ingest / alert role / query node / Kafka / ClickHouse | $CPU_WITH |
| (b) CPU s without (after): ingest / Kafka / ClickHouse | $CPU_AFTER |
| hits stored in ClickHouse by the end of (b), distinct | $HITS |
EOF
)
echo "$TABLE"
{
    echo
    echo "### Watchlist alerts, distributed ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)"
    echo
    echo "\`benches/alerts_distributed.sh\` (RATE=$RATE DURATION=$DURATION ENTRIES=$ENTRIES OPEN=$OPEN):"
    echo "\`camtrail ingest\`, \`camtrail alert\` and \`camtrail query\` as processes with one Kafka broker"
    echo "and one ClickHouse server, all on this machine with the gateway streams and the SSE client;"
    echo "one read in 1,000 is of a listed plate; latency from the publisher seeing its batch's ack"
    echo "to the hit arriving on the query node's \`/v1/alerts/stream\` (matched, stored in"
    echo "ClickHouse, relayed over \`alerts.v1\`). Publishing starts with a warm-up until the first"
    echo "hit arrives (the group's first assignment), which is not counted."
    echo
    echo "$TABLE"
} >>"${BENCH_MD:-BENCHMARKS.md}"
