#!/usr/bin/env bash
# Start/stop a real Apache Kafka (KRaft, single node) and ClickHouse server for local runs and
# tests, as plain background processes owned by this checkout. No Docker, no systemd.
#
#   deploy/local/services.sh up                 start both (no-op for what is already up), wait until both answer
#   deploy/local/services.sh down               stop exactly what `up` started (pid files)
#   deploy/local/services.sh status             healthy/down + versions; exit 0 only when both are healthy
#   deploy/local/services.sh reset              down, then delete Kafka and ClickHouse data (jars are kept)
#   deploy/local/services.sh start-kafka | stop-kafka | start-clickhouse | stop-clickhouse
#   deploy/local/services.sh env                print the CAMTRAIL_* exports for these services
#
# Endpoints: Kafka PLAINTEXT 127.0.0.1:9092 (controller 127.0.0.1:9093),
#            ClickHouse HTTP 127.0.0.1:8123, native TCP 127.0.0.1:9000 (user default, no password).
#
# State lives in ${CAMTRAIL_LOCAL_DIR:-<repo>/.local}:
#   kafka/libs (jars from deploy/kafka/pom.xml), kafka/data, kafka/logs, kafka/kafka.pid
#   clickhouse/{config.xml,users.xml,data,tmp,logs,...}, clickhouse/clickhouse.pid
#
# Environment:
#   CAMTRAIL_LOCAL_DIR              state directory (default <repo>/.local)
#   CAMTRAIL_KAFKA_HEAP_OPTS        default "-Xmx512m -Xms512m"
#   CAMTRAIL_KAFKA_JVM_OPTS         extra JVM flags for the broker
#   CAMTRAIL_UP_TIMEOUT             seconds to wait for each service to answer (default 90)
#   CAMTRAIL_STOP_TIMEOUT           seconds between SIGTERM and SIGKILL on stop (default 30)
#   CAMTRAIL_STOP_SYSTEM_CLICKHOUSE =1: if a system clickhouse-server (e.g. started by the Debian
#                                   package) holds 8123/9000, stop it instead of failing
set -euo pipefail

LOG_TAG=services
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE="$CAMTRAIL_REPO/deploy/local"
UP_TIMEOUT="${CAMTRAIL_UP_TIMEOUT:-90}"
STOP_TIMEOUT="${CAMTRAIL_STOP_TIMEOUT:-30}"

KAFKA_DIR="$CAMTRAIL_LOCAL_DIR/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
KAFKA_TOOLS_LOG4J="$KAFKA_DIR/tools-log4j2.properties"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_HEAP_OPTS="${CAMTRAIL_KAFKA_HEAP_OPTS:--Xmx512m -Xms512m}"
KAFKA_JVM_OPTS="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
 ${CAMTRAIL_KAFKA_JVM_OPTS:-}"

CH_DIR="$CAMTRAIL_LOCAL_DIR/clickhouse"
CH_CONF="$CH_DIR/config.xml"
CH_LOGS="$CH_DIR/logs"
CH_PID="$CH_DIR/clickhouse.pid"

# --------------------------------------------------------------------------- processes

