#!/usr/bin/env bash
# GA/T 1400 ingest benchmark: the same synthetic vehicles into `camtrail serve` (embedded,
# bundled SQLite, an answer only once the records are committed), once over gRPC and once as
# GA/T 1400 platforms (Digest-authenticated JSON over HTTP/1.1), with the load generator on
# the same box:
#   (a) events/s acked, open throttle, EVENTS events (vehicles only, --seed 101), each
#       protocol into a fresh database;
#   (b) ack latency p50/p99/max paced at RATE_B events/s (default half of the slower
#       protocol's (a), so both run below saturation) for HALF_SECS seconds, fresh databases;
#   the ratio GA/T 1400 / gRPC of (a). Appends a "GA/T 1400 ingest" section to BENCHMARKS.md.
#
#   benches/gat1400.sh       # EVENTS=500000 BATCH=500 HALF_SECS=20
#   BIN=target/debug/camtrail SKIP_BUILD=1 EVENTS=20000 HALF_SECS=5 CAMERAS=3000 \
#       BENCH_MD=/tmp/gat1400.md benches/gat1400.sh   # a quick smoke run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/common/profile.sh
. benches/common/profile.sh
EVENTS="${EVENTS:-500000}"
BATCH="${BATCH:-500}"
HALF_SECS="${HALF_SECS:-20}"
CAMERAS="${CAMERAS:-140000}"
GATEWAYS="${GATEWAYS:-300}"
OUT="${OUT:-target/bench-gat1400}"
BENCH_MD="${BENCH_MD:-BENCHMARKS.md}"
BIN="${BIN:-target/release/camtrail}"
LABEL="${LABEL:-$(build_label)}"
ZONE=Asia/Shanghai
# Ports away from the defaults and from the other benchmarks.
INGEST_GRPC=127.0.0.1:50161
INGEST_HTTP=127.0.0.1:8191
GAT1400=127.0.0.1:8192
QUERY_HTTP=127.0.0.1:8190
QUERY_GRPC=127.0.0.1:50162

log() { printf '[gat1400-bench] %s\n' "$*" >&2; }

for addr in "$INGEST_HTTP" "$QUERY_HTTP"; do
    if curl -fsS --max-time 1 "http://$addr/healthz" >/dev/null 2>&1; then
        log "something already answers on $addr; stop it first"
        exit 1
    fi
done
if [ -z "${SKIP_BUILD:-}" ]; then
    log "building (release)"
    cargo build --release -q -p camtrail
fi
rm -rf "$OUT" && mkdir -p "$OUT"

log "city ($CAMERAS cameras, $GATEWAYS gateways), gateway tokens, GA/T 1400 credentials, bench user"
"$BIN" city --seed 7 --cameras "$CAMERAS" --gateways "$GATEWAYS" --out "$OUT/city" >&2
"$BIN" gateways issue --registry "$OUT/city/cameras.csv" --out "$OUT/tokens" >&2
"$BIN" gat1400 issue --registry "$OUT/city/cameras.csv" --out "$OUT/gat1400" \
    --realm camtrail --time-zone "$ZONE" >&2
"$BIN" users issue --name bench --role investigator --users "$OUT/users.toml" >/dev/null 2>&1

export CAMTRAIL_INGEST__GRPC_ADDR="$INGEST_GRPC"
export CAMTRAIL_INGEST__HTTP_ADDR="$INGEST_HTTP"
export CAMTRAIL_INGEST__REGISTRY_PATH="$OUT/city/cameras.csv"
export CAMTRAIL_INGEST__GATEWAY_TOKENS_PATH="$OUT/tokens/gateway_token_hashes.csv"
export CAMTRAIL_INGEST__GAT1400__ENABLED=true
export CAMTRAIL_INGEST__GAT1400__ADDR="$GAT1400"
export CAMTRAIL_INGEST__GAT1400__DEVICES_PATH="$OUT/gat1400/gat1400_devices.csv"
export CAMTRAIL_INGEST__GAT1400__REALM=camtrail
export CAMTRAIL_QUERY__HTTP_ADDR="$QUERY_HTTP"
export CAMTRAIL_QUERY__GRPC_ADDR="$QUERY_GRPC"
export CAMTRAIL_QUERY__REGISTRY_PATH="$OUT/city/cameras.csv"
export CAMTRAIL_QUERY__USERS_PATH="$OUT/users.toml"

SERVE_PID=
stop_serve() {
    if [ -n "$SERVE_PID" ]; then
        kill -TERM "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
        SERVE_PID=
    fi
}
trap stop_serve EXIT

# Start `camtrail serve` on a fresh database ($1: run name).
start_serve() {
    export CAMTRAIL_SERVE__DATABASE_PATH="$OUT/$1.db"
    log "starting camtrail serve on $OUT/$1.db (log: $OUT/$1.serve.log)"
    NO_COLOR=1 "$BIN" serve 2>"$OUT/$1.serve.log" &
    SERVE_PID=$!
    for _ in $(seq 600); do
        kill -0 "$SERVE_PID" 2>/dev/null || {
            log "serve exited during start-up:"
            tail -20 "$OUT/$1.serve.log" >&2
            exit 1
        }
        if curl -fsS "http://$INGEST_HTTP/healthz" >/dev/null 2>&1 &&
            (exec 3<>"/dev/tcp/${GAT1400%:*}/${GAT1400##*:}") 2>/dev/null; then
            return
        fi
        sleep 0.1
    done
    log "serve not ready after 60 s"
    tail -20 "$OUT/$1.serve.log" >&2
    exit 1
}

