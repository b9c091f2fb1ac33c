#!/usr/bin/env bash
# Starts Jaeger v2 all-in-one (in-memory storage) for the e2e tests: OTLP on
# 127.0.0.1:4317 (gRPC) and :4318 (HTTP), query API on 127.0.0.1:16686.
# The binary is built once from the tools module (test/tools/go.mod, the
# jaegertracing/jaeger tool at the version pinned there) into a gitignored
# cache, and rebuilt only when it is missing or go.mod/go.sum changed; the
# first build takes about 10 minutes on 2 cores.
# Idempotent: if the Jaeger started by this script is running, says so and exits 0.
# See common.sh for the environment variables. Stop it with test/jaeger/stop.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if pid="$(jaeger_pid)"; then
  jlog "already running (pid $pid, query http://$JAEGER_QUERY)"
  exit 0
fi

# 1. The binary.
want="$(jaeger_want_stamp)"
if [ -x "$JAEGER_BIN" ] && [ -f "$JAEGER_STAMP" ] && [ "$(cat "$JAEGER_STAMP")" = "$want" ]; then
  jlog "using cached binary $JAEGER_BIN"
else
  command -v go >/dev/null 2>&1 || { jlog "go not found (needed to build Jaeger)"; exit 1; }
  jlog "building Jaeger from $JAEGER_TOOLS/go.mod into $JAEGER_BIN (the first build takes minutes)"
  t0=$SECONDS
  mkdir -p "$(dirname "$JAEGER_BIN")"
  tmp="$JAEGER_BIN.tmp.$$"
  if ! (cd "$JAEGER_TOOLS" && nice -n 10 go build -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger) \
        > "$JAEGER_BIN.build.log" 2>&1; then
    cat "$JAEGER_BIN.build.log" >&2
    rm -f "$tmp"; jlog "go build failed"; exit 1
  fi
  mv -f "$tmp" "$JAEGER_BIN"
  printf '%s\n' "$want" > "$JAEGER_STAMP"
  jlog "built in $((SECONDS - t0))s ($(du -h "$JAEGER_BIN" | cut -f1))"
fi

# 2. Ports must be free.
for p in "$JAEGER_OTLP_GRPC_PORT" "$JAEGER_OTLP_HTTP_PORT" "$JAEGER_QUERY_PORT" "$JAEGER_QUERY_GRPC_PORT"; do
  if jport_open "$p"; then
    jlog "port $p on 127.0.0.1 is already in use by another process; set the JAEGER_*_PORT variables"
    exit 1
  fi
done

# 3. Start it in its own session; the inner shell records its own PID and
#    execs Jaeger, so the PID file holds Jaeger's PID.
rm -rf "$JAEGER_STATE"
mkdir -p "$JAEGER_STATE"
t0=$SECONDS
setsid bash -c 'echo $$ > "$0"; exec "$@"' "$JAEGER_PIDFILE" \
  "$JAEGER_BIN" --config "file:$JAEGER_CONFIG" > "$JAEGER_LOG" 2>&1 < /dev/null &

fail() {
  jlog "$*"
  jlog "---- tail of $JAEGER_LOG"
  tail -n 40 "$JAEGER_LOG" >&2 2>/dev/null || true
  if pid="$(jaeger_pid)"; then jlog "killing pid $pid"; kill -KILL "$pid" 2>/dev/null || true; fi
  exit 1
}

# 4. Wait (bounded) until the query API answers and the OTLP ports are open.
timeout="${JAEGER_START_TIMEOUT:-60}"
deadline=$((SECONDS + timeout))
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$JAEGER_PIDFILE" ] && break; sleep 0.1; done
until curl -fsS -o /dev/null "http://$JAEGER_QUERY/api/services" 2>/dev/null \
      && jport_open "$JAEGER_OTLP_GRPC_PORT" && jport_open "$JAEGER_OTLP_HTTP_PORT"; do
  jaeger_pid >/dev/null || fail "Jaeger exited during start-up"
  [ "$SECONDS" -lt "$deadline" ] || fail "Jaeger not ready after ${timeout}s"
  sleep 0.5
done
jlog "ready: OTLP 127.0.0.1:$JAEGER_OTLP_GRPC_PORT (gRPC) 127.0.0.1:$JAEGER_OTLP_HTTP_PORT (HTTP), query http://$JAEGER_QUERY (pid $(jaeger_pid), $((SECONDS - t0))s)"
