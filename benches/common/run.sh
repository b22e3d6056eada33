# shellcheck shell=bash
# Shared by the benches that run camtrail's distributed roles as processes against the local
# broker and ClickHouse server, each run on topics and a database of its own (sourced).
#
#   use_run PREFIX   sets RUN (PREFIX + the time) and exports the topics and database env
#   drop_run         drops RUN's database and deletes its topics
#   wait_ready PID URL   waits up to 60 s until URL answers (fails if PID exits)

BROKERS="${BROKERS:-127.0.0.1:9092}"
CH="clickhouse-client --host 127.0.0.1 --port 9000"

use_run() {
    RUN="$1$(date +%s)"
    export CAMTRAIL_KAFKA__BROKERS="$BROKERS"
    export CAMTRAIL_KAFKA__DETECTIONS_TOPIC="$RUN.detections.v1"
    export CAMTRAIL_KAFKA__DEAD_LETTER_TOPIC="$RUN.dlq.v1"
    export CAMTRAIL_KAFKA__AUDIT_TOPIC="$RUN.audit.v1"
    export CAMTRAIL_KAFKA__ALERTS_TOPIC="$RUN.alerts.v1"
    export CAMTRAIL_CLICKHOUSE__DATABASE="$RUN"
}

drop_run() {
    $CH -q "DROP DATABASE IF EXISTS $RUN" >/dev/null 2>&1 || true
    java -Xmx256m -cp '.local/kafka/libs/*' org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$BROKERS" --delete --topic "$RUN.*" >/dev/null 2>&1 || true
}

wait_ready() {
    for _ in $(seq 600); do
        kill -0 "$1" 2>/dev/null || return 1
        curl -fsS "$2" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
