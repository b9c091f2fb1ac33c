#!/usr/bin/env bash
# Starts or stops a three-node Apache Kafka 4.x cluster (KRaft; each node a
# broker and a controller of one quorum) from the jars start.sh caches, for
# trying the bridge against leader failover, coordinator moves and
# min.insync.replicas by hand. Nodes listen on 127.0.0.1:39092/39093,
# 39192/39193 and 39292/39293 (broker/controller).
#
#   cluster.sh start            format and start the three nodes, wait until all answer
#   cluster.sh kill N           kill -9 node N (1..3)
#   cluster.sh restart N        stop node N (SIGTERM, bounded), start it again
#   cluster.sh up N             start node N again after a kill
#   cluster.sh stop             stop every node (by the PIDs recorded here)
#   cluster.sh pid N            print node N's PID
#
# State lives under $KAFKA_CLUSTER_STATE (default test/kafka/.cluster).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STATE="$(_abspath "${KAFKA_CLUSTER_STATE:-$KAFKA_DIR/.cluster}")"
BOOTSTRAP="127.0.0.1:39092,127.0.0.1:39192,127.0.0.1:39292"
port() { echo $((39092 + ($1 - 1) * 100)); }

node_pid() {
  local f="$STATE/node$1/pid" pid
  [ -f "$f" ] || return 1
  pid="$(tr -dc '0-9' < "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$STATE/node$1/server.properties" || return 1
  echo "$pid"
}

write_config() {
  local n="$1" p; p="$(port "$n")"
  mkdir -p "$STATE/node$n/data" "$STATE/node$n/logs"
  cat > "$STATE/node$n/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=1@127.0.0.1:39093,2@127.0.0.1:39193,3@127.0.0.1:39293
listeners=PLAINTEXT://127.0.0.1:$p,CONTROLLER://127.0.0.1:$((p + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$p
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$STATE/node$n/data
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
auto.create.topics.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
PROPS
}

start_node() {
  local n="$1"
  rm -f "$STATE/node$n/pid" # a killed node's PID must not pass for the new one
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$STATE/node$n/pid" \
    "$JAVA" -Xms192m -Xmx384m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$STATE/node$n/logs" -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$STATE/node$n/server.properties" \
    > "$STATE/node$n/logs/kafka.out" 2>&1 < /dev/null &
}

wait_answers() {
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-120}))
  until kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { log "cluster did not answer"; exit 1; }
    sleep 1
  done
}

wait_port() {
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-120}))
  for _ in $(seq 1 50); do [ -s "$STATE/node$1/pid" ] && break; sleep 0.1; done
  until port_open "$(port "$1")"; do
    node_pid "$1" >/dev/null || { log "node $1 exited"; tail -n 30 "$STATE/node$1/logs/server.log" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { log "node $1 not listening"; exit 1; }
    sleep 0.5
  done
}

case "${1:-}" in
  start)
    for n in 1 2 3; do node_pid "$n" >/dev/null && { log "node $n already running"; exit 1; }; done
    rm -rf "$STATE"
    id="$(kafka_tool kafka.tools.StorageTool random-uuid)"
    for n in 1 2 3; do
      write_config "$n"
      kafka_tool kafka.tools.StorageTool format -t "$id" -c "$STATE/node$n/server.properties" > "$STATE/node$n/logs/format.log" 2>&1
    done
    t0=$SECONDS
    for n in 1 2 3; do start_node "$n"; done
    for n in 1 2 3; do wait_port "$n"; done
    wait_answers
    echo "$BOOTSTRAP" > "$STATE/bootstrap"
    log "cluster ready on $BOOTSTRAP in $((SECONDS - t0))s"
    ;;
  kill)
    pid="$(node_pid "$2")" && kill -KILL "$pid" && log "killed node $2 (pid $pid)"
    ;;
  up)
    start_node "$2"; wait_port "$2"; log "node $2 up"
    ;;
  restart)
    if pid="$(node_pid "$2")"; then
      kill -TERM "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    start_node "$2"; wait_port "$2"; log "node $2 restarted"
    ;;
  stop)
    for n in 1 2 3; do
      if pid="$(node_pid "$n")"; then kill -TERM "$pid"; fi
    done
    for n in 1 2 3; do
      if pid="$(node_pid "$n")"; then
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
    log "cluster stopped"
    ;;
  pid)
    node_pid "$2"
    ;;
  *)
    sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
