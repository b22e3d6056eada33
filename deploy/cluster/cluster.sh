#!/usr/bin/env bash
# A multi-process cluster of REAL services on this one machine, as plain background processes
# owned by this checkout (no Docker, no systemd): one ZooKeeper, three Kafka brokers (KRaft,
# static quorum) and four ClickHouse servers (2 shards x 2 replicas). For cluster-mode runs
# and fault tests; the single-node services of deploy/local/services.sh are independent of it
# (different ports and state) and may run at the same time.
#
#   deploy/cluster/cluster.sh up              start what is not running, wait until everything answers
#                                             and the cluster is ready (3 live brokers, writable replicas)
#   deploy/cluster/cluster.sh down            stop exactly what up/start started (pid files):
#                                             SIGTERM, then SIGKILL after CAMTRAIL_STOP_TIMEOUT
#   deploy/cluster/cluster.sh status          one line per process; exit 0 only if all are healthy
#   deploy/cluster/cluster.sh kill NAME...    kill -9 (fault injection), e.g. kill kafka-2
#   deploy/cluster/cluster.sh start NAME...   start (again) and wait until it answers; for ch-S-R
#                                             (and for zookeeper: the running ch-S-R) also until
#                                             the replicated tables are active again (10-20 s)
#   deploy/cluster/cluster.sh stop NAME...    graceful stop of single processes
#   deploy/cluster/cluster.sh mem             resident memory (VmRSS) per process and the total
#   deploy/cluster/cluster.sh env             endpoints, and CAMTRAIL_* exports for cluster mode
#   deploy/cluster/cluster.sh reset           down, then delete all cluster state (Kafka jars kept)
#
# Processes (NAME) and their fixed ports, all listening on 127.0.0.1 only:
#   zookeeper  ZooKeeper 3.8 (Debian package), standalone   client 2181 (no admin server)
#   kafka-1    Kafka 4.x broker+controller, node.id 1       PLAINTEXT 19092, CONTROLLER 19192
#   kafka-2    Kafka 4.x broker+controller, node.id 2       PLAINTEXT 19093, CONTROLLER 19193
#   kafka-3    Kafka 4.x broker+controller, node.id 3       PLAINTEXT 19094, CONTROLLER 19194
#   ch-1-1     ClickHouse 18.16, shard 01, replica ch-1-1   HTTP 18123, native 19101, interserver 19201
#   ch-1-2     ClickHouse 18.16, shard 01, replica ch-1-2   HTTP 18124, native 19102, interserver 19202
#   ch-2-1     ClickHouse 18.16, shard 02, replica ch-2-1   HTTP 18125, native 19103, interserver 19203
#   ch-2-2     ClickHouse 18.16, shard 02, replica ch-2-2   HTTP 18126, native 19104, interserver 19204
# Kafka: controller.quorum.voters=1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194,
#   default RF 3, min.insync.replicas 2, no topic auto-creation.
# ClickHouse: remote_servers cluster `camtrail` (2 shards, internal_replication), macros
#   {shard} = 01/02 and {replica} = the NAME, ON CLUSTER DDL queue /clickhouse/task_queue/ddl
#   in the zookeeper above; user default, no password (deploy/local/clickhouse/users.xml).
#
# State: ${CAMTRAIL_LOCAL_DIR:-<repo>/.local}/cluster/NAME/ (rendered config, data, logs/, pid),
#   plus cluster/kafka-cluster-id (the id all three Kafka storage dirs are formatted with).
#   The Kafka jars are the single node's, $CAMTRAIL_LOCAL_DIR/kafka/libs: they are fetched by
#   `deploy/local/services.sh up` (Maven, deploy/kafka/pom.xml), which must have run once.
#
# Environment:
#   CAMTRAIL_LOCAL_DIR               state directory (default <repo>/.local)
#   CAMTRAIL_CLUSTER_UP_TIMEOUT      seconds to wait for each process to answer (default 120)
#   CAMTRAIL_STOP_TIMEOUT            seconds between SIGTERM and SIGKILL on stop (default 30)
#   CAMTRAIL_CLUSTER_KAFKA_HEAP_OPTS default "-Xmx384m -Xms384m" (per broker)
#   CAMTRAIL_CLUSTER_ZK_HEAP_OPTS    default "-Xmx128m -Xms128m"
set -euo pipefail

LOG_TAG=cluster
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"

HERE="$CAMTRAIL_REPO/deploy/cluster"
# Templates shared with the single node (users.xml, Kafka log4j2 files) are used from here.
LOCAL_TPL="$CAMTRAIL_REPO/deploy/local"
CLUSTER_DIR="$CAMTRAIL_LOCAL_DIR/cluster"
UP_TIMEOUT="${CAMTRAIL_CLUSTER_UP_TIMEOUT:-120}"
STOP_TIMEOUT="${CAMTRAIL_STOP_TIMEOUT:-30}"