# pid_of PIDFILE MARKER: print the pid recorded in PIDFILE if that process is alive and its
# command line contains MARKER (guards against a recycled pid); fail otherwise.
pid_of() {
    local pidfile="$1" marker="$2" pid
    [ -s "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
    echo "$pid"
}

# stop_pid NAME PIDFILE MARKER: SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL.
stop_pid() {
    local name="$1" pidfile="$2" marker="$3" pid t0
    if ! pid="$(pid_of "$pidfile" "$marker")"; then
        if [ -e "$pidfile" ]; then
            log "$name: stale pid file removed"
            rm -f "$pidfile"
        else
            log "$name: not running (no pid file)"
        fi
        return 0
    fi
    t0="$(now_s)"
    log "$name: stopping pid $pid (SIGTERM)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name: still alive after ${STOP_TIMEOUT}s, SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile"
    log "$name: stopped in $(elapsed "$t0")"
}

# wait_healthy NAME CHECKFN PIDFILE MARKER LOGFILES...: poll CHECKFN until it succeeds; fail if the
# process dies or UP_TIMEOUT passes, printing the tail of the logs.
wait_healthy() {
    local name="$1" check="$2" pidfile="$3" marker="$4"
    shift 4
    local deadline=$((SECONDS + UP_TIMEOUT)) why=""
    while true; do
        if "$check"; then
            return 0
        fi
        if ! pid_of "$pidfile" "$marker" >/dev/null; then
            why="process exited"
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            why="not answering after ${UP_TIMEOUT}s"
            break
        fi
        sleep 1
    done
    log "$name: FAILED to come up: $why"
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then
            printf '\n----- tail -n 40 %s -----\n' "$f" >&2
            tail -n 40 "$f" >&2
        fi
    done
    return 1
}

# Fail (or, for a system ClickHouse with CAMTRAIL_STOP_SYSTEM_CLICKHOUSE=1, stop it) when a
# foreign process holds one of our ports.
check_ports_free() {
    local name="$1" port owner
    shift
    for port in "$@"; do
        port_open "$port" || continue
        owner="$(port_owner "$port")"
        if [ "$name" = clickhouse ] && [[ "$owner" == *clickhouse* ]] && [[ "$owner" != *"$CH_CONF"* ]] &&
            [ "${CAMTRAIL_STOP_SYSTEM_CLICKHOUSE:-0}" = 1 ]; then
            log "clickhouse: a system clickhouse-server holds port $port ($owner); stopping it"
            stop_system_clickhouse "${owner%% *}"
            port_open "$port" || continue
        fi
        die "$name: port 127.0.0.1:$port is already in use by ${owner:-an unknown process (install iproute2 for details)}; stop it first (a Debian-started clickhouse: 'service clickhouse-server stop', or rerun with CAMTRAIL_STOP_SYSTEM_CLICKHOUSE=1)"
    done
}

stop_system_clickhouse() {
    local pid="$1"
    if have service; then
        as_root service clickhouse-server stop >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/clickhouse-server ]; then
        as_root /etc/init.d/clickhouse-server stop >/dev/null 2>&1 || true
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        as_root kill -TERM "$pid" 2>/dev/null || true
        local _
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
    fi
}

# --------------------------------------------------------------------------- kafka

kafka_version() {
    local jar
    jar="$(find "$KAFKA_LIBS" -maxdepth 1 -name 'kafka_2.13-*.jar' 2>/dev/null | head -n1)"
    [ -n "$jar" ] || return 1
    jar="${jar##*/kafka_2.13-}"
    echo "${jar%.jar}"
}

kafka_fetch() {
    if kafka_version >/dev/null; then
        return 0
    fi
    have mvn || die "kafka: jars missing in $KAFKA_LIBS and mvn is not installed"
    have java || die "kafka: java is not installed (Java 17+ required)"
    local t0 tmp
    t0="$(now_s)"
    tmp="$KAFKA_DIR/libs.partial"
    rm -rf "$tmp"
    mkdir -p "$KAFKA_DIR"
    : >"$KAFKA_DIR/mvn.log"
    log "kafka: fetching jars from Maven Central (deploy/kafka/pom.xml) ..."
    mvn -q -B -Dstyle.color=never -f "$CAMTRAIL_REPO/deploy/kafka/pom.xml" \
        dependency:copy-dependencies -DoutputDirectory="$tmp" >"$KAFKA_DIR/mvn.log" 2>&1 ||
        {
            cat "$KAFKA_DIR/mvn.log" >&2
            die "kafka: mvn could not fetch the jars (is Maven Central reachable?)"
        }
    kafka_fix_slf4j "$tmp"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars fetched in $(elapsed "$t0")"
}

# Kafka 4.1 logs through slf4j-api 1.7.x (pinned by kafka-clients), whose binding to log4j2 is
# log4j-slf4j-impl; log4j-slf4j2-impl only binds slf4j 2.x, so with it the broker silently logs
# nowhere ("SLF4J: Defaulting to no-operation (NOP) logger"). Swap the binding when needed.
kafka_fix_slf4j() {
    local dir="$1" core ver
    if ! compgen -G "$dir/slf4j-api-1.*.jar" >/dev/null || compgen -G "$dir/log4j-slf4j-impl-*.jar" >/dev/null; then
        return 0
    fi
    core="$(compgen -G "$dir/log4j-core-*.jar" | head -n1)"
    [ -n "$core" ] || return 0
    ver="${core##*/log4j-core-}"
    ver="${ver%.jar}"
    log "kafka: slf4j-api 1.x in the jar set; adding org.apache.logging.log4j:log4j-slf4j-impl:$ver"
    mvn -q -B -Dstyle.color=never -f "$CAMTRAIL_REPO/deploy/kafka/pom.xml" dependency:copy \
        -Dartifact="org.apache.logging.log4j:log4j-slf4j-impl:$ver" -DoutputDirectory="$dir" \
        >>"$KAFKA_DIR/mvn.log" 2>&1 ||
        {
            cat "$KAFKA_DIR/mvn.log" >&2
            die "kafka: mvn could not fetch log4j-slf4j-impl"
        }
    rm -f "$dir"/log4j-slf4j2-impl-*.jar
}

