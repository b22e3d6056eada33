#!/usr/bin/env bash
# camtrail's roles on the cluster of deploy/cluster/cluster.sh, as a city would run them:
# two ingest nodes, two sinks (one consumer group, static membership, each writing a
# detection to a replica of its subject's shard), two query nodes (each preferring another
# ClickHouse server, failing over to the others) and the watchlist alert role.
#
#   deploy/cluster/roles.sh up       cluster.sh up; a city of 140,000 cameras, gateway tokens and a
#                                    supervisor (first time); camtrail migrate --cluster camtrail;
#                                    start the roles that are not running; wait until they answer
#   deploy/cluster/roles.sh down     stop the roles (SIGTERM: each drains), not the cluster
#   deploy/cluster/roles.sh status   one line per role; exit 0 only if all answer
#   deploy/cluster/roles.sh load [SECONDS] [RATE]   drive both ingest nodes (default 60 s, 5000/s)
#
# Uses target/release/camtrail (build it first: cargo build --release). State, logs and
# secrets (gateway tokens, the supervisor's token: mode 0600) under
# ${CAMTRAIL_LOCAL_DIR:-<repo>/.local}/cluster/roles/. Ports (127.0.0.1):
#   ingest-1 gRPC 51051, metrics 18081     ingest-2 gRPC 51052, metrics 18082
#   sink-1   metrics 18083                 sink-2   metrics 18084
#   query-1  HTTP 18080, gRPC 51061        query-2  HTTP 18090, gRPC 51062
#   alert-1  (no port)
set -euo pipefail

# shellcheck disable=SC2034  # read by lib.sh's log()
LOG_TAG=roles
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"

BIN="$CAMTRAIL_REPO/target/release/camtrail"
DIR="$CAMTRAIL_LOCAL_DIR/cluster/roles"
CONFIG="$DIR/camtrail.toml"
ROLES=(ingest-1 ingest-2 sink-1 sink-2 query-1 query-2 alert-1)
CH=(http://127.0.0.1:18123 http://127.0.0.1:18124 http://127.0.0.1:18125 http://127.0.0.1:18126)

# role_env ROLE: the role's own settings (NAME=VALUE words) into the array ENV.
role_env() {
    case "$1" in
    ingest-1) ENV=(CAMTRAIL_INGEST__GRPC_ADDR=127.0.0.1:51051 CAMTRAIL_INGEST__HTTP_ADDR=127.0.0.1:18081) ;;
    ingest-2) ENV=(CAMTRAIL_INGEST__GRPC_ADDR=127.0.0.1:51052 CAMTRAIL_INGEST__HTTP_ADDR=127.0.0.1:18082) ;;
    sink-1) ENV=(CAMTRAIL_SINK__HTTP_ADDR=127.0.0.1:18083 CAMTRAIL_SINK__INSTANCE_ID=sink-1) ;;
    sink-2) ENV=(CAMTRAIL_SINK__HTTP_ADDR=127.0.0.1:18084 CAMTRAIL_SINK__INSTANCE_ID=sink-2) ;;
    # query-2 prefers the second shard's first replica; both fail over to the others.
    query-1) ENV=(CAMTRAIL_QUERY__HTTP_ADDR=127.0.0.1:18080 CAMTRAIL_QUERY__GRPC_ADDR=127.0.0.1:51061
        CAMTRAIL_QUERY__NODE_NAME=query-1) ;;
    query-2) ENV=(CAMTRAIL_QUERY__HTTP_ADDR=127.0.0.1:18090 CAMTRAIL_QUERY__GRPC_ADDR=127.0.0.1:51062
        CAMTRAIL_QUERY__NODE_NAME=query-2 "CAMTRAIL_CLICKHOUSE__URL=${CH[2]}"
        "CAMTRAIL_CLICKHOUSE__FAILOVER_URLS=[\"${CH[3]}\",\"${CH[0]}\",\"${CH[1]}\"]") ;;
    alert-1) ENV=(CAMTRAIL_ALERT__INSTANCE_ID=alert-1) ;;
    esac
}

command_of() { echo "${1%-*}"; }

health_url() {
    case "$1" in
    ingest-1) echo http://127.0.0.1:18081/healthz ;;
    ingest-2) echo http://127.0.0.1:18082/healthz ;;
    sink-1) echo http://127.0.0.1:18083/healthz ;;
    sink-2) echo http://127.0.0.1:18084/healthz ;;
    query-1) echo http://127.0.0.1:18080/healthz ;;
    query-2) echo http://127.0.0.1:18090/healthz ;;
    *) echo "" ;;
    esac
}

pid_of() {
    local pid
    [ -s "$DIR/$1.pid" ] || return 1
    pid="$(cat "$DIR/$1.pid")"
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$BIN --config $CONFIG $(command_of "$1")" || return 1
    echo "$pid"
}