ZK_PORT=2181
ZK_JARS=/usr/share/java
ZK_HEAP_OPTS="${CAMTRAIL_CLUSTER_ZK_HEAP_OPTS:--Xmx128m -Xms128m}"

KAFKA_NODES=(kafka-1 kafka-2 kafka-3)
KAFKA_LIBS="$CAMTRAIL_LOCAL_DIR/kafka/libs"
KAFKA_TOOLS_LOG4J="$LOCAL_TPL/kafka/tools-log4j2.properties"
KAFKA_CLUSTER_ID_FILE="$CLUSTER_DIR/kafka-cluster-id"
KAFKA_VOTERS="1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194"
KAFKA_BROKERS="127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
KAFKA_HEAP="${CAMTRAIL_CLUSTER_KAFKA_HEAP_OPTS:--Xmx384m -Xms384m}"
# As deploy/local/services.sh: G1 with short pauses, die on OOM instead of limping on.
KAFKA_JVM="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true"
# Short-lived Kafka tools (format, random-uuid, health fallback): start fast, stay small.
TOOL_JVM="-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xmx256m"

CH_NODES=(ch-1-1 ch-1-2 ch-2-1 ch-2-2)
ALL_NODES=(zookeeper "${KAFKA_NODES[@]}" "${CH_NODES[@]}")

# --------------------------------------------------------------------------- per-node facts

kind_of() {
    case "$1" in
    zookeeper) echo zk ;;
    kafka-[123]) echo kafka ;;
    ch-[12]-[12]) echo ch ;;
    *) return 1 ;;
    esac
}

check_names() {
    local n
    [ "$#" -gt 0 ] || die "which process? one of: ${ALL_NODES[*]}"
    for n in "$@"; do
        kind_of "$n" >/dev/null || die "unknown process '$n' (one of: ${ALL_NODES[*]})"
    done
}

node_dir() { echo "$CLUSTER_DIR/$1"; }
pid_file() { echo "$CLUSTER_DIR/$1/pid"; }

# The rendered config file's path: unique per node, so it is on the command line of exactly
# one process and serves as the marker that tells our process from a recycled pid.
marker() {
    case "$(kind_of "$1")" in
    zk) echo "$CLUSTER_DIR/$1/zoo.cfg" ;;
    kafka) echo "$CLUSTER_DIR/$1/server.properties" ;;
    ch) echo "$CLUSTER_DIR/$1/config.xml" ;;
    esac
}

kafka_id() { echo "${1#kafka-}"; }
kafka_port() { echo $((19091 + ${1#kafka-})); }
kafka_ctrl_port() { echo $((19191 + ${1#kafka-})); }

# ch-S-R -> 1..4 in the order ch-1-1, ch-1-2, ch-2-1, ch-2-2.
ch_index() {
    local s r
    s="${1#ch-}"
    r="${s#*-}"
    s="${s%-*}"
    echo $(((s - 1) * 2 + r))
}
ch_shard() {
    local s="${1#ch-}"
    printf '%02d' "${s%-*}"
}
ch_http_port() { echo $((18122 + $(ch_index "$1"))); }
ch_tcp_port() { echo $((19100 + $(ch_index "$1"))); }
ch_inter_port() { echo $((19200 + $(ch_index "$1"))); }

node_ports() {
    case "$(kind_of "$1")" in
    zk) echo "$ZK_PORT" ;;
    kafka) echo "$(kafka_port "$1") $(kafka_ctrl_port "$1")" ;;
    ch) echo "$(ch_http_port "$1") $(ch_tcp_port "$1") $(ch_inter_port "$1")" ;;
    esac
}

node_endpoint() {
    case "$(kind_of "$1")" in
    zk) echo "127.0.0.1:$ZK_PORT" ;;
    kafka) echo "127.0.0.1:$(kafka_port "$1") (controller :$(kafka_ctrl_port "$1"), node.id $(kafka_id "$1"))" ;;
    ch) echo "http://127.0.0.1:$(ch_http_port "$1") native :$(ch_tcp_port "$1") (shard $(ch_shard "$1"))" ;;
    esac
}

# Logs worth showing when a node does not come up.
node_logs() {
    local d
    d="$(node_dir "$1")/logs"
    case "$(kind_of "$1")" in
    zk) echo "$d/zookeeper.log $d/stdout.log" ;;
    kafka) echo "$d/server.log $d/stdout.log" ;;
    ch) echo "$d/clickhouse-server.err.log $d/stdout.log" ;;
    esac
}

# --------------------------------------------------------------------------- processes
# pid_of as in deploy/local/services.sh (spawn is lib.sh's), plus an alive check that also rejects zombies:
# PID 1 here is not necessarily a reaping init, and a killed child can linger as a zombie,
# which kill -0 still reports as present. A zombie has an empty cmdline, so the marker test
# fails for it.

