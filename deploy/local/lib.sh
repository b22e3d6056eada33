# shellcheck shell=bash
# Helpers shared by deploy/local/services.sh and deploy/local/test.sh. Sourced, not executed.

CAMTRAIL_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CAMTRAIL_LOCAL_DIR="${CAMTRAIL_LOCAL_DIR:-$CAMTRAIL_REPO/.local}"
mkdir -p "$CAMTRAIL_LOCAL_DIR"
CAMTRAIL_LOCAL_DIR="$(cd "$CAMTRAIL_LOCAL_DIR" && pwd)"

# Fixed local endpoints (the defaults the code and tests expect); used by the sourcing scripts.
# shellcheck disable=SC2034
{
    KAFKA_HOST=127.0.0.1
    KAFKA_PORT=9092
    KAFKA_CONTROLLER_PORT=9093
    KAFKA_BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"
    CH_HOST=127.0.0.1
    CH_HTTP_PORT=8123
    CH_TCP_PORT=9000
    CH_URL="http://$CH_HOST:$CH_HTTP_PORT"
}

log() { printf '[%s] %s\n' "${LOG_TAG:-camtrail}" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# Seconds since the epoch with millisecond precision, and elapsed time since a mark.
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1fs", b - a }'; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Best effort: "pid cmdline" of the process listening on TCP port $1 (empty if unknown).
# Uses ss when present, else maps the socket inode from /proc/net/tcp{,6} to a process.
port_owner() {
    local pid="" hex inode fd
    if have ss; then
        pid="$(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)"
    fi
    if [ -z "$pid" ]; then
        hex="$(printf '%04X' "$1")"
        inode="$(awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10; exit }' \
            /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)"
        if [ -n "$inode" ]; then
            fd="$(find /proc/[0-9]*/fd -lname "socket:\[$inode\]" -print -quit 2>/dev/null || true)"
            if [ -n "$fd" ]; then
                pid="${fd#/proc/}"
                pid="${pid%%/*}"
            fi
        fi
    fi
    if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
        printf '%s %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    fi
}

# spawn PIDFILE OUTFILE CMD...: run CMD detached (own session, no stdin, output to OUTFILE),
# record its pid in PIDFILE.
spawn() {
    local pidfile="$1" out="$2"
    shift 2
    rm -f "$pidfile"
    # The inner shell writes its own pid, then execs CMD, so the pid file holds CMD's pid even
    # when setsid has to fork.
    # shellcheck disable=SC2016
    nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$out" 2>&1 </dev/null &
    local _
    for _ in $(seq 1 50); do
        [ -s "$pidfile" ] && return 0
        sleep 0.1
    done
    die "could not start: $*"
}
