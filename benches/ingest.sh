#!/usr/bin/env bash
# Ingest benchmark (issue 4): on this machine, with Kafka on the same box,
#   (a) events/s acked end to end through `camtrail ingest` (loadgen, open throttle),
#   (b) the same records produced by a bare rdkafka producer with the same settings,
#   (c) ack latency p50/p99 at half of (a),
#   (d) peak RSS of the ingest process (after a warm-up run of each),
# and appends the figures to BENCHMARKS.md.
#
#   benches/ingest.sh                 # EVENTS=1000000 BATCH=1000 PARTITIONS=12 HALF_SECS=30
#   BIN=/path/to/old/camtrail LABEL=old benches/ingest.sh   # an older build, side by side
#   BENCH_MD=/tmp/runs.md benches/ingest.sh                  # figures elsewhere than BENCHMARKS.md
#   PROFILE=1 benches/ingest.sh       # also `perf record` the node during (a): benches/profiles/ingest.svg
#
# CPU seconds of each process (ingest node, load generator, Kafka broker, bare producer) are
# counted over (a) and (b): on two shared cores they say where the ratio a/b goes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/common/profile.sh
. benches/common/profile.sh
EVENTS="${EVENTS:-1000000}"
BATCH="${BATCH:-1000}"
PARTITIONS="${PARTITIONS:-12}"
HALF_SECS="${HALF_SECS:-30}"
OUT="${OUT:-target/bench-ingest}"
BROKERS=127.0.0.1:9092
BIN="${BIN:-target/release/camtrail}"
LABEL="${LABEL:-$(build_label)}"

cargo build --release -q -p camtrail
cargo build --release -q -p camtrail --example bare_producer
deploy/local/services.sh up >&2
rm -rf "$OUT" && mkdir -p "$OUT"

RUN="bench$(date +%s)"
export CAMTRAIL_KAFKA__BROKERS="$BROKERS"
export CAMTRAIL_KAFKA__DETECTIONS_TOPIC="$RUN.detections.v1"
export CAMTRAIL_KAFKA__DEAD_LETTER_TOPIC="$RUN.dlq.v1"
export CAMTRAIL_KAFKA__AUDIT_TOPIC="$RUN.audit.v1"
export CAMTRAIL_KAFKA__DETECTIONS_PARTITIONS="$PARTITIONS"
export CAMTRAIL_CLICKHOUSE__DATABASE="$RUN"
"$BIN" migrate >&2
CAMTRAIL_KAFKA__DETECTIONS_TOPIC="$RUN.bare.v1" "$BIN" migrate >&2

"$BIN" city --seed 7 --out "$OUT/city" >&2
"$BIN" gateways issue --registry "$OUT/city/cameras.csv" --out "$OUT/tokens" >&2

export CAMTRAIL_INGEST__GRPC_ADDR=127.0.0.1:50051
export CAMTRAIL_INGEST__HTTP_ADDR=127.0.0.1:8081
export CAMTRAIL_INGEST__REGISTRY_PATH="$OUT/city/cameras.csv"
export CAMTRAIL_INGEST__GATEWAY_TOKENS_PATH="$OUT/tokens/gateway_token_hashes.csv"
"$BIN" ingest 2>"$OUT/ingest.log" &
INGEST_PID=$!
trap 'kill "$INGEST_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf http://127.0.0.1:8081/healthz >/dev/null && break
    sleep 0.1
done

# cpu_s PID: user+system CPU seconds the process has used so far.
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
KAFKA_PID=$(cat .local/kafka/kafka.pid)

LOADGEN=(target/release/camtrail loadgen --target http://127.0.0.1:50051
    --tokens "$OUT/tokens/gateway_tokens.csv" --batch-size "$BATCH" --quiet)
loadgen() { "${LOADGEN[@]}" "$@"; }
# The broker's JIT and page cache, and both topics, are warmed first; the warm-up runs are
# not reported.
echo "warm-up: 200000 events through ingest and through the bare producer" >&2
loadgen --open --events 200000 >&2
target/release/examples/bare_producer "$BROKERS" "$RUN.bare.v1" 200000 >/dev/null

echo "(a) end to end, open throttle, $EVENTS events" >&2
profile_start "$INGEST_PID" 1 5 249
ING0=$(cpu_s "$INGEST_PID"); KAF0=$(cpu_s "$KAFKA_PID")
/usr/bin/time -f '%U %S' -o "$OUT/a.time" \
    "${LOADGEN[@]}" --open --events "$EVENTS" --report "$OUT/a.json" --chart "$OUT/a.png" >&2