# alive PID MARKER: PID runs and its command line contains MARKER.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# pid_of NAME: the recorded pid of NAME if that process is alive (and really ours).
pid_of() {
    local pidfile pid
    pidfile="$(pid_file "$1")"
    [ -s "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" "$(marker "$1")" || return 1
    echo "$pid"
}

# Refuse to start a node whose port someone else holds (a leftover process whose pid file was
# deleted, another checkout's cluster, ...): it would fail later with a less clear error.
check_ports_free() {
    local name="$1" port owner
    for port in $(node_ports "$name"); do
        port_open "$port" || continue
        owner="$(port_owner "$port")"
        die "$name: port 127.0.0.1:$port is already in use by ${owner:-an unknown process}; stop it first"
    done
}

# --------------------------------------------------------------------------- health checks

# A four-letter word to ZooKeeper over bash's /dev/tcp (nc is not installed everywhere).
zk_4lw() {
    # shellcheck disable=SC2016
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf %s "$1" >&3 && cat <&3' \
        "$ZK_PORT" "$1" 2>/dev/null
}

# "srvr" rather than "ruok": ruok answers imok as soon as the process listens, srvr reports a
# Mode only once the server actually serves requests (data loaded).
zk_healthy() {
    local out
    out="$(zk_4lw srvr)" || return 1
    [[ "$out" == *"Mode: standalone"* ]]
}

kafka_tool() {
    # shellcheck disable=SC2086
    java $TOOL_JVM -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" "$@"
}

# kafka_metadata BOOTSTRAP: "ID HOST:PORT" for each broker in a metadata response. In KRaft a
# broker is listed only once it has caught up with the metadata log and is unfenced, and drops
# out about broker.session.timeout.ms (3 s here) after it dies. kcat when present (fast), else the
# broker-api-versions tool from the jars (a JVM per call, ~1-2 s).
kafka_metadata() {
    if have kcat; then
        kcat -L -b "$1" -m 3 2>/dev/null | sed -n 's/^ *broker \([0-9]*\) at \([^ ]*\).*/\1 \2/p'
    else
        kafka_tool org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$1" 2>/dev/null |
            sed -n 's/^\([^ ]*\) (id: \([0-9]*\) .*/\2 \1/p'
    fi
}

# A broker is healthy when, asked itself, it lists itself among the live brokers.
kafka_healthy() {
    local port meta
    port="$(kafka_port "$1")"
    port_open "$port" || return 1
    meta="$(kafka_metadata "127.0.0.1:$port")" || return 1
    grep -qx "$(kafka_id "$1") 127.0.0.1:$port" <<<"$meta"
}

kafka_live_brokers() {
    local meta
    meta="$(kafka_metadata "$KAFKA_BROKERS")" || return 1
    grep -c . <<<"$meta"
}

ch_healthy() {
    local out
    out="$(curl -fsS --max-time 2 "http://127.0.0.1:$(ch_http_port "$1")/ping" 2>/dev/null)" || return 1
    [ "$out" = "Ok." ]
}

# ch_query NAME SQL: run SQL on NAME over HTTP, print the result.
ch_query() {
    curl -fsS --max-time 10 --data-binary "$2" "http://127.0.0.1:$(ch_http_port "$1")/"
}

node_healthy() {
    case "$(kind_of "$1")" in
    zk) zk_healthy ;;
    kafka) kafka_healthy "$1" ;;
    ch) ch_healthy "$1" ;;
    esac
}

# wait_node NAME: poll the health check until it passes; fail if the process dies or
# UP_TIMEOUT passes, printing the tail of its logs.
wait_node() {
    local name="$1" deadline=$((SECONDS + UP_TIMEOUT)) why="" f
    while true; do
        if node_healthy "$name"; then
            return 0
        fi
        if ! pid_of "$name" >/dev/null; then
            why="process exited"
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            why="not answering after ${UP_TIMEOUT}s"
            break
        fi
        sleep 0.5
    done
    log "$name: FAILED to come up: $why"
    for f in $(node_logs "$name"); do
        if [ -s "$f" ]; then
            printf '\n----- tail -n 30 %s -----\n' "$f" >&2
            tail -n 30 "$f" >&2
        fi
    done
    return 1
}

wait_nodes() {
    local n rc=0 t0
    t0="$(now_s)"
    for n in "$@"; do
        wait_node "$n" || rc=1
    done
    [ "$rc" -eq 0 ] && log "$* answering ($(elapsed "$t0") waited)"
    return "$rc"
}

# --------------------------------------------------------------------------- prerequisites

require_java() { have java || die "java is not installed (Java 17+ required)"; }

require_zk() {
    require_java
    [ -f "$ZK_JARS/zookeeper.jar" ] ||
        die "zookeeper: $ZK_JARS/zookeeper.jar missing (apt-get install zookeeper)"
}