# A real metadata round trip: kcat if present, else the broker-api-versions tool from the jars.
kafka_healthy() {
    local out
    port_open "$KAFKA_PORT" || return 1
    if have kcat; then
        out="$(kcat -L -b "$KAFKA_BOOTSTRAP" -m 3 2>/dev/null)" || return 1
        [[ "$out" == *"broker 1 at"* ]]
    else
        out="$(java -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" \
            org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$KAFKA_BOOTSTRAP" 2>/dev/null)" || return 1
        [[ "$out" == *"(id: 1 "* ]]
    fi
}

kafka_tool() {
    # shellcheck disable=SC2086
    java -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" "$@"
}

kafka_prepare() {
    kafka_fetch
    kafka_fix_slf4j "$KAFKA_LIBS"
    mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
    sed -e "s|@KAFKA_DATA_DIR@|$KAFKA_DATA|g" "$HERE/kafka/server.properties.in" >"$KAFKA_CONF"
    cp "$HERE/kafka/log4j2.properties" "$KAFKA_LOG4J"
    cp "$HERE/kafka/tools-log4j2.properties" "$KAFKA_TOOLS_LOG4J"
    if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
        local t0 cid
        t0="$(now_s)"
        # In 4.x the storage tool is still the Scala object kafka.tools.StorageTool.
        cid="$(kafka_tool kafka.tools.StorageTool random-uuid | tail -n1)"
        [[ "$cid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka: bad cluster id from StorageTool: '$cid'"
        log "kafka: formatting $KAFKA_DATA (cluster id $cid, standalone controller)"
        kafka_tool kafka.tools.StorageTool format --standalone -t "$cid" -c "$KAFKA_CONF" \
            >>"$KAFKA_LOGS/format.log" 2>&1 ||
            {
                tail -n 20 "$KAFKA_LOGS/format.log" >&2
                die "kafka: storage format failed"
            }
        log "kafka: formatted in $(elapsed "$t0")"
    fi
}

kafka_start() {
    if pid_of "$KAFKA_PID" "$KAFKA_CONF" >/dev/null; then
        log "kafka: already running (pid $(cat "$KAFKA_PID"))"
        return 0
    fi
    rm -f "$KAFKA_PID"
    check_ports_free kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
    kafka_prepare
    have java || die "kafka: java is not installed (Java 17+ required)"
    log "kafka: starting Apache Kafka $(kafka_version) (KRaft, $KAFKA_BOOTSTRAP, heap: $KAFKA_HEAP_OPTS)"
    # shellcheck disable=SC2086
    spawn "$KAFKA_PID" "$KAFKA_LOGS/stdout.log" \
        java $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$KAFKA_LOGS" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF"
}

kafka_wait() {
    wait_healthy kafka kafka_healthy "$KAFKA_PID" "$KAFKA_CONF" \
        "$KAFKA_LOGS/server.log" "$KAFKA_LOGS/stdout.log"
}

kafka_stop() { stop_pid kafka "$KAFKA_PID" "$KAFKA_CONF"; }

# --------------------------------------------------------------------------- clickhouse

ch_server_bin() {
    if have clickhouse-server; then
        command -v clickhouse-server
    elif [ -x /usr/sbin/clickhouse-server ]; then
        echo /usr/sbin/clickhouse-server
    elif [ -x /usr/bin/clickhouse-server ]; then
        echo /usr/bin/clickhouse-server
    else
        return 1
    fi
}

ch_query() {
    curl -fsS --max-time 5 --data-binary "$1" "$CH_URL/" 2>/dev/null
}

ch_healthy() {
    local out
    out="$(curl -fsS --max-time 2 "$CH_URL/?query=SELECT%201" 2>/dev/null)" || return 1
    [ "$out" = 1 ]
}

ch_prepare() {
    mkdir -p "$CH_DIR"/{data,tmp,user_files,format_schemas,logs}
    sed -e "s|@CH_DIR@|$CH_DIR|g" "$HERE/clickhouse/config.xml.in" >"$CH_CONF"
    cp "$HERE/clickhouse/users.xml" "$CH_DIR/users.xml"
}

ch_start() {
    if pid_of "$CH_PID" "$CH_CONF" >/dev/null; then
        log "clickhouse: already running (pid $(cat "$CH_PID"))"
        return 0
    fi
    rm -f "$CH_PID"
    local bin
    bin="$(ch_server_bin)" || die "clickhouse: clickhouse-server is not installed (apt-get install clickhouse-server clickhouse-client)"
    have curl || die "clickhouse: curl is required"
    check_ports_free clickhouse "$CH_HTTP_PORT" "$CH_TCP_PORT"
    ch_prepare
    log "clickhouse: starting $bin (HTTP $CH_URL, native 127.0.0.1:$CH_TCP_PORT)"
    # Run from the config dir: users.xml is resolved relative to config.xml, and the server
    # writes its preprocessed config there.
    (cd "$CH_DIR" && spawn "$CH_PID" "$CH_LOGS/stdout.log" "$bin" --config-file="$CH_CONF")
}

ch_wait() {
    wait_healthy clickhouse ch_healthy "$CH_PID" "$CH_CONF" \
        "$CH_LOGS/clickhouse-server.err.log" "$CH_LOGS/stdout.log"
}

ch_stop() { stop_pid clickhouse "$CH_PID" "$CH_CONF"; }

# --------------------------------------------------------------------------- commands

up() {
    local t0 k_was c_was
    t0="$(now_s)"
    k_was=down c_was=down
    if pid_of "$KAFKA_PID" "$KAFKA_CONF" >/dev/null && kafka_healthy; then k_was=up; fi
    if pid_of "$CH_PID" "$CH_CONF" >/dev/null && ch_healthy; then c_was=up; fi
    if [ "$k_was" = up ] && [ "$c_was" = up ]; then
        log "kafka and clickhouse already up"
        return 0
    fi
    # Start both, then wait for both: the JVM and ClickHouse boot in parallel.
    [ "$c_was" = up ] || ch_start
    [ "$k_was" = up ] || kafka_start
    local ok=0
    if [ "$c_was" != up ]; then ch_wait || ok=1; fi
    if [ "$k_was" != up ]; then kafka_wait || ok=1; fi
    [ "$ok" -eq 0 ] || die "services did not come up (logs under $CAMTRAIL_LOCAL_DIR)"
    log "up in $(elapsed "$t0"): kafka $KAFKA_BOOTSTRAP, clickhouse $CH_URL"
}

down() {
    # ClickHouse first (a sink may still be flushing), then Kafka.
    ch_stop
    kafka_stop
}

status() {
    local rc=0 pid note
    if pid="$(pid_of "$KAFKA_PID" "$KAFKA_CONF")"; then note="pid $pid"; else note="not started by services.sh"; fi
    if kafka_healthy; then
        echo "kafka:      healthy  Apache Kafka $(kafka_version || echo '?') at $KAFKA_BOOTSTRAP ($note)"
    elif [ -n "${pid:-}" ]; then
        echo "kafka:      starting/unhealthy (pid $pid, not answering at $KAFKA_BOOTSTRAP)"
        rc=1
    else
        echo "kafka:      down"
        rc=1
    fi
    pid=""
    if pid="$(pid_of "$CH_PID" "$CH_CONF")"; then note="pid $pid"; else note="not started by services.sh"; fi
    if ch_healthy; then
        echo "clickhouse: healthy  ClickHouse $(ch_query 'SELECT version()' || echo '?') at $CH_URL, native 127.0.0.1:$CH_TCP_PORT ($note)"
    elif [ -n "${pid:-}" ]; then
        echo "clickhouse: starting/unhealthy (pid $pid, not answering at $CH_URL)"
        rc=1
    else
        echo "clickhouse: down"
        rc=1
    fi
    return "$rc"
}

reset() {
    down
    log "deleting $KAFKA_DATA, $KAFKA_LOGS and ClickHouse data/logs (jars kept)"
    rm -rf "$KAFKA_DATA" "$KAFKA_LOGS" \
        "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/logs" "$CH_DIR/user_files" "$CH_DIR/format_schemas" \
        "$CH_DIR/preprocessed_configs" "$CH_DIR"/*-preprocessed.xml
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

cmd="${1:-}"
case "$cmd" in
up) up ;;
down) down ;;
status) status ;;
reset) reset ;;
restart)
    down
    up
    ;;
start-kafka)
    kafka_start
    kafka_wait
    ;;
stop-kafka) kafka_stop ;;
start-clickhouse)
    ch_start
    ch_wait
    ;;
stop-clickhouse) ch_stop ;;
env)
    echo "export CAMTRAIL_KAFKA__BROKERS=$KAFKA_BOOTSTRAP"
    echo "export CAMTRAIL_CLICKHOUSE__URL=$CH_URL"
    ;;
-h | --help | help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
