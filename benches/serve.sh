#!/usr/bin/env bash
# Embedded-mode benchmark (issue 7): `camtrail serve` (ingest gRPC + query HTTP/gRPC over one
# bundled-SQLite database; a batch is acked once the group-commit transaction holding it has
# committed), with the load generator on the same box:
#   (a) events/s acked by `serve`, open throttle, EVENTS_A events into a fresh database;
#   (b) ack latency p50/p99/max paced at half of (a) for HALF_SECS seconds;
#   (c) the database filled to FILL_TO stored detections (open throttle), then REQUESTS
#       track requests, one at a time, through the HTTP API (auth, read, reconstruction,
#       audit record committed to the same database, JSON) for random stored subjects;
#       (c') the same with fuzzy=true, (c'') again once the maintenance thread is idle;
#   (d) database bytes (db + wal) per stored event, number of parts, peak RSS of `serve`.
# Appends the figures to BENCHMARKS.md. No Kafka or ClickHouse is used or touched.
#
#   benches/serve.sh     # EVENTS_A=3000000 HALF_SECS=30 FILL_TO=10000000 REQUESTS=2000 BATCH=1000
#   PROFILE=1 benches/serve.sh   # also `perf record` serve during (a): benches/profiles/serve.svg
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/common/profile.sh
. benches/common/profile.sh
EVENTS_A="${EVENTS_A:-3000000}"
HALF_SECS="${HALF_SECS:-30}"
FILL_TO="${FILL_TO:-10000000}"
REQUESTS="${REQUESTS:-2000}"
WARMUP="${WARMUP:-200}"
BATCH="${BATCH:-1000}"
MIN_FREE_GB="${MIN_FREE_GB:-10}"
OUT="${OUT:-target/bench-serve}"
BENCHMARKS_MD="${BENCHMARKS_MD:-BENCHMARKS.md}"
BIN=target/release/camtrail
BENCH=target/release/examples/track_bench
# Ports away from the defaults (and from Kafka 9092/9093, ClickHouse 8123/9000).
INGEST_GRPC=127.0.0.1:50151
INGEST_HTTP=127.0.0.1:8181
QUERY_HTTP=127.0.0.1:8180
QUERY_GRPC=127.0.0.1:50152

log() { printf '[serve-bench] %s\n' "$*" >&2; }
T_START=$(date +%s)

FREE_GB=$(df --output=avail -BG "$PWD" | tail -1 | tr -dc '0-9')
if [ "$FREE_GB" -lt "$MIN_FREE_GB" ]; then
    log "only ${FREE_GB} GB free on $(df --output=target "$PWD" | tail -1); need ${MIN_FREE_GB} GB" \
        "(target/debug/incremental can go)"
    exit 1
fi
for addr in "$INGEST_HTTP" "$QUERY_HTTP"; do
    if curl -fsS --max-time 1 "http://$addr/healthz" >/dev/null 2>&1; then
        log "something already answers on $addr; stop it first"
        exit 1
    fi
done

log "building (release)"
cargo build --release -q -p camtrail
cargo build --release -q -p camtrail --example track_bench
rm -rf "$OUT" && mkdir -p "$OUT"
DB="$OUT/camtrail.db"

log "city, gateway tokens, bench user"
"$BIN" city --seed 7 --out "$OUT/city" >&2
"$BIN" gateways issue --registry "$OUT/city/cameras.csv" --out "$OUT/tokens" >&2
TOKEN=$("$BIN" users issue --name bench --role investigator --users "$OUT/users.toml" 2>/dev/null)

export CAMTRAIL_SERVE__DATABASE_PATH="$DB"
export CAMTRAIL_INGEST__GRPC_ADDR="$INGEST_GRPC"
export CAMTRAIL_INGEST__HTTP_ADDR="$INGEST_HTTP"
export CAMTRAIL_INGEST__REGISTRY_PATH="$OUT/city/cameras.csv"
export CAMTRAIL_INGEST__GATEWAY_TOKENS_PATH="$OUT/tokens/gateway_token_hashes.csv"
export CAMTRAIL_QUERY__HTTP_ADDR="$QUERY_HTTP"
export CAMTRAIL_QUERY__GRPC_ADDR="$QUERY_GRPC"
export CAMTRAIL_QUERY__REGISTRY_PATH="$OUT/city/cameras.csv"
export CAMTRAIL_QUERY__USERS_PATH="$OUT/users.toml"