require_kafka() {
    require_java
    compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null ||
        die "kafka: no Kafka jars in $KAFKA_LIBS. They are fetched (Maven, deploy/kafka/pom.xml) by the single-node script: run 'deploy/local/services.sh up' once (then 'deploy/local/services.sh down' if you do not need the single node)."
    # services.sh swaps in this slf4j 1.x binding at fetch time; without it brokers log nowhere.
    compgen -G "$KAFKA_LIBS/log4j-slf4j-impl-*.jar" >/dev/null ||
        log "kafka: warning: no log4j-slf4j-impl jar in $KAFKA_LIBS, broker logs may be empty (deploy/local/services.sh up fixes the jar set)"
}

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

require_ch() {
    ch_server_bin >/dev/null || die "clickhouse: clickhouse-server is not installed (apt-get install clickhouse-server clickhouse-client)"
    have curl || die "clickhouse: curl is required"
}

# --------------------------------------------------------------------------- zookeeper

zk_prepare() {
    local dir
    dir="$(node_dir zookeeper)"
    mkdir -p "$dir"/{data,datalog,logs}
    sed -e "s|@ZK_DIR@|$dir|g" -e "s|@ZK_PORT@|$ZK_PORT|g" "$HERE/zookeeper/zoo.cfg.in" >"$dir/zoo.cfg"
    cp "$HERE/zookeeper/log4j.properties" "$dir/log4j.properties"
}

zk_spawn() {
    local dir cp
    dir="$(node_dir zookeeper)"
    # What Debian's zkEnv.sh puts on the classpath is just /usr/share/java/zookeeper.jar: its
    # manifest Class-Path names the dependencies (jute, netty, slf4j-api, ...) by absolute path.
    # slf4j-api alone logs nowhere, so add the log4j 1.2 binding Debian ships (the package's
    # own scripts configure log4j 1.2 too).
    cp="$ZK_JARS/zookeeper.jar"
    if [ -f "$ZK_JARS/slf4j-log4j12.jar" ] && [ -f "$ZK_JARS/log4j-1.2.jar" ]; then
        cp="$cp:$ZK_JARS/slf4j-log4j12.jar:$ZK_JARS/log4j-1.2.jar"
    else
        log "zookeeper: warning: slf4j-log4j12/log4j-1.2 jars missing, zookeeper.log stays empty"
    fi
    log "zookeeper: starting ZooKeeper (standalone, 127.0.0.1:$ZK_PORT, heap: $ZK_HEAP_OPTS)"
    # Serial GC: a 128 MiB heap gains nothing from G1 and G1's bookkeeping costs resident memory.
    # shellcheck disable=SC2086
    spawn "$(pid_file zookeeper)" "$dir/logs/stdout.log" \
        java $ZK_HEAP_OPTS -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dzookeeper.log.dir="$dir/logs" -Dlog4j.configuration="file:$dir/log4j.properties" \
        -Dzookeeper.jmx.log4j.disable=true \
        -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg"
}

# --------------------------------------------------------------------------- kafka

kafka_prepare() {
    local name="$1" dir
    dir="$(node_dir "$name")"
    mkdir -p "$dir"/{data,logs}
    sed -e "s|@NODE_ID@|$(kafka_id "$name")|g" -e "s|@PORT@|$(kafka_port "$name")|g" \
        -e "s|@CONTROLLER_PORT@|$(kafka_ctrl_port "$name")|g" -e "s|@DATA_DIR@|$dir/data|g" \
        -e "s|@VOTERS@|$KAFKA_VOTERS|g" "$HERE/kafka/server.properties.in" >"$dir/server.properties"
    cp "$LOCAL_TPL/kafka/log4j2.properties" "$dir/log4j2.properties"
}

