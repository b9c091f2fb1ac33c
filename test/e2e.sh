#!/usr/bin/env bash
# End-to-end tier (DESIGN.md §8): starts the test Kafka broker, runs the Go
# tests under ./test/... against it, and always stops the broker again.
# Exits with the tests' exit code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export KAFKA_PORT="${KAFKA_PORT:-9092}"
export HOOKBRIDGE_TEST_KAFKA="${HOOKBRIDGE_TEST_KAFKA:-127.0.0.1:$KAFKA_PORT}"
E2E_TIMEOUT="${E2E_TIMEOUT:-20m}"

stop_kafka() { bash test/kafka/stop.sh || true; }
trap stop_kafka EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash test/kafka/start.sh

if [ -z "$(find test -name '*.go' -print -quit)" ]; then
  echo "e2e: no Go packages under ./test yet; only the Kafka start/stop was exercised"
  exit 0
fi

echo "e2e: HOOKBRIDGE_TEST_KAFKA=$HOOKBRIDGE_TEST_KAFKA go test -count=1 -p 1 -timeout $E2E_TIMEOUT ./test/..."
rc=0
go test -count=1 -p 1 -timeout "$E2E_TIMEOUT" ./test/... || rc=$?
exit "$rc"
