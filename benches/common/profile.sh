# Shared by the benchmark scripts (sourced): the build label, and PROFILE=1 flamegraphs.
#
#   build_label                       short commit, "-dirty" when tracked files are changed
#   profile_start PID DELAY SECS HZ   in the background: after DELAY s, `perf record` PID for
#                                     SECS s at HZ samples/s (DWARF stacks: release builds
#                                     keep no frame pointers); no-op unless PROFILE=1
#   profile_finish NAME TITLE         wait for it, write benches/profiles/NAME.svg (inferno)
#
# Needs `perf` (Debian: linux-perf) and `cargo install inferno` when PROFILE=1.

build_label() { git describe --always --dirty --abbrev=7; }

profile_start() {
    PROFILE_JOB=""
    [ "${PROFILE:-0}" = 1 ] || return 0
    (sleep "$2" && perf record -q -F "$4" --call-graph dwarf,16384 -p "$1" \
        -o "$OUT/perf.data" -- sleep "$3" >/dev/null 2>&1) &
    PROFILE_JOB=$!
}

profile_finish() {
    [ -n "${PROFILE_JOB:-}" ] || return 0
    wait "$PROFILE_JOB" || true
    PROFILE_JOB=""
    mkdir -p benches/profiles
    perf script -i "$OUT/perf.data" 2>/dev/null | inferno-collapse-perf >"$OUT/$1.folded"
    inferno-flamegraph --title "$2" <"$OUT/$1.folded" >"benches/profiles/$1.svg"
    echo "profile: benches/profiles/$1.svg" >&2
}