# The cluster id shared by the three storage dirs: remembered in a file; recovered from a
# formatted node if that file was lost; generated once otherwise.
kafka_cluster_id() {
    local id="" n meta
    if [ -s "$KAFKA_CLUSTER_ID_FILE" ]; then
        cat "$KAFKA_CLUSTER_ID_FILE"
        return 0
    fi
    for n in "${KAFKA_NODES[@]}"; do
        meta="$(node_dir "$n")/data/meta.properties"
        if [ -f "$meta" ]; then
            id="$(sed -n 's/^cluster\.id=//p' "$meta")"
            [ -n "$id" ] && break
        fi
    done
    if [ -z "$id" ]; then
        # In 4.x the storage tool is still the Scala object kafka.tools.StorageTool.
        id="$(kafka_tool kafka.tools.StorageTool random-uuid | tail -n1)"
    fi
    [[ "$id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka: bad cluster id '$id'"
    mkdir -p "$CLUSTER_DIR"
    echo "$id" >"$KAFKA_CLUSTER_ID_FILE"
    echo "$id"
}

# kafka_format NAME...: format the storage of each named broker that has none yet, all in
# parallel (a JVM each), with the same --cluster-id everywhere. Static quorum
# (controller.quorum.voters), so no quorum flag: --standalone and --initial-controllers
# bootstrap a dynamic (KIP-853) voter set and the 4.1 tool refuses them when
# controller.quorum.voters is set; --no-initial-controllers is accepted but changes nothing here.
kafka_format() {
    local cid n dir id pids=() names=() i rc=0 t0
    cid="$(kafka_cluster_id)"
    t0="$(now_s)"
    for n in "$@"; do
        dir="$(node_dir "$n")"
        if [ -f "$dir/data/meta.properties" ]; then
            id="$(sed -n 's/^cluster\.id=//p' "$dir/data/meta.properties")"
            [ "$id" = "$cid" ] ||
                die "$n: $dir/data is formatted for Kafka cluster '$id', not '$cid'; run '$0 reset' (deletes all cluster data)"
            continue
        fi
        kafka_tool kafka.tools.StorageTool format --cluster-id "$cid" --config "$dir/server.properties" \
            >>"$dir/logs/format.log" 2>&1 &
        pids+=("$!")
        names+=("$n")
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    log "kafka: formatting storage of ${names[*]} (cluster id $cid, static quorum)"
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            rc=1
            log "${names[$i]}: storage format failed:"
            tail -n 20 "$(node_dir "${names[$i]}")/logs/format.log" >&2
        fi
    done
    [ "$rc" -eq 0 ] || die "kafka: storage format failed"
    log "kafka: formatted in $(elapsed "$t0")"
}

kafka_spawn() {
    local name="$1" dir
    dir="$(node_dir "$name")"
    log "$name: starting Kafka broker+controller node.id $(kafka_id "$name") (127.0.0.1:$(kafka_port "$name"), heap: $KAFKA_HEAP)"
    # shellcheck disable=SC2086
    spawn "$(pid_file "$name")" "$dir/logs/stdout.log" \
        java $KAFKA_HEAP $KAFKA_JVM \
        -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir/logs" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
}

# --------------------------------------------------------------------------- clickhouse

ch_prepare() {
    local name="$1" dir
    dir="$(node_dir "$name")"
    mkdir -p "$dir"/{data,tmp,user_files,format_schemas,logs}
    sed -e "s|@CH_DIR@|$dir|g" -e "s|@HTTP_PORT@|$(ch_http_port "$name")|g" \
        -e "s|@TCP_PORT@|$(ch_tcp_port "$name")|g" -e "s|@INTERSERVER_PORT@|$(ch_inter_port "$name")|g" \
        -e "s|@SHARD@|$(ch_shard "$name")|g" -e "s|@REPLICA@|$name|g" -e "s|@ZK_PORT@|$ZK_PORT|g" \
        -e "s|@TCP_1_1@|$(ch_tcp_port ch-1-1)|g" -e "s|@TCP_1_2@|$(ch_tcp_port ch-1-2)|g" \
        -e "s|@TCP_2_1@|$(ch_tcp_port ch-2-1)|g" -e "s|@TCP_2_2@|$(ch_tcp_port ch-2-2)|g" \
        "$HERE/clickhouse/config.xml.in" >"$dir/config.xml"
    cp "$LOCAL_TPL/clickhouse/users.xml" "$dir/users.xml"
}

ch_spawn() {
    local name="$1" dir bin
    dir="$(node_dir "$name")"
    bin="$(ch_server_bin)"
    log "$name: starting ClickHouse shard $(ch_shard "$name") replica $name (http://127.0.0.1:$(ch_http_port "$name"), native :$(ch_tcp_port "$name"))"
    # Run from the config dir: users.xml is resolved relative to config.xml.
    (cd "$dir" && spawn "$(pid_file "$name")" "$dir/logs/stdout.log" "$bin" --config-file="$dir/config.xml")
}

# True once NAME has a ZooKeeper session (replicated tables and ON CLUSTER DDL need one).
ch_zk_ok() {
    local out
    out="$(ch_query "$1" "SELECT count() FROM system.zookeeper WHERE path = '/'" 2>/dev/null)" || return 1
    [[ "$out" =~ ^[1-9][0-9]*$ ]]
}

# ch_writable NAME: every replicated table of NAME is active in ZooKeeper under this server
# process. Checked as: none read-only, and each replica's ephemeral is_active node was created
# after the server started. Why the second part: after a kill -9 the dead process's ZooKeeper
# session lives on until it times out (session_timeout_ms, 10 s) and keeps its is_active node;
# meanwhile the restarted server cannot activate the replica (it retries every 10 s) yet its
# table does not even show is_readonly during the first attempt.
ch_writable() {
    local name="$1" out start path ctime
    out="$(ch_query "$name" "SELECT count() FROM system.replicas WHERE is_readonly" 2>/dev/null)" || return 1
    [ "$out" = 0 ] || return 1
    start="$(ch_query "$name" "SELECT toUInt32(now()) - uptime()" 2>/dev/null)" || return 1
    out="$(ch_query "$name" "SELECT replica_path FROM system.replicas" 2>/dev/null)" || return 1
    while IFS= read -r path; do
        [ -n "$path" ] || continue
        path="${path//\'/\\\'}"
        ctime="$(ch_query "$name" "SELECT toUInt32(ctime) FROM system.zookeeper WHERE path = '$path' AND name = 'is_active'" 2>/dev/null)" || return 1
        # 2 s of slack: start and ctime are whole seconds, rounded separately.
        [ -n "$ctime" ] && [ "$ctime" -ge $((start - 2)) ] || return 1
    done <<<"$out"
}

# wait_writable NAME...: wait until ch_writable holds for each (only when ZooKeeper is up:
# without it they stay read-only by design, which the caller may be testing).
wait_writable() {
    local n deadline=$((SECONDS + UP_TIMEOUT)) t0 waited=0
    if ! zk_healthy; then
        log "zookeeper is down: replicated tables on $* stay read-only until it is back"
        return 0
    fi
    t0="$(now_s)"
    for n in "$@"; do
        until ch_writable "$n"; do
            [ "$SECONDS" -lt "$deadline" ] ||
                die "$n: replicated tables still read-only after ${UP_TIMEOUT}s (see $(node_dir "$n")/logs/clickhouse-server.err.log)"
            [ "$waited" -eq 1 ] || log "$n: waiting for its replicated tables to become active in ZooKeeper (~10-20 s after a kill -9 or a ZooKeeper restart)"
            waited=1
            sleep 1
        done
    done
    [ "$waited" -eq 0 ] || log "$* writable after $(elapsed "$t0")"
}

# --------------------------------------------------------------------------- start / stop

# start_nodes NAME...: start each named process that is not running (no waiting). Renders
# configs, formats Kafka storage where missing (in parallel), then spawns.
start_nodes() {
    local n kind todo=() kafka=()
    for n in "$@"; do
        if pid_of "$n" >/dev/null; then
            log "$n: already running (pid $(pid_of "$n"))"
            continue
        fi
        rm -f "$(pid_file "$n")"
        check_ports_free "$n"
        kind="$(kind_of "$n")"
        case "$kind" in
        zk) zk_prepare ;;
        kafka)
            kafka_prepare "$n"
            kafka+=("$n")
            ;;
        ch) ch_prepare "$n" ;;
        esac
        todo+=("$n")
    done
    [ "${#kafka[@]}" -eq 0 ] || kafka_format "${kafka[@]}"
    for n in ${todo[@]+"${todo[@]}"}; do
        case "$(kind_of "$n")" in
        zk) zk_spawn ;;
        kafka) kafka_spawn "$n" ;;
        ch) ch_spawn "$n" ;;
        esac
    done
}

