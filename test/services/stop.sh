#!/usr/bin/env bash
# Stops the Redis and PostgreSQL servers started by test/services/start.sh
# (only the PIDs in its pid files: TERM, up to 20 s, then KILL) and removes
# its state dir. Always exits 0 when there was nothing to stop.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# stop_pid NAME PID: TERM, wait up to 20 s, then KILL.
stop_pid() {
  local name="$1" pid="$2"
  log "stopping $name pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || { log "$name stopped"; return 0; }
    sleep 0.5
  done
  log "$name still alive after 20s, sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
}

if pid="$(redis_pid)"; then
  stop_pid redis "$pid"
else
  log "no running redis recorded in $REDIS_PIDFILE"
fi

# PostgreSQL's postmaster takes TERM as a "smart" shutdown that waits for
# clients; INT is the "fast" one (disconnect them, then stop).
if pid="$(postgres_pid)"; then
  log "stopping postgres pid $pid (fast shutdown)"
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then stop_pid postgres "$pid"; else log "postgres stopped"; fi
else
  log "no running postgres recorded in $POSTGRES_PIDFILE"
fi

# Only remove a directory that start.sh made.
if [ -d "$SERVICES_STATE" ]; then
  if [ -f "$SERVICES_MARKER" ] || [ -z "$(ls -A "$SERVICES_STATE")" ]; then
    rm -rf "$SERVICES_STATE"
    log "removed $SERVICES_STATE"
  else
    log "not removing $SERVICES_STATE: it does not look like a start.sh state dir"
  fi
fi