ING1=$(cpu_s "$INGEST_PID"); KAF1=$(cpu_s "$KAFKA_PID")
CPU_A="$(minus "$ING1" "$ING0") $(awk '{print $1 + $2}' "$OUT/a.time") $(minus "$KAF1" "$KAF0")"
A=$(python3 -c "import json;print(round(json.load(open('$OUT/a.json'))['achieved_rate_eps']))")

echo "(b) bare rdkafka producer, $EVENTS events" >&2
KAF0=$(cpu_s "$KAFKA_PID")
/usr/bin/time -f '%U %S' -o "$OUT/b.time" \
    target/release/examples/bare_producer "$BROKERS" "$RUN.bare.v1" "$EVENTS" >"$OUT/b.json"
KAF1=$(cpu_s "$KAFKA_PID")
CPU_B="$(awk '{print $1 + $2}' "$OUT/b.time") $(minus "$KAF1" "$KAF0")"
B=$(python3 -c "import json;print(round(json.load(open('$OUT/b.json'))['events_per_second']))")

HALF=$((A / 2))
echo "(c) paced at $HALF events/s for ${HALF_SECS}s" >&2
loadgen --rate "$HALF" --duration "$HALF_SECS" --report "$OUT/c.json" --chart "$OUT/c.png" >&2

RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$INGEST_PID/status")
kill -TERM "$INGEST_PID"
wait "$INGEST_PID" || true
trap - EXIT

profile_finish ingest "camtrail ingest, (a) open throttle, $LABEL"

python3 - "$OUT" "$A" "$B" "$RSS_KB" "$EVENTS" "$BATCH" "$PARTITIONS" "$LABEL" "$CPU_A" "$CPU_B" <<'PY'
import json, os, sys, datetime, subprocess
out, a, b, rss_kb, events, batch, partitions, label, cpu_a, cpu_b = sys.argv[1:]
a, b, rss_kb = int(a), int(b), int(rss_kb)
ing_a, gen_a, kaf_a = (float(x) for x in cpu_a.split())
bare_b, kaf_b = (float(x) for x in cpu_b.split())
ra = json.load(open(f"{out}/a.json")); rc = json.load(open(f"{out}/c.json"))
rb = json.load(open(f"{out}/b.json"))
lat = rc["ack_latency"]; steady = rc["ack_latency_after_warmup"]
secs_a, secs_b = ra["elapsed_s"], rb["seconds"]
per_m = lambda cpu: cpu * 1e6 / int(events)
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
text = f"""
## Ingest node — {datetime.date.today()}, build {label}

Command: `benches/ingest.sh` (EVENTS={events}, BATCH={batch}, {partitions} partitions). One
2-core machine ({cpu}) runs Kafka 4.1 (KRaft, 512 MiB heap), the ingest node and the load
generator (140,000 cameras, 300 gateway streams, no snapshots).

| figure | value | target |
|---|---|---|
| (a) events/s acked end to end through `camtrail ingest` | {a:,} (acked {ra['acked']:,} of {ra['sent']:,}, resends {ra['resends']}) | |
| (b) events/s, bare rdkafka producer, same records and settings | {b:,} | |
| a/b | {a / b:.2f} | ≥ 0.8 |
| (c) ack latency at {int(rc['achieved_rate_eps']):,} events/s (half of a), batches sent after the first 2 s: p50 / p99 / max | {steady['p50_ms']:.1f} / {steady['p99_ms']:.1f} / {steady['max_ms']:.1f} ms | p99 < 20 ms |
| (c'') same run including the first 2 s: p50 / p99 / max | {lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} / {lat['max_ms']:.1f} ms | |
| (d) peak RSS of the ingest process (VmHWM) | {rss_kb / 1024:.0f} MiB | |
| CPU s per million events during (a): ingest node / load generator / Kafka | {per_m(ing_a):.2f} / {per_m(gen_a):.2f} / {per_m(kaf_a):.2f} (of {2 * secs_a * 1e6 / int(events):.2f} available on 2 cores) | |
| CPU s per million events during (b): bare producer / Kafka | {per_m(bare_b):.2f} / {per_m(kaf_b):.2f} (of {2 * secs_b * 1e6 / int(events):.2f}) | |

Charts: `{out}/a.png`, `{out}/c.png` (not committed).
"""
with open(os.environ.get("BENCH_MD", "BENCHMARKS.md"), "a") as f:
    f.write(text)
print(text)
PY