# live_kafka: how many of the three brokers are running.
live_kafka() {
    local n c=0
    for n in "${KAFKA_NODES[@]}"; do
        if pid_of "$n" >/dev/null; then c=$((c + 1)); fi
    done
    echo "$c"
}

# stop_nodes NAME...: SIGTERM to all of them at once, wait up to STOP_TIMEOUT for all, then
# SIGKILL what is left. In parallel so that four ClickHouse servers or three brokers do not
# queue behind each other.
#
# Kafka special case: a KRaft broker's graceful shutdown starts with a controlled shutdown that
# the controller quorum must commit (2 of the 3 voters alive). When the last broker standing
# gets there (whole-cluster stop, or a stop while the other two are dead), no quorum exists
# and Kafka would wait 5 minutes (hard-coded) before giving up; it is blocked before closing
# its logs, so waiting gains nothing. Such a broker gets KAFKA_NO_QUORUM_GRACE seconds (it may
# have been approved just before its peers left and be finishing on its own), then SIGKILL;
# its next start recovers its logs (seconds on a dev-sized data dir).
KAFKA_NO_QUORUM_GRACE=5
stop_nodes() {
    local n pid names=() pids=() markers=() killed=() t0 i left deadline no_quorum_since=""
    t0="$(now_s)"
    for n in "$@"; do
        if pid="$(pid_of "$n")"; then
            log "$n: stopping pid $pid (SIGTERM)"
            kill -TERM "$pid" 2>/dev/null || true
            names+=("$n")
            pids+=("$pid")
            markers+=("$(marker "$n")")
        elif [ -e "$(pid_file "$n")" ]; then
            log "$n: not running (stale pid file removed)"
            rm -f "$(pid_file "$n")"
        fi
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    deadline=$((SECONDS + STOP_TIMEOUT))
    while true; do
        left=0
        for i in "${!pids[@]}"; do
            [ -n "${pids[$i]}" ] || continue
            if alive "${pids[$i]}" "${markers[$i]}"; then
                left=$((left + 1))
            else
                log "${names[$i]}: exited ($(elapsed "$t0"))"
                rm -f "$(pid_file "${names[$i]}")"
                pids[i]=""
            fi
        done
        [ "$left" -gt 0 ] || break
        if [ "$SECONDS" -ge $((deadline + 10)) ]; then
            log "WARNING: still present 10 s after SIGKILL: ${pids[*]}"
            break
        fi
        if [ "$(live_kafka)" -lt 2 ]; then
            no_quorum_since="${no_quorum_since:-$SECONDS}"
        else
            no_quorum_since=""
        fi
        for i in "${!pids[@]}"; do
            if [ -z "${pids[$i]}" ] || [ -n "${killed[$i]:-}" ]; then continue; fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "${names[$i]}: still alive after ${STOP_TIMEOUT}s, SIGKILL"
            elif [ "$(kind_of "${names[$i]}")" = kafka ] && [ -n "$no_quorum_since" ] &&
                [ $((SECONDS - no_quorum_since)) -ge "$KAFKA_NO_QUORUM_GRACE" ]; then
                log "${names[$i]}: last broker standing, its controlled shutdown cannot get a controller quorum; SIGKILL"
            else
                continue
            fi
            kill -KILL "${pids[$i]}" 2>/dev/null || true
            killed[i]=1
        done
        sleep 0.2
    done
    log "stopped ${names[*]} in $(elapsed "$t0")"
}