# Same city, same vehicles, same batching for both protocols.
loadgen() {
    local protocol=$1
    shift
    "$BIN" loadgen --protocol "$protocol" --registry "$OUT/city/cameras.csv" \
        --cameras "$CAMERAS" --city-gateways "$GATEWAYS" --vehicles-only \
        --target "http://$INGEST_GRPC" --tokens "$OUT/tokens/gateway_tokens.csv" \
        --gat1400-url "http://$GAT1400" --gat1400-credentials "$OUT/gat1400/gat1400_credentials.csv" \
        --time-zone "$ZONE" --batch-size "$BATCH" --quiet "$@"
}
json() { python3 -c "import json,sys; print(eval(sys.argv[2], {}, json.load(open(sys.argv[1]))))" "$@"; }

# (a) both protocols, each into a fresh database.
for protocol in grpc gat1400; do
    start_serve "$protocol-a"
    log "($protocol a) open throttle, $EVENTS events, batches of $BATCH"
    loadgen "$protocol" --open --events "$EVENTS" --seed 101 \
        --report "$OUT/$protocol-a.json" --chart "$OUT/$protocol-a.png" >&2
    stop_serve
done
# (b) at half of the slower protocol's (a), so both are measured below saturation.
if [ -z "${RATE_B:-}" ]; then
    RATE_B=$(python3 -c "import json,sys; print(round(min(json.load(open(f))['achieved_rate_eps'] for f in sys.argv[1:]) / 2))" \
        "$OUT/grpc-a.json" "$OUT/gat1400-a.json")
fi
for protocol in grpc gat1400; do
    start_serve "$protocol-b"
    log "($protocol b) paced at $RATE_B events/s for $HALF_SECS s"
    loadgen "$protocol" --rate "$RATE_B" --duration "$HALF_SECS" --seed 102 \
        --report "$OUT/$protocol-b.json" --chart "$OUT/$protocol-b.png" >&2
    stop_serve
done

python3 - "$OUT" "$BENCH_MD" "$EVENTS" "$BATCH" "$CAMERAS" "$GATEWAYS" "$RATE_B" "$LABEL" <<'PY'
import json, sys, datetime, subprocess
out, md, events, batch, cameras, gateways, rate_b, label = sys.argv[1:]
r = {f"{p}-{run}": json.load(open(f"{out}/{p}-{run}.json")) for p in ("grpc", "gat1400") for run in "ab"}
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                     capture_output=True, text=True).stdout.strip()
ga, gg = r["grpc-a"]["achieved_rate_eps"], r["gat1400-a"]["achieved_rate_eps"]

def lat(run):
    # Batches sent after the first 2 s; the whole run when it was shorter than that.
    l = r[run]["ack_latency_after_warmup"]
    note = ""
    if l["batches"] == 0:
        l, note = r[run]["ack_latency"], " (whole run)"
    return f"{l['p50_ms']:.1f} / {l['p99_ms']:.1f} / {l['max_ms']:.1f} ms{note}"

def counts(run):
    x = r[run]
    return (f"acked {x['acked']:,} of {x['sent']:,}, rejected {x['rejected']:,}, "
            f"resends {x['resends']}, reconnects {x['reconnects']}")

text = f"""
## GA/T 1400 ingest — {datetime.date.today().isoformat()}, build {label}

Command: `benches/gat1400.sh` (EVENTS={events}, BATCH={batch}, {cameras} cameras, {gateways}
gateways). One 2-core machine ({cpu}) runs `camtrail serve` (embedded, bundled SQLite, a
fresh database per protocol) and the load generator. The same vehicles (`--vehicles-only
--seed 101`, no snapshots) go in over gRPC (one `Publish` stream per gateway) and as GA/T 1400
platforms (one per gateway: Digest SHA-256, `POST /VIID/MotorVehicles` of `MotorVehicleObject`
JSON over HTTP/1.1, up to 8 requests in flight each).

| figure | gRPC | GA/T 1400 |
|---|---|---|
| (a) events/s acked, open throttle | {ga:,.0f} | {gg:,.0f} |
| (a) counts | {counts('grpc-a')} | {counts('gat1400-a')} |
| (a) ack latency, batches sent after the first 2 s: p50 / p99 / max | {lat('grpc-a')} | {lat('gat1400-a')} |
| (b) ack latency paced at {int(rate_b):,} events/s (half the slower (a)), after the first 2 s: p50 / p99 / max | {lat('grpc-b')} | {lat('gat1400-b')} |
| (b) events/s achieved | {r['grpc-b']['achieved_rate_eps']:,.0f} | {r['gat1400-b']['achieved_rate_eps']:,.0f} |

GA/T 1400 / gRPC throughput (a): **{gg / ga:.2f}**. Charts: `{out}/*-a.png`, `{out}/*-b.png`
(not committed).
"""
with open(md, "a") as f:
    f.write(text)
print(text)
PY
