#!/usr/bin/env bash
# Stops the broker started by test/kafka/start.sh (only the PID in its PID file:
# TERM, up to 20 s, then KILL) and removes its state dir.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if pid="$(kafka_pid)"; then
  log "stopping broker pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after 20s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
  log "stopped"
else
  log "no running broker recorded in $KAFKA_PIDFILE"
fi

# Only remove a directory that looks like ours.
if [ -d "$KAFKA_STATE" ]; then
  if [ -f "$KAFKA_CONFIG" ] || [ -f "$KAFKA_PIDFILE" ] || [ -z "$(ls -A "$KAFKA_STATE")" ]; then
    rm -rf "$KAFKA_STATE"
    log "removed $KAFKA_STATE"
  else
    log "not removing $KAFKA_STATE: it does not look like a start.sh state dir"
  fi
fi