log "starting camtrail serve on a fresh $DB (log: $OUT/serve.log)"
NO_COLOR=1 "$BIN" serve 2>"$OUT/serve.log" &
SERVE_PID=$!
trap 'kill "$SERVE_PID" 2>/dev/null || true' EXIT
READY=0
for _ in $(seq 600); do
    kill -0 "$SERVE_PID" 2>/dev/null || { log "serve exited during start-up:"; tail -20 "$OUT/serve.log" >&2; exit 1; }
    if curl -fsS "http://$INGEST_HTTP/healthz" >/dev/null 2>&1 &&
        curl -fsS "http://$QUERY_HTTP/healthz" >/dev/null 2>&1; then
        READY=1
        break
    fi
    sleep 0.1
done
[ "$READY" = 1 ] || { log "serve not ready after 60 s"; tail -20 "$OUT/serve.log" >&2; exit 1; }

loadgen() {
    "$BIN" loadgen --target "http://$INGEST_GRPC" --registry "$OUT/city/cameras.csv" \
        --tokens "$OUT/tokens/gateway_tokens.csv" --batch-size "$BATCH" --quiet "$@"
}
json() { python3 -c "import json,sys; print(eval(sys.argv[2], {}, json.load(open(sys.argv[1]))))" "$@"; }
# Stored detections: rows of all parts + rows staged (read-only; serve keeps writing in WAL mode).
stored() {
    python3 - "$DB" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
parts = c.execute("SELECT coalesce(sum(rows), 0) FROM parts").fetchone()[0]
tables = [r[0] for r in c.execute(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'staging_[0-9]*'")]
staged = sum(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
print(parts + staged)
PY
}

# (a) throughput. Each loadgen run has its own --seed: event ids are seed-derived, so no run
# resends another's events.
log "(a) open throttle, $EVENTS_A events, batches of $BATCH"
T0=$(date +%s)
profile_start "$SERVE_PID" 2 6 249
loadgen --open --events "$EVENTS_A" --seed 101 --report "$OUT/a.json" --chart "$OUT/a.png" >&2
log "(a) took $(( $(date +%s) - T0 )) s"
profile_finish serve "camtrail serve, (a) open throttle, $(build_label)"
A=$(json "$OUT/a.json" 'round(achieved_rate_eps)')
HALF=$(( A / 2 ))

log "(b) paced at $HALF events/s for ${HALF_SECS} s"
T0=$(date +%s)
loadgen --rate "$HALF" --duration "$HALF_SECS" --seed 102 --report "$OUT/b.json" --chart "$OUT/b.png" >&2
log "(b) took $(( $(date +%s) - T0 )) s"

STORED=$(stored)
FILL=$(( FILL_TO - STORED ))
FILL_S=0
if [ "$FILL" -gt 0 ]; then
    log "(c) filling: $STORED stored, $FILL more events (open throttle) to reach $FILL_TO"
    T0=$(date +%s)
    loadgen --open --events "$FILL" --seed 103 --report "$OUT/fill.json" --chart "$OUT/fill.png" >&2
    FILL_S=$(( $(date +%s) - T0 ))
    log "(c) fill took $FILL_S s"
else
    echo '{}' >"$OUT/fill.json"
fi
STORED=$(stored)
log "(c) $STORED detections stored"

# Random vehicle subjects (vehicle events carry the normalised plate as subject key), drawn
# from parts chosen at random weighted by their rows, plus staged rows; and a window covering
# all stored data (at least now - 2 h .. now + 1 h).
python3 - "$DB" "$REQUESTS" "$WARMUP" "$OUT" <<'PY'
import random, sqlite3, sys, time
db, requests, warmup, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
parts = c.execute("SELECT id, rows, min_ms, max_ms FROM parts").fetchall()
# Parts are files of their own (<db>.parts/part_<id>.db, table `part`); staged rows sit in
# the staging_<n> tables of the main database.
tables = [r[0] for r in c.execute(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'staging_[0-9]*'")]
staged, smin, smax = 0, None, None
for t in tables:
    n, lo, hi = c.execute(f"SELECT count(*), min(captured_at_ms), max(captured_at_ms) FROM {t}").fetchone()
    if n:
        staged += n
        smin = lo if smin is None else min(smin, lo)
        smax = hi if smax is None else max(smax, hi)
def open_source(name):
    if name.startswith("part_"):
        return sqlite3.connect(f"file:{db}.parts/{name}.db?mode=ro", uri=True), "part"
    return c, name
sources = [(f"part_{p[0]}", p[1]) for p in parts] + [(t, 1) for t in tables if staged]
rng = random.Random(7)
want = {}
for name, _ in rng.choices(sources, weights=[n for _, n in sources], k=requests + warmup):
    want[name] = want.get(name, 0) + 1
keys = []
for name, k in want.items():
    conn, table = open_source(name)
    keys += [r[0] for r in conn.execute(
        f"SELECT subject_key FROM {table} WHERE subject_key != '' AND object_class = 1 "
        "ORDER BY random() LIMIT ?", (k,))]
rng.shuffle(keys)
open(f"{out}/warmup.txt", "w").write("\n".join(keys[:warmup]) + "\n")
open(f"{out}/plates.txt", "w").write("\n".join(keys[warmup:]) + "\n")
now = int(time.time() * 1000)
lows = [p[2] for p in parts] + ([smin] if staged else [])
highs = [p[3] for p in parts] + ([smax] if staged else [])
print(min([now - 2 * 3600_000] + lows), max([now + 3600_000] + [h + 1 for h in highs]),
      file=open(f"{out}/window.txt", "w"))
PY
read -r FROM_MS TO_MS <"$OUT/window.txt"
log "(c) track window $FROM_MS .. $TO_MS ($(( (TO_MS - FROM_MS) / 60000 )) min); $(wc -l <"$OUT/plates.txt") subjects"
log "(c) warm-up: $(wc -l <"$OUT/warmup.txt") tracks"
"$BENCH" api "http://$QUERY_HTTP" "$TOKEN" "$OUT/warmup.txt" "$FROM_MS" "$TO_MS" >/dev/null
log "(c) $(wc -l <"$OUT/plates.txt") tracks through the HTTP API, one at a time"
"$BENCH" api "http://$QUERY_HTTP" "$TOKEN" "$OUT/plates.txt" "$FROM_MS" "$TO_MS" | tee "$OUT/track.json" >&2
log "(c') the same tracks with misread tolerance (fuzzy=true: look-alikes read and attributed)"
"$BENCH" fuzzy "http://$QUERY_HTTP" "$TOKEN" "$OUT/plates.txt" "$FROM_MS" "$TO_MS" | tee "$OUT/track-fuzzy.json" >&2
# (c) and (c') run right after the fill, while the maintenance thread may still be merging
# parts on one of the two cores; (c'') repeats the fuzzy tracks once it is idle (no more
# parts than it keeps, so no merge pending), to separate the store's read cost from that.
parts_now() {
    curl -fsS "http://$QUERY_HTTP/metrics" 2>/dev/null | awk '$1 == "camtrail_embedded_parts" { print $2 }'
}
SETTLE_S=0
while [ "$(parts_now)" -gt "${MAX_PARTS:-24}" ] 2>/dev/null && [ "$SETTLE_S" -lt 300 ]; do
    sleep 1
    SETTLE_S=$((SETTLE_S + 1))
done
log "(c'') maintenance idle after ${SETTLE_S} s more ($(parts_now) parts); the fuzzy tracks again"
"$BENCH" fuzzy "http://$QUERY_HTTP" "$TOKEN" "$OUT/plates.txt" "$FROM_MS" "$TO_MS" | tee "$OUT/track-fuzzy-idle.json" >&2
curl -fsS "http://$INGEST_HTTP/metrics" >"$OUT/ingest-metrics.txt" 2>/dev/null || true
curl -fsS "http://$QUERY_HTTP/metrics" >"$OUT/query-metrics.txt" 2>/dev/null || true

# (d) size, parts, memory, while serve runs (WAL not yet checkpointed away).
STORED=$(stored)
PARTS=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True).execute('SELECT count(*) FROM parts').fetchone()[0])" "$DB")
size() { if [ -f "$1" ]; then stat -c %s "$1"; else echo 0; fi; }
# The main database plus every part file.
DB_BYTES=$(( $(size "$DB") + $(du -sb "$DB.parts" | cut -f1) ))
WAL_BYTES=$(size "$DB-wal")
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE_PID/status")
# VmHWM counts file pages too (the readers map up to 1 GiB of the database each): the split now.
RSS_SPLIT=$(awk '/RssAnon/ {a=$2} /RssFile/ {f=$2} END {printf "%d/%d", a/1024, f/1024}' "/proc/$SERVE_PID/status")
log "(d) $STORED rows, $PARTS parts, db $DB_BYTES + wal $WAL_BYTES bytes, peak RSS $(( RSS_KB / 1024 )) MiB"

log "stopping serve (SIGTERM, drains)"
T0=$(date +%s.%N)
kill -TERM "$SERVE_PID"
STOPPED=0
for _ in $(seq 1200); do
    kill -0 "$SERVE_PID" 2>/dev/null || { STOPPED=1; break; }
    sleep 0.1
done
if [ "$STOPPED" = 1 ]; then
    SERVE_RC=0
    wait "$SERVE_PID" || SERVE_RC=$?
else
    log "serve still running 120 s after SIGTERM; killing it"
    kill -KILL "$SERVE_PID" 2>/dev/null || true
    SERVE_RC=killed
fi
trap - EXIT
STOP_S=$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN { printf "%.1f", a - b }')
DB_BYTES_AFTER=$(( $(size "$DB") + $(du -sb "$DB.parts" | cut -f1) ))
WAL_BYTES_AFTER=$(size "$DB-wal")
WARNINGS=$(grep -cE '\b(WARN|ERROR)\b' "$OUT/serve.log" || true)
TOTAL_S=$(( $(date +%s) - T_START ))
log "serve exited ($SERVE_RC) in $STOP_S s; $WARNINGS WARN/ERROR lines in serve.log; run took $TOTAL_S s"

python3 - "$OUT" "$BENCHMARKS_MD" "$EVENTS_A" "$HALF_SECS" "$FILL_TO" "$REQUESTS" "$WARMUP" "$BATCH" \
    "$STORED" "$PARTS" "$DB_BYTES" "$WAL_BYTES" "$DB_BYTES_AFTER" "$WAL_BYTES_AFTER" "$RSS_KB" \
    "$STOP_S" "$SERVE_RC" "$WARNINGS" "$TOTAL_S" "$FILL_S" "$FROM_MS" "$TO_MS" "$RSS_SPLIT" <<'PY'
import datetime, json, subprocess, sys
(out, md, events_a, half_secs, fill_to, requests, warmup, batch, stored, parts, db_bytes,
 wal_bytes, db_after, wal_after, rss_kb, stop_s, serve_rc, warnings, total_s, fill_s,
 from_ms, to_ms, rss_split) = sys.argv[1:]
stored, db_bytes, wal_bytes, db_after, wal_after = map(int, (stored, db_bytes, wal_bytes, db_after, wal_after))
ra = json.load(open(f"{out}/a.json")); rb = json.load(open(f"{out}/b.json"))
rf = json.load(open(f"{out}/fill.json")); tr = json.load(open(f"{out}/track.json"))
tf = json.load(open(f"{out}/track-fuzzy.json")); ti = json.load(open(f"{out}/track-fuzzy-idle.json"))
sh = lambda c: subprocess.run(["sh", "-c", c], capture_output=True, text=True).stdout.strip()
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
cores = sh("nproc"); mem = sh("free -g | awk '/Mem:/ {print $2}'")
commit = sh("git rev-parse --short HEAD"); dirty = " (work tree with uncommitted changes)" if sh("git status --porcelain --untracked-files=no") else ""
a = ra["achieved_rate_eps"]; la = ra["ack_latency"]; lb = rb["ack_latency"]
steady = sorted(p["latency_p99_ms"] for p in rb["timeline"][2:] if p.get("latency_p99_ms") is not None)
s_med = steady[len(steady) // 2] if steady else float("nan"); s_worst = steady[-1] if steady else float("nan")
per_event = (db_bytes + wal_bytes) / stored if stored else float("nan")
per_event_after = (db_after + wal_after) / stored if stored else float("nan")
# Seconds in which no batch was acked although batches were outstanding: the writer thread
# could not commit (before part files were built off the writer thread: flushes and merges).
def stalls(r):
    runs, run = [], 0
    for p in r.get("timeline", []):  # a run still open at the end is the drain, not a stall
        if p["acked"] == 0 and p["rejected"] == 0:
            run += 1
        elif run:
            runs.append(run); run = 0
    return runs
def stall_text(r):
    runs = stalls(r)
    return f"{len(runs)} (longest {max(runs)} s)" if runs else "none"
acked_total = ra["acked"] + rb["acked"] + (rf["acked"] if rf else 0)
duplicates = stored - acked_total
rss_anon, rss_file = rss_split.split("/")
ok = lambda good: "met" if good else "**missed**"
fill_line = (f"| (c') fill to {int(fill_to):,}: events/s acked, open throttle (flushes and merges of a growing database) | "
             f"{rf['achieved_rate_eps']:,.0f} ({rf['acked']:,} acked in {rf['elapsed_s']:.1f} s, resends {rf['resends']}; ack p99 {rf['ack_latency']['p99_ms']:.0f} ms) | |\n"
             if rf else "")
def rejected(r):
    return f", rejected {r['rejected']:,}" if r["rejected"] else ""
text = f"""
## Embedded mode (`camtrail serve`) — issue 7 — {datetime.date.today().isoformat()}

Command: `benches/serve.sh` (EVENTS_A={int(events_a):,}, HALF_SECS={half_secs},
FILL_TO={int(fill_to):,}, REQUESTS={int(requests):,}, BATCH={batch}), commit `{commit}`{dirty}. One {cores}-core
machine ({cpu}, {mem} GiB) runs `camtrail serve` over a fresh bundled-SQLite database (WAL,
group commit, staging tables + sorted part files built by a maintenance thread) and, on the same cores, the load generator (140,000
cameras, 300 gateway streams, batches of {batch}, no snapshots) and the track client. Kafka
and ClickHouse play no part.

```sh
camtrail city --seed 7 --out W/city; camtrail gateways issue --registry W/city/cameras.csv --out W/tokens
camtrail users issue --name bench --role investigator --users W/users.toml
CAMTRAIL_SERVE__DATABASE_PATH=W/camtrail.db CAMTRAIL_INGEST__GRPC_ADDR=127.0.0.1:50151 … camtrail serve
camtrail loadgen --target http://127.0.0.1:50151 --registry … --tokens … --batch-size {batch} --open --events {int(events_a)} --seed 101   # (a)
camtrail loadgen … --rate {int(rb['target_rate_eps']) if rb.get('target_rate_eps') else '(a)/2'} --duration {half_secs} --seed 102                     # (b)
camtrail loadgen … --open --events <{int(fill_to):,} − stored> --seed 103                             # (c) fill
track_bench api http://127.0.0.1:8180 TOKEN plates.txt {from_ms} {to_ms}                        # (c) {int(requests):,} tracks after {warmup} warm-up
track_bench fuzzy http://127.0.0.1:8180 TOKEN plates.txt {from_ms} {to_ms}                      # (c') the same, fuzzy=true
track_bench fuzzy …                                                                              # (c'') again, once no merge is pending
```

| figure | value | target |
|---|---|---|
| (a) events/s acked by `serve`, open throttle, fresh database | {a:,.0f} ({ra['acked']:,} acked of {ra['sent']:,} in {ra['elapsed_s']:.1f} s, resends {ra['resends']}{rejected(ra)}) | ≥ 100,000: {ok(a >= 100000)} |
| (a) ack latency under the open throttle, p50 / p99 / max (mostly queueing in the load generator's window) | {la['p50_ms']:.1f} / {la['p99_ms']:.1f} / {la['max_ms']:.1f} ms | |
| (b) ack latency at {rb['achieved_rate_eps']:,.0f} events/s (half of a), p50 / p99 / max | {lb['p50_ms']:.1f} / {lb['p99_ms']:.1f} / {lb['max_ms']:.1f} ms ({rb['acked']:,} acked, resends {rb['resends']}{rejected(rb)}) | |
| (b') same run from second 2 on: median / worst per-second p99 | {s_med:.1f} / {s_worst:.1f} ms | |
{fill_line}| (c) track through the HTTP API at {stored:,} stored detections, p50 / p90 / p99 / max | {tr['p50_ms']:.1f} / {tr['p90_ms']:.1f} / {tr['p99_ms']:.1f} / {tr['max_ms']:.1f} ms ({tr['requests']:,} requests, mean answer {tr['mean_body_bytes']:,} bytes) | p99 < 20 ms: {ok(tr['p99_ms'] < 20)} |
| (c') the same tracks with `fuzzy=true` (misreadings looked up, look-alikes read and attributed), p50 / p90 / p99 / max | {tf['p50_ms']:.1f} / {tf['p90_ms']:.1f} / {tf['p99_ms']:.1f} / {tf['max_ms']:.1f} ms (mean answer {tf['mean_body_bytes']:,} bytes) | p99 < 20 ms: {ok(tf['p99_ms'] < 20)} |
| (c'') the fuzzy tracks again once the maintenance thread is idle (no merge pending), p50 / p90 / p99 / max | {ti['p50_ms']:.1f} / {ti['p90_ms']:.1f} / {ti['p99_ms']:.1f} / {ti['max_ms']:.1f} ms | p99 < 20 ms: {ok(ti['p99_ms'] < 20)} |
| (d) database bytes per stored event, main db + part files + wal while running | {per_event:.1f} ({(db_bytes + wal_bytes) / 2**30:.2f} GiB: db {db_bytes / 2**30:.2f} + wal {wal_bytes / 2**20:.0f} MiB) | |
| (d) the same after SIGTERM | {per_event_after:.1f} (db {db_after / 2**30:.2f} GiB + wal {wal_after / 2**20:.0f} MiB) | |
| parts at the end; stored rows beyond the events acked (resends kept in two parts until a read or a merge drops them) | {parts}; {duplicates:,} | |
| whole seconds without any ack although batches were outstanding: (a) / (b) / fill | {stall_text(ra)} / {stall_text(rb)} / {stall_text(rf) if rf else "-"} | |
| peak RSS of `serve` (VmHWM; at the end: anonymous / file-backed) | {int(rss_kb) / 1024:.0f} MiB ({rss_anon} / {rss_file} MiB) | |

Track subjects: {int(requests):,} vehicle subject keys drawn at random from the stored rows (a
random part, weighted by rows, then a random row of it), window {(int(to_ms) - int(from_ms)) / 3600000:.1f} h
covering all stored data; each answer was audited in the same database before it left.
`serve` stopped {stop_s} s after SIGTERM (exit {serve_rc}); {warnings} WARN/ERROR lines in its
log. Whole run {int(total_s) // 60} min {int(total_s) % 60} s. Charts: `{out}/a.png`, `{out}/b.png`,
`{out}/fill.png` (not committed).
"""
with open(md, "a") as f:
    f.write(text)
print(text)
PY
