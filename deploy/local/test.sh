#!/usr/bin/env bash
# camtrail's single test command (README "The two commands"; .ci/run calls exactly this).
#
#   deploy/local/test.sh [extra args for `cargo test`]      e.g. deploy/local/test.sh -- --nocapture
#   deploy/local/test.sh --setup-only                       install + start/stop services, no cargo
#
# On a fresh Debian 12 machine with Rust, Java 17, Maven, Python 3 and Node.js 20 it:
#   1. installs what is missing: apt clickhouse-server, clickhouse-client, kcat, chromium,
#      zookeeper (the cluster's coordinator; + curl and the C toolchain librdkafka's bundled
#      build needs); pip chdb-core and pytest;
#   2. starts Kafka (KRaft, 127.0.0.1:9092) and ClickHouse (127.0.0.1:8123) with
#      deploy/local/services.sh, remembering whether they were already running;
#   3. runs cargo fmt --check, cargo clippy -D warnings (the full build and the embedded one,
#      which must not link librdkafka or the ClickHouse client), cargo test
#      (CAMTRAIL_KAFKA__BROKERS and CAMTRAIL_CLICKHOUSE__URL exported), then the
#      workspace's checks (web/dist matches a fresh npm build; Playwright browser tests in
#      Debian's chromium against `camtrail demo --keep`), the modern-ClickHouse schema
#      check (pytest), then the cluster's fault test (issue 19:
#      deploy/cluster/cluster.sh up, `cargo test --test cluster`, a few minutes);
#   4. stops the services and the cluster it started (also on failure or Ctrl-C).
#
# Environment: CAMTRAIL_KEEP_SERVICES=1 leaves services running; CAMTRAIL_SKIP_INSTALL=1 skips
# step 1; everything services.sh reads (CAMTRAIL_LOCAL_DIR, ...).
set -euo pipefail

LOG_TAG="test"
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CAMTRAIL_REPO"
SERVICES="$CAMTRAIL_REPO/deploy/local/services.sh"

SETUP_ONLY=0
if [ "${1:-}" = --setup-only ]; then
    SETUP_ONLY=1
    shift
fi

T_ALL="$(now_s)"
SUMMARY=()
CURRENT=""
T_SECTION=""

section() {
    CURRENT="$1"
    T_SECTION="$(now_s)"
    printf '\n==================== %s ====================\n' "$CURRENT" >&2
}
section_done() {
    local took
    took="$(elapsed "$T_SECTION")"
    SUMMARY+=("$(printf '  %-34s ok   %s' "$CURRENT" "$took")")
    printf -- '---- %s: ok (%s)\n' "$CURRENT" "$took" >&2
    CURRENT=""
}

# Free space where cargo writes. A clean run needs ~4 GB of target/ (it once needed ~10 GB and
# a CI machine ran out of disk mid-link, which reads like a linker crash): say it up front.
disk_report() {
    local dir="${CARGO_TARGET_DIR:-$CAMTRAIL_REPO/target}"
    mkdir -p "$dir" 2>/dev/null || true
    printf 'disk: %s free at %s, target/ %s\n' \
        "$(df -h --output=avail "$dir" 2>/dev/null | tail -1 | tr -d ' ')" "$dir" \
        "$(du -sh "$dir" 2>/dev/null | cut -f1)" >&2
}
disk_report

# ------------------------------------------------------------------ cleanup