# kill_nodes NAME...: kill -9, as a crash would; wait until the process is really gone (its
# ports free) so that a following `start` does not race the dying process.
kill_nodes() {
    local n pid i
    for n in "$@"; do
        if ! pid="$(pid_of "$n")"; then
            log "$n: not running"
            rm -f "$(pid_file "$n")"
            continue
        fi
        kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            alive "$pid" "$(marker "$n")" || break
            sleep 0.1
        done
        [ "$i" -lt 50 ] || log "$n: pid $pid still present after SIGKILL"
        rm -f "$(pid_file "$n")"
        log "$n: killed pid $pid (SIGKILL)"
    done
}

# --------------------------------------------------------------------------- commands

up() {
    local t0 n need_start=0
    t0="$(now_s)"
    for n in "${ALL_NODES[@]}"; do
        if ! pid_of "$n" >/dev/null || ! node_healthy "$n"; then
            need_start=1
            break
        fi
    done
    if [ "$need_start" -eq 0 ]; then
        log "all ${#ALL_NODES[@]} processes already running and answering"
    else
        require_zk
        require_kafka
        require_ch
        # ZooKeeper first and healthy: ClickHouse opens its session at startup.
        start_nodes zookeeper
        wait_nodes zookeeper || die "zookeeper did not come up (logs under $(node_dir zookeeper)/logs)"
        # All three brokers before waiting for any: a controller quorum needs 2 of 3 voters, so
        # a lone broker would never become healthy. The ClickHouse servers do not need Kafka, so
        # they start right after and boot while the JVMs do; then wait for all.
        start_nodes "${KAFKA_NODES[@]}"
        start_nodes "${CH_NODES[@]}"
        wait_nodes "${KAFKA_NODES[@]}" || die "Kafka brokers did not come up (logs under $CLUSTER_DIR/kafka-N/logs)"
        wait_nodes "${CH_NODES[@]}" || die "ClickHouse servers did not come up (logs under $CLUSTER_DIR/ch-S-R/logs)"
    fi
    wait_ready
    log "up in $(elapsed "$t0"): kafka $KAFKA_BROKERS, clickhouse cluster camtrail http://127.0.0.1:18123..18126, zookeeper 127.0.0.1:$ZK_PORT"
}

