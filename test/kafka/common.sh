# Shared settings for test/kafka/{start,stop,topics}.sh. Source it; don't run it.
#
# Environment (all optional):
#   KAFKA_PORT             broker (PLAINTEXT) port, default 9092
#   KAFKA_CONTROLLER_PORT  KRaft controller port, default KAFKA_PORT+1
#   KAFKA_STATE            state dir (config, data, logs, pid), default test/kafka/.state
#   KAFKA_CACHE            jar cache, default test/kafka/.cache (jars in $KAFKA_CACHE/libs)
#   KAFKA_HEAP_OPTS        broker heap, default "-Xms256m -Xmx512m"
#   KAFKA_START_TIMEOUT    seconds to wait for the broker, default 90
#   JAVA                   java binary, default $JAVA_HOME/bin/java or java on PATH

KAFKA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

_abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "$1" ;; esac; }

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_STATE="$(_abspath "${KAFKA_STATE:-$KAFKA_DIR/.state}")"
KAFKA_CACHE="$(_abspath "${KAFKA_CACHE:-$KAFKA_DIR/.cache}")"
KAFKA_LIBS="$KAFKA_CACHE/libs"
KAFKA_PIDFILE="$KAFKA_STATE/kafka.pid"
KAFKA_CONFIG="$KAFKA_STATE/server.properties"
KAFKA_LOGDIR="$KAFKA_STATE/logs"
KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"

if [ -z "${JAVA:-}" ]; then
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi
fi

log() { printf '[kafka] %s\n' "$*" >&2; }

# kafka_pid prints the PID recorded by start.sh if that process is alive and is
# really our broker (its command line names our server.properties); else fails.
kafka_pid() {
  [ -f "$KAFKA_PIDFILE" ] || return 1
  local pid
  pid="$(tr -dc '0-9' < "$KAFKA_PIDFILE")"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$KAFKA_CONFIG" || return 1
  fi
  printf '%s\n' "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# kafka_tool CLASS ARGS...: runs a Kafka CLI class with the cached jars.
kafka_tool() {
  local cls="$1"; shift
  "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2-tools.xml" \
    -cp "$KAFKA_LIBS/*" "$cls" "$@"
}