STARTED_KAFKA=0
STARTED_CH=0
STARTED_CLUSTER=0
CLUSTER="$CAMTRAIL_REPO/deploy/cluster/cluster.sh"
on_exit() {
    local rc=$?
    set +e
    if [ -n "$CURRENT" ]; then
        SUMMARY+=("$(printf '  %-34s FAIL %s' "$CURRENT" "$(elapsed "$T_SECTION")")")
    fi
    if [ "${CAMTRAIL_KEEP_SERVICES:-0}" = 1 ]; then
        [ $((STARTED_KAFKA + STARTED_CH + STARTED_CLUSTER)) -eq 0 ] || log "CAMTRAIL_KEEP_SERVICES=1: leaving services running"
    else
        if [ "$STARTED_CLUSTER" = 1 ]; then "$CLUSTER" down; fi
        if [ "$STARTED_CH" = 1 ]; then "$SERVICES" stop-clickhouse; fi
        if [ "$STARTED_KAFKA" = 1 ]; then "$SERVICES" stop-kafka; fi
    fi
    printf '\n==================== summary ====================\n' >&2
    local line
    for line in "${SUMMARY[@]}"; do printf '%s\n' "$line" >&2; done
    disk_report
    if [ "$rc" -eq 0 ]; then
        printf 'test.sh: PASSED in %s\n' "$(elapsed "$T_ALL")" >&2
    else
        printf 'test.sh: FAILED (exit %s) after %s\n' "$rc" "$(elapsed "$T_ALL")" >&2
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ 1. install what is missing

dpkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

install_missing() {
    local apt=()
    have clickhouse-server || [ -x /usr/sbin/clickhouse-server ] || apt+=(clickhouse-server)
    have clickhouse-client || apt+=(clickhouse-client)
    have kcat || apt+=(kcat)
    [ -f /usr/share/java/zookeeper.jar ] || apt+=(zookeeper)
    have curl || apt+=(curl ca-certificates)
    have setsid || apt+=(util-linux)
    # The workspace's browser tests drive Debian's chromium (Playwright's own browser
    # download cannot be reached).
    have chromium || apt+=(chromium)
    # librdkafka is built from source by rdkafka-sys (configure + make, C and C++).
    have cc || apt+=(gcc)
    have c++ || apt+=(g++)
    have make || apt+=(make)
    have cmake || apt+=(cmake)
    have pkg-config || apt+=(pkg-config)
    if have dpkg-query && ! dpkg_installed zlib1g-dev; then apt+=(zlib1g-dev); fi
    if ! python3 -m pip --version >/dev/null 2>&1; then apt+=(python3-pip); fi

    if [ "${#apt[@]}" -gt 0 ]; then
        have apt-get || die "missing ${apt[*]} and no apt-get to install them"
        log "apt: installing ${apt[*]}"
        if [[ " ${apt[*]} " == *" clickhouse-server "* ]]; then
            # The package may start a system instance on 8123/9000; services.sh stops it.
            export CAMTRAIL_STOP_SYSTEM_CLICKHOUSE=1
        fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${apt[@]}"
    else
        log "apt: nothing to install"
    fi

    local pip=()
    python3 -c 'import chdb' 2>/dev/null || pip+=(chdb-core)
    python3 -c 'import pytest' 2>/dev/null || pip+=(pytest)
    if [ "${#pip[@]}" -gt 0 ]; then
        log "pip: installing ${pip[*]}"
        # Debian 12's python3 is "externally managed" (PEP 668): retry with the override there.
        python3 -m pip install -q "${pip[@]}" ||
            python3 -m pip install -q --break-system-packages "${pip[@]}"
        python3 -c 'import chdb, pytest' || die "pip: chdb-core/pytest still not importable"
    else
        log "pip: nothing to install"
    fi

    have cargo || die "cargo is not installed (install Rust with rustup)"
    have node || die "node is not installed (Node.js 20+, for the workspace's browser tests)"
    have npm || die "npm is not installed (for the workspace's browser tests)"
    have java || die "java is not installed (Java 17+)"
    have mvn || [ -n "$(find "$CAMTRAIL_LOCAL_DIR/kafka/libs" -name 'kafka_2.13-*.jar' 2>/dev/null)" ] ||
        die "mvn is not installed (needed once to fetch the Kafka jars)"
}

section "install missing tools"
if [ "${CAMTRAIL_SKIP_INSTALL:-0}" = 1 ]; then
    log "CAMTRAIL_SKIP_INSTALL=1: skipped"
else
    install_missing
fi
section_done

# ------------------------------------------------------------------ 2. services

section "start kafka + clickhouse"
# Whatever is healthy now was started by someone else (an earlier `services.sh up`): leave it be.
BEFORE="$("$SERVICES" status 2>/dev/null || true)"
grep -q '^kafka: *healthy' <<<"$BEFORE" || STARTED_KAFKA=1
grep -q '^clickhouse: *healthy' <<<"$BEFORE" || STARTED_CH=1
"$SERVICES" up
"$SERVICES" status
section_done

export CAMTRAIL_KAFKA__BROKERS="$KAFKA_BOOTSTRAP"
export CAMTRAIL_CLICKHOUSE__URL="$CH_URL"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-$([ "${CI:-}" = true ] && echo never || echo auto)}"

if [ "$SETUP_ONLY" = 1 ]; then
    log "--setup-only: skipping cargo and pytest"
    exit 0
fi

# ------------------------------------------------------------------ 3. checks

section "cargo fmt --check"
cargo fmt --all --check
section_done

section "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
section_done

section "embedded build (no distributed clients)"
# `camtrail serve` / `demo` without the distributed feature: checked, built, and proven to
# link neither librdkafka nor the ClickHouse client.
cargo clippy -p camtrail --no-default-features --all-targets --locked -- -D warnings
cargo build -p camtrail --no-default-features --locked
if cargo tree -p camtrail --no-default-features -e normal --locked | grep -E 'rdkafka|clickhouse v'; then
    die "the embedded build links a distributed client (above)"
fi
log "embedded build: no rdkafka, no clickhouse client"
section_done

section "cargo test"
cargo test --workspace --locked "$@"
section_done

section "workspace: bundle matches a fresh build, browser tests (Playwright + chromium)"
# The bundle in web/dist is committed (compiled into the binary): a fresh `npm ci && npm
# run build` must give the same bytes.
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
    die "the web/dist check compares with git: run the tests from a git checkout"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
if ! git diff --quiet -- web/dist || [ -n "$(git ls-files --others --exclude-standard -- web/dist)" ]; then
    git status --short -- web/dist
    die "web/dist differs from a fresh build of web/ (run: cd web && npm ci && npm run build, and commit)"
fi
# The binary the browser tests start: the full build, with the bundle just checked.
cargo build -p camtrail --locked
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$CAMTRAIL_REPO/$target_dir" ;; esac
(cd web && CAMTRAIL_BIN="$target_dir/debug/camtrail" npx playwright test)
log "screenshots of each flow: web/test-results/screens/"
section_done

section "schema on a modern ClickHouse (chdb)"
python3 -m pytest clickhouse/migrations/tests -q -p no:cacheprovider
section_done

section "cluster fault test (3 brokers, 2x2 ClickHouse, ZooKeeper)"
# Not part of `cargo test --workspace` (test = false): it needs the whole machine for a few
# minutes. Its table goes to target/cluster-faults/faults.md.
cargo clippy --locked --test cluster -- -D warnings
# The single node's services are done with: give the cluster the machine.
if [ "$STARTED_CH" = 1 ] && [ "${CAMTRAIL_KEEP_SERVICES:-0}" != 1 ]; then
    "$SERVICES" stop-clickhouse
    STARTED_CH=0
fi
if [ "$STARTED_KAFKA" = 1 ] && [ "${CAMTRAIL_KEEP_SERVICES:-0}" != 1 ]; then
    "$SERVICES" stop-kafka
    STARTED_KAFKA=0
fi
"$CLUSTER" status >/dev/null 2>&1 || STARTED_CLUSTER=1
"$CLUSTER" up
cargo test --locked --test cluster -- --nocapture
section_done