# Cluster-level readiness, beyond each process answering: every broker's metadata lists all
# three; every ClickHouse server has a ZooKeeper session (ON CLUSTER DDL) and no read-only
# replicated table. Cheap when all is well, so `up` runs it even when nothing had to start.
wait_ready() {
    local deadline=$((SECONDS + UP_TIMEOUT)) brokers=0 n t0
    t0="$(now_s)"
    until brokers="$(kafka_live_brokers)" && [ "$brokers" -eq 3 ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "kafka: metadata lists ${brokers:-0} live brokers, expected 3"
        sleep 0.5
    done
    for n in "${CH_NODES[@]}"; do
        until ch_zk_ok "$n"; do
            [ "$SECONDS" -lt "$deadline" ] || die "$n: no ZooKeeper session (see $(node_dir "$n")/logs)"
            sleep 0.5
        done
    done
    wait_writable "${CH_NODES[@]}"
    log "cluster ready ($(elapsed "$t0") waited): 3 live brokers, ClickHouse replicas writable"
}

down() {
    # ClickHouse and the brokers together (independent of each other; a ClickHouse server can
    # take ~10 s, its TCP poll interval, when peers held pooled connections to it), then
    # ZooKeeper, last, so that the ClickHouse servers close their sessions cleanly.
    stop_nodes "${CH_NODES[@]}" "${KAFKA_NODES[@]}"
    stop_nodes zookeeper
}

status() {
    local n pid state rc=0 brokers
    for n in "${ALL_NODES[@]}"; do
        pid="$(pid_of "$n")" || pid=""
        if node_healthy "$n"; then
            if [ -n "$pid" ]; then state=healthy; else state="healthy (not started by cluster.sh)"; fi
        elif [ -n "$pid" ]; then
            state="starting/unhealthy"
            rc=1
        else
            state=down
            rc=1
        fi
        printf '%-10s %-20s pid %-8s %s\n' "$n" "$state" "${pid:--}" "$(node_endpoint "$n")"
    done
    if brokers="$(kafka_live_brokers 2>/dev/null)" && [ "$brokers" -gt 0 ]; then
        # A killed broker stays in the metadata until the controller fences it
        # (broker.session.timeout.ms, 3 s), so this can briefly exceed the live processes.
        echo "kafka metadata lists $brokers of 3 brokers (a dead broker is dropped after ~3 s)"
    fi
    return "$rc"
}

mem() {
    local n pid kb total=0
    printf '%-10s %-8s %10s\n' process pid rss_mib
    for n in "${ALL_NODES[@]}"; do
        if pid="$(pid_of "$n")"; then
            kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)"
            kb="${kb:-0}"
            total=$((total + kb))
            printf '%-10s %-8s %10.1f\n' "$n" "$pid" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')"
        else
            printf '%-10s %-8s %10s\n' "$n" - down
        fi
    done
    printf '%-10s %-8s %10.1f\n' total "" "$(awk -v k="$total" 'BEGIN { print k / 1024 }')"
}

env_cmd() {
    local n urls=() first
    for n in "${CH_NODES[@]}"; do urls+=("http://127.0.0.1:$(ch_http_port "$n")"); done
    first="${urls[0]}"
    cat <<EOF
# Kafka: 3 brokers (KRaft, static quorum $KAFKA_VOTERS), RF 3, min.insync.replicas 2
export CAMTRAIL_KAFKA__BROKERS=$KAFKA_BROKERS
# ClickHouse 18.16 cluster 'camtrail': shard 01 = ch-1-1 ${urls[0]}, ch-1-2 ${urls[1]};
#   shard 02 = ch-2-1 ${urls[2]}, ch-2-2 ${urls[3]}; native TCP 19101..19104; user default, no password
export CAMTRAIL_CLICKHOUSE__URL=$first
export CAMTRAIL_CLICKHOUSE__FAILOVER_URLS='["${urls[1]}","${urls[2]}","${urls[3]}"]'
export CAMTRAIL_CLICKHOUSE__CLUSTER=camtrail
export CAMTRAIL_CLICKHOUSE__SHARDS='[["${urls[0]}","${urls[1]}"],["${urls[2]}","${urls[3]}"]]'
# ZooKeeper (used by ClickHouse only): 127.0.0.1:$ZK_PORT
EOF
}

reset() {
    down
    log "deleting $CLUSTER_DIR (Kafka jars in $KAFKA_LIBS are kept)"
    rm -rf "$CLUSTER_DIR"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

cmd="${1:-}"
[ "$#" -eq 0 ] || shift
case "$cmd" in
up) up ;;
down) down ;;
status) status ;;
start)
    check_names "$@"
    for n in "$@"; do
        case "$(kind_of "$n")" in
        zk) require_zk ;;
        kafka) require_kafka ;;
        ch) require_ch ;;
        esac
    done
    start_nodes "$@"
    wait_nodes "$@" || die "not healthy: $* (a broker needs a second live controller to become healthy)"
    # A restarted ClickHouse server answers pings at once but its replicated tables take a few
    # seconds to rejoin; wait for that too, so that "start" means usable.
    # Likewise after "start zookeeper": wait until the running ClickHouse servers' replicated
    # tables are back from read-only (a reconnect, ~10 s), so that "start" means recovered.
    chs=()
    for n in "$@"; do
        [ "$(kind_of "$n")" != ch ] || chs+=("$n")
        if [ "$n" = zookeeper ]; then
            for c in "${CH_NODES[@]}"; do
                if pid_of "$c" >/dev/null; then chs+=("$c"); fi
            done
        fi
    done
    [ "${#chs[@]}" -eq 0 ] || wait_writable "${chs[@]}"
    ;;
stop)
    check_names "$@"
    stop_nodes "$@"
    ;;
kill)
    check_names "$@"
    kill_nodes "$@"
    ;;
mem) mem ;;
env) env_cmd ;;
reset) reset ;;
-h | --help | help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
