# Shared settings for test/jaeger/{start,stop}.sh. Source it; don't run it.
#
# Environment (all optional):
#   JAEGER_BIN              the binary, default test/tools/.bin/jaeger (built from
#                           test/tools/go.mod when missing or when go.mod/go.sum changed)
#   JAEGER_STATE            state dir (pid, log), default test/jaeger/.state
#   JAEGER_OTLP_GRPC_PORT   OTLP/gRPC receiver, default 4317
#   JAEGER_OTLP_HTTP_PORT   OTLP/HTTP receiver, default 4318
#   JAEGER_QUERY_PORT       query API (HTTP), default 16686
#   JAEGER_QUERY_GRPC_PORT  query API (gRPC), default 16685
#   JAEGER_START_TIMEOUT    seconds to wait for the query API, default 60
# Every listener binds 127.0.0.1 (config.yaml).

JAEGER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JAEGER_TOOLS="$(cd "$JAEGER_DIR/../tools" && pwd)"

_jabspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "$1" ;; esac; }

JAEGER_BIN="$(_jabspath "${JAEGER_BIN:-$JAEGER_TOOLS/.bin/jaeger}")"
JAEGER_STAMP="$JAEGER_BIN.stamp"
JAEGER_STATE="$(_jabspath "${JAEGER_STATE:-$JAEGER_DIR/.state}")"
JAEGER_PIDFILE="$JAEGER_STATE/jaeger.pid"
JAEGER_LOG="$JAEGER_STATE/jaeger.log"
JAEGER_CONFIG="$JAEGER_DIR/config.yaml"
export JAEGER_OTLP_GRPC_PORT="${JAEGER_OTLP_GRPC_PORT:-4317}"
export JAEGER_OTLP_HTTP_PORT="${JAEGER_OTLP_HTTP_PORT:-4318}"
export JAEGER_QUERY_PORT="${JAEGER_QUERY_PORT:-16686}"
export JAEGER_QUERY_GRPC_PORT="${JAEGER_QUERY_GRPC_PORT:-16685}"
JAEGER_QUERY="127.0.0.1:$JAEGER_QUERY_PORT"

jlog() { printf '[jaeger] %s\n' "$*" >&2; }

# jaeger_pid prints the PID recorded by start.sh if that process is alive and
# is really our Jaeger (its command line names our config); else fails.
jaeger_pid() {
  [ -f "$JAEGER_PIDFILE" ] || return 1
  local pid
  pid="$(tr -dc '0-9' < "$JAEGER_PIDFILE")"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$JAEGER_CONFIG" || return 1
  fi
  printf '%s\n' "$pid"
}

jport_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# jaeger_want_stamp is what the binary was built from: the tools module.
jaeger_want_stamp() { cat "$JAEGER_TOOLS/go.mod" "$JAEGER_TOOLS/go.sum" | sha256sum | cut -d' ' -f1; }