healthy() {
    local url
    pid_of "$1" >/dev/null || return 1
    url="$(health_url "$1")"
    [ -z "$url" ] || curl -fsS -m 2 "$url" >/dev/null 2>&1
}

prepare() {
    [ -x "$BIN" ] || die "$BIN is missing: cargo build --release first"
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    if [ ! -s "$DIR/city/cameras.csv" ] || [ ! -s "$DIR/tokens/gateway_token_hashes.csv" ] ||
        [ ! -s "$DIR/supervisor.token" ]; then
        rm -rf "$DIR/city" "$DIR/tokens" "$DIR/users.toml" "$DIR/supervisor.token"
        log "city: 140,000 cameras, 300 gateways; gateway tokens; a supervisor"
        "$BIN" city --seed 7 --cameras 140000 --gateways 300 --out "$DIR/city" >&2
        (umask 077 && "$BIN" gateways issue --registry "$DIR/city/cameras.csv" --out "$DIR/tokens" >&2)
        (umask 077 && "$BIN" users issue --name supervisor --role supervisor --users "$DIR/users.toml" \
            >"$DIR/supervisor.token" 2>/dev/null)
    fi
    (
        umask 077
        cat >"$CONFIG" <<EOF
# Written by deploy/cluster/roles.sh: the roles' shared settings; each role's own (addresses,
# instance ids, preferred ClickHouse server) come from its environment.
[kafka]
brokers = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
replication_factor = 3
detections_partitions = 12

[clickhouse]
url = "${CH[0]}"
failover_urls = ["${CH[1]}", "${CH[2]}", "${CH[3]}"]
cluster = "camtrail"
shards = [["${CH[0]}", "${CH[1]}"], ["${CH[2]}", "${CH[3]}"]]

[ingest]
registry_path = "$DIR/city/cameras.csv"
gateway_tokens_path = "$DIR/tokens/gateway_token_hashes.csv"

[sink]
session_timeout_ms = 10000

[alert]
session_timeout_ms = 10000

[query]
registry_path = "$DIR/city/cameras.csv"
users_path = "$DIR/users.toml"
EOF
    )
}

start_role() {
    local role="$1"
    if pid_of "$role" >/dev/null; then return 0; fi
    local ENV=()
    role_env "$role"
    spawn "$DIR/$role.pid" "$DIR/$role.log" \
        env "${ENV[@]}" "$BIN" --config "$CONFIG" "$(command_of "$role")"
}

wait_role() {
    local role="$1" _
    for _ in $(seq 600); do
        healthy "$role" && return 0
        pid_of "$role" >/dev/null || die "$role exited; see $DIR/$role.log"
        sleep 0.1
    done
    die "$role did not answer in 60 s; see $DIR/$role.log"
}

up() {
    local t0 role
    t0="$(now_s)"
    "$CAMTRAIL_REPO/deploy/cluster/cluster.sh" up
    prepare
    "$BIN" --config "$CONFIG" migrate --cluster camtrail >&2
    for role in "${ROLES[@]}"; do start_role "$role"; done
    for role in "${ROLES[@]}"; do wait_role "$role"; done
    log "roles up in $(elapsed "$t0"): query http://127.0.0.1:18080 and http://127.0.0.1:18090 (supervisor token in $DIR/supervisor.token), ingest gRPC 127.0.0.1:51051,127.0.0.1:51052"
}

down() {
    local role pid
    for role in "${ROLES[@]}"; do
        if pid="$(pid_of "$role")"; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for role in "${ROLES[@]}"; do
        for _ in $(seq 300); do pid_of "$role" >/dev/null || break; sleep 0.1; done
        if pid="$(pid_of "$role")"; then
            log "$role did not stop in 30 s; kill -9"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$DIR/$role.pid"
    done
    log "roles stopped"
}

status() {
    local role rc=0 pid
    for role in "${ROLES[@]}"; do
        pid="$(pid_of "$role")" || pid=-
        if healthy "$role"; then
            printf '%-9s healthy  pid %s\n' "$role" "$pid"
        else
            printf '%-9s down\n' "$role"
            rc=1
        fi
    done
    return "$rc"
}

load() {
    local seconds="${1:-60}" rate="${2:-5000}"
    "$BIN" loadgen --registry "$DIR/city/cameras.csv" --cameras 140000 --city-gateways 300 \
        --target http://127.0.0.1:51051,http://127.0.0.1:51052 \
        --tokens "$DIR/tokens/gateway_tokens.csv" --rate "$rate" --duration "$seconds" \
        --batch-size 500
}

cmd="${1:-}"
[ "$#" -eq 0 ] || shift
case "$cmd" in
up) up ;;
down) down ;;
status) status ;;
load) load "$@" ;;
*)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    [ -z "$cmd" ] || [ "$cmd" = help ] || exit 2
    ;;
esac
