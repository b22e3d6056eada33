#!/usr/bin/env bash
# Watchlist matching cost (issue 18): ns per detection against 10 / 10,000 / 100,000 active
# entries (1% fuzzy, 1% patterns), one thread, release build; appends the table to
# BENCHMARKS.md.
#
#   benches/watchlist.sh                 # 1,000,000 detections per size
#   EVENTS=200000 benches/watchlist.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EVENTS="${EVENTS:-1000000}"
cargo build --release -q --example watchlist_bench
TABLE=$(target/release/examples/watchlist_bench "$EVENTS")
echo "$TABLE"
{
    echo
    echo "### Watchlist matching cost ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
    echo
    echo "\`benches/watchlist.sh\`: $EVENTS synthetic detections per list size, one in 1,000 reading a listed"
    echo "plate; one thread; \`Matcher::matches\` (model/src/watchlist.rs) with the entry's scope and"
    echo "window checks. The index build is the cost of a list change."
    echo
    echo "$TABLE"
} >>"${BENCH_MD:-BENCHMARKS.md}"
