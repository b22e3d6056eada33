#!/usr/bin/env bash
# The cluster against the single node at the same steady load (issue 19's figures):
#   (a) single node: `camtrail ingest`, `sink`, `query`, one broker, one ClickHouse server
#       (deploy/local/services.sh);
#   (b) cluster: 2 ingest, 2 sinks, 2 query nodes of this build on deploy/cluster/cluster.sh
#       (3 brokers RF 3, ClickHouse 2 shards x 2 replicas, ZooKeeper), tables from
#       `camtrail migrate --cluster camtrail`.
# Each: the load generator at RATE events/s for DURATION + 5 s (over both ingest nodes in
# (b)); the freshness probe (benches/freshness_probe.rs: ack → in a track answer) meanwhile;
# the CPU seconds every process used during the run (/proc/PID/stat, utime + stime).
# Appends both tables to BENCHMARKS.md.
#
#   benches/cluster.sh      # RATE=20000 DURATION=30 INTERVAL_MS=500 CAMERAS=140000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/common/run.sh
. benches/common/run.sh
RATE="${RATE:-20000}"
DURATION="${DURATION:-30}"
INTERVAL_MS="${INTERVAL_MS:-500}"
CAMERAS="${CAMERAS:-140000}"
GATEWAYS="${GATEWAYS:-300}"
OUT="${OUT:-target/bench-cluster}"
BIN=target/release/camtrail
PROBE=target/release/examples/freshness_probe
CH_URLS=(http://127.0.0.1:18123 http://127.0.0.1:18124 http://127.0.0.1:18125 http://127.0.0.1:18126)
CLUSTER_BROKERS=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
TICK="$(getconf CLK_TCK)"

log() { printf '[cluster-bench] %s\n' "$*" >&2; }

cargo build --release -q -p camtrail
cargo build --release -q -p camtrail --example freshness_probe
deploy/local/services.sh up >&2
deploy/cluster/cluster.sh up >&2
rm -rf "$OUT" && mkdir -p "$OUT" && chmod 700 "$OUT"

log "city ($CAMERAS cameras, $GATEWAYS gateways), gateway tokens, the probe's supervisor"
"$BIN" city --seed 7 --cameras "$CAMERAS" --gateways "$GATEWAYS" --out "$OUT/city" >&2
"$BIN" gateways issue --registry "$OUT/city/cameras.csv" --out "$OUT/tokens" >&2
TOKEN=$("$BIN" users issue --name probe --role supervisor --users "$OUT/users.toml" 2>/dev/null)
read -r CAMERA GATEWAY < <(awk -F, 'NR == 2 { print $1, $7 }' "$OUT/city/cameras.csv")
# (Compared as text: awk compares 20-digit ids as numbers, and several would be equal.)
GATEWAY_TOKEN=$(awk -F, -v g="$GATEWAY" '$1 "" == g "" { print $2 }' "$OUT/tokens/gateway_tokens.csv")

use_run clbench
unset CAMTRAIL_KAFKA__BROKERS CAMTRAIL_CLICKHOUSE__DATABASE
cat >"$OUT/common.toml" <<EOF
[kafka]
detections_topic = "$RUN.detections.v1"
dead_letter_topic = "$RUN.dlq.v1"
audit_topic = "$RUN.audit.v1"
alerts_topic = "$RUN.alerts.v1"

[clickhouse]
database = "$RUN"

[ingest]
registry_path = "$OUT/city/cameras.csv"
gateway_tokens_path = "$OUT/tokens/gateway_token_hashes.csv"

[sink]
group_id = "$RUN-sink"

[query]
registry_path = "$OUT/city/cameras.csv"
users_path = "$OUT/users.toml"
EOF
# The single node: the defaults (127.0.0.1:9092, 127.0.0.1:8123) for the rest.
cp "$OUT/common.toml" "$OUT/single.toml"
# The cluster's settings on top of the same sections (TOML: one table each, so the file is
# written whole).
sed -e "s|^\[kafka\]|[kafka]\nbrokers = \"$CLUSTER_BROKERS\"\nreplication_factor = 3\ndetections_partitions = 12|" \
    -e "s|^\[clickhouse\]|[clickhouse]\nurl = \"${CH_URLS[0]}\"\nfailover_urls = [\"${CH_URLS[1]}\", \"${CH_URLS[2]}\", \"${CH_URLS[3]}\"]\ncluster = \"camtrail\"\nshards = [[\"${CH_URLS[0]}\", \"${CH_URLS[1]}\"], [\"${CH_URLS[2]}\", \"${CH_URLS[3]}\"]]|" \
    "$OUT/common.toml" >"$OUT/cluster.toml"

PIDS=()
NAMES=()
stop_all() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    NAMES=()
}
cleanup() {
    stop_all
    $CH -q "DROP DATABASE IF EXISTS $RUN" >/dev/null 2>&1 || true
    clickhouse-client --port 19101 -q "DROP DATABASE IF EXISTS $RUN ON CLUSTER camtrail" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# start NAME CONFIG ROLE READY_URL [ENV=VALUE...]
start() {
    local name="$1" config="$2" role="$3" ready="$4"
    shift 4
    env "$@" "$BIN" --config "$config" "$role" 2>"$OUT/$name.log" &
    local pid=$!
    PIDS+=("$pid")
    NAMES+=("$name")
    wait_ready "$pid" "$ready" || { log "$name did not start:"; tail -20 "$OUT/$name.log" >&2; exit 1; }
}

cpu_of() { # PID: CPU seconds used so far (0 if gone)
    awk -v t="$TICK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Services' pids by name (the cluster's pid files; the single node's).
service_pids() { # MODE
    if [ "$1" = single ]; then
        echo "kafka $(cat .local/kafka/kafka.pid)"
        echo "clickhouse $(cat .local/clickhouse/clickhouse.pid)"
    else
        for n in zookeeper kafka-1 kafka-2 kafka-3 ch-1-1 ch-1-2 ch-2-1 ch-2-2; do
            echo "$n $(cat ".local/cluster/$n/pid")"
        done
    fi
}

# measure MODE INGEST_TARGETS QUERY_HTTP: load + probe; rows to $OUT/rows.MODE, CPU to $OUT/cpu.MODE
measure() {
    local mode="$1" targets="$2" query="$3" case="FRESH-$RUN-$1" i
    "$BIN" cases open --url "http://$query" --token "$TOKEN" --case "$case" \
        --title "cluster bench $RUN" --category robbery --ends 7d --reason "benchmark run" >&2
    declare -A before=()
    local all=()
    while read -r name pid; do all+=("$name:$pid"); done < <(service_pids "$mode")
    for i in "${!PIDS[@]}"; do all+=("${NAMES[$i]}:${PIDS[$i]}"); done
    for entry in "${all[@]}"; do before[$entry]="$(cpu_of "${entry#*:}")"; done
    log "($mode) $RATE events/s for $((DURATION + 5)) s; a probe every $INTERVAL_MS ms after 3 s"
    "$BIN" loadgen --registry "$OUT/city/cameras.csv" --cameras "$CAMERAS" \
        --city-gateways "$GATEWAYS" --target "$targets" \
        --tokens "$OUT/tokens/gateway_tokens.csv" --rate "$RATE" --duration "$((DURATION + 5))" \
        --batch-size 500 --quiet --report "$OUT/$mode.load.json" >"$OUT/$mode.load.txt" 2>&1 &
    local load=$!
    sleep 3
    local first="${targets%%,*}"
    "$PROBE" "${first#http://}" "$query" "$GATEWAY" "$GATEWAY_TOKEN" "$CAMERA" "$TOKEN" \
        "$case" "$((DURATION * 1000 / INTERVAL_MS))" "$INTERVAL_MS" >"$OUT/$mode.probe.txt"
    wait "$load"
    : >"$OUT/cpu.$mode"
    for entry in "${all[@]}"; do
        awk -v n="${entry%%:*}" -v a="${before[$entry]}" -v b="$(cpu_of "${entry#*:}")" \
            'BEGIN { printf "%s %.1f\n", n, b - a }' >>"$OUT/cpu.$mode"
    done
    local achieved
    achieved=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['achieved_rate_eps']))" "$OUT/$mode.load.json")
    get() { awk -v k="$1" '$1 == k { print $2 }' "$OUT/$mode.probe.txt"; }
    echo "| $mode | $RATE / $achieved | $(get seen) of $(get probes) | $(get p50) / $(get p99) / $(get max) | $(awk '{ s += $2 } END { printf "%.1f", s }' "$OUT/cpu.$mode") |" >"$OUT/rows.$mode"
}

log "(a) single node"
"$BIN" --config "$OUT/single.toml" migrate >&2
start ingest "$OUT/single.toml" ingest http://127.0.0.1:8191/healthz \
    CAMTRAIL_INGEST__GRPC_ADDR=127.0.0.1:50191 CAMTRAIL_INGEST__HTTP_ADDR=127.0.0.1:8191
start sink "$OUT/single.toml" sink http://127.0.0.1:8193/healthz CAMTRAIL_SINK__HTTP_ADDR=127.0.0.1:8193
start query "$OUT/single.toml" query http://127.0.0.1:8190/healthz \
    CAMTRAIL_QUERY__HTTP_ADDR=127.0.0.1:8190 CAMTRAIL_QUERY__GRPC_ADDR=127.0.0.1:50190
measure single "http://127.0.0.1:50191" 127.0.0.1:8190
stop_all

log "(b) cluster"
"$BIN" --config "$OUT/cluster.toml" migrate --cluster camtrail >&2
for n in 1 2; do
    start "ingest-$n" "$OUT/cluster.toml" ingest "http://127.0.0.1:820$n/healthz" \
        "CAMTRAIL_INGEST__GRPC_ADDR=127.0.0.1:5020$n" "CAMTRAIL_INGEST__HTTP_ADDR=127.0.0.1:820$n"
    start "sink-$n" "$OUT/cluster.toml" sink "http://127.0.0.1:821$n/healthz" \
        "CAMTRAIL_SINK__HTTP_ADDR=127.0.0.1:821$n" "CAMTRAIL_SINK__INSTANCE_ID=$RUN-sink-$n"
done
start query-1 "$OUT/cluster.toml" query http://127.0.0.1:8221/healthz \
    CAMTRAIL_QUERY__HTTP_ADDR=127.0.0.1:8221 CAMTRAIL_QUERY__GRPC_ADDR=127.0.0.1:50221
start query-2 "$OUT/cluster.toml" query http://127.0.0.1:8222/healthz \
    CAMTRAIL_QUERY__HTTP_ADDR=127.0.0.1:8222 CAMTRAIL_QUERY__GRPC_ADDR=127.0.0.1:50222 \
    "CAMTRAIL_CLICKHOUSE__URL=${CH_URLS[2]}" \
    "CAMTRAIL_CLICKHOUSE__FAILOVER_URLS=[\"${CH_URLS[3]}\",\"${CH_URLS[0]}\",\"${CH_URLS[1]}\"]"
measure cluster "http://127.0.0.1:50201,http://127.0.0.1:50202" 127.0.0.1:8221
stop_all

TABLE=$(
    echo "| deployment | load, target / achieved (events/s) | probes in an answer | ack → in a query answer, p50 / p99 / max (ms) | CPU s, all processes |"
    echo "|---|---|---|---|---|"
    cat "$OUT/rows.single" "$OUT/rows.cluster"
)
CPU=$(
    echo "| deployment | CPU seconds per process over the $((DURATION + 5)) s run |"
    echo "|---|---|"
    for mode in single cluster; do
        echo "| $mode | $(awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' "$OUT/cpu.$mode") |"
    done
)
echo "$TABLE"
echo "$CPU"
{
    echo
    echo "### Cluster vs single node at the same load ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)"
    echo
    echo "\`benches/cluster.sh\` (RATE=$RATE DURATION=$DURATION INTERVAL_MS=$INTERVAL_MS CAMERAS=$CAMERAS):"
    echo "(a) one broker, one ClickHouse server, one ingest, sink and query node; (b) the cluster of"
    echo "\`deploy/cluster/cluster.sh\` (3 brokers RF 3, ClickHouse 2 shards × 2 replicas, ZooKeeper)"
    echo "with 2 ingest, 2 sinks, 2 query nodes. The freshness probe as in \`benches/freshness.sh\`;"
    echo "CPU from /proc (utime + stime) of every process over the load run. Everything on this"
    echo "machine's $(nproc) cores, so the cluster's extra replicas and processes compete with the rest."
    echo
    echo "$TABLE"
    echo
    echo "$CPU"
} >>"${BENCH_MD:-BENCHMARKS.md}"
