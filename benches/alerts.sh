#!/usr/bin/env bash
# Watchlist alerts in the embedded mode (issue 18): ack → hit on the Server-Sent Events
# stream at a steady RATE with ENTRIES approved entries (1% fuzzy), and ingest at open
# throttle without and with the entries. One process (benches/alerts_bench.rs), release
# build, fresh databases in a temporary directory; appends the table to BENCHMARKS.md.
#
#   benches/alerts.sh                   # RATE=100000 DURATION=20 ENTRIES=10000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RATE="${RATE:-100000}"
SECONDS_RUN="${DURATION:-20}"
ENTRIES="${ENTRIES:-10000}"
cargo build --release -q --example alerts_bench
TABLE=$(target/release/examples/alerts_bench "$RATE" "$SECONDS_RUN" "$ENTRIES")
echo "$TABLE"
{
    echo
    echo "### Watchlist alerts, embedded ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)"
    echo
    echo "\`benches/alerts.sh\` (RATE=$RATE DURATION=$SECONDS_RUN ENTRIES=$ENTRIES): the embedded node, its gateway"
    echo "streams and an SSE client in one process on this machine; one read in 1,000 is of a listed"
    echo "plate; latency from the publisher seeing its batch's ack to the hit arriving on"
    echo "\`/v1/alerts/stream\`."
    echo
    echo "$TABLE"
} >>"${BENCH_MD:-BENCHMARKS.md}"
