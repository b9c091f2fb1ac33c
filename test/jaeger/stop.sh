#!/usr/bin/env bash
# Stops the Jaeger started by test/jaeger/start.sh (only the PID in its PID
# file: TERM, up to 10 s, then KILL) and removes its state dir. Traces were in
# memory and are gone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if pid="$(jaeger_pid)"; then
  jlog "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    jlog "still alive after 10s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  jlog "stopped"
else
  jlog "no running Jaeger recorded in $JAEGER_PIDFILE"
fi

# Only remove a directory that looks like ours.
if [ -d "$JAEGER_STATE" ] && { [ -f "$JAEGER_PIDFILE" ] || [ -f "$JAEGER_LOG" ] || [ -z "$(ls -A "$JAEGER_STATE")" ]; }; then
  rm -rf "$JAEGER_STATE"
fi
