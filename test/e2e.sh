#!/usr/bin/env bash
# End-to-end tier (README.md, "Tests and benchmarks"): starts the test Kafka broker, Redis and
# PostgreSQL (test/services/start.sh) and Jaeger (test/jaeger/start.sh; the
# first run builds it, about 10 minutes), runs the Go tests under ./test/...
# against them, and always stops them all again.
# Exits with the tests' exit code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export KAFKA_PORT="${KAFKA_PORT:-9092}"
export HOOKBRIDGE_TEST_KAFKA="${HOOKBRIDGE_TEST_KAFKA:-127.0.0.1:$KAFKA_PORT}"
export JAEGER_QUERY_PORT="${JAEGER_QUERY_PORT:-16686}"
export JAEGER_OTLP_GRPC_PORT="${JAEGER_OTLP_GRPC_PORT:-4317}"
export HOOKBRIDGE_TEST_JAEGER="${HOOKBRIDGE_TEST_JAEGER:-127.0.0.1:$JAEGER_QUERY_PORT}"
export HOOKBRIDGE_TEST_JAEGER_OTLP="${HOOKBRIDGE_TEST_JAEGER_OTLP:-http://127.0.0.1:$JAEGER_OTLP_GRPC_PORT}"
E2E_TIMEOUT="${E2E_TIMEOUT:-20m}"
# SCRAM over TLS (test/security): start.sh adds a SASL_SSL listener on
# KAFKA_SASL_PORT (default KAFKA_PORT+2) and writes its CA to $KAFKA_STATE/tls/ca.pem.
export KAFKA_SASL_SSL="${KAFKA_SASL_SSL:-1}"
export HOOKBRIDGE_TEST_KAFKA_SASL="${HOOKBRIDGE_TEST_KAFKA_SASL:-127.0.0.1:${KAFKA_SASL_PORT:-$((KAFKA_PORT + 2))}}"
kafka_state="${KAFKA_STATE:-test/kafka/.state}"
case "$kafka_state" in /*) ;; *) kafka_state="$PWD/$kafka_state" ;; esac
export HOOKBRIDGE_TEST_KAFKA_CA="${HOOKBRIDGE_TEST_KAFKA_CA:-$kafka_state/tls/ca.pem}"
# That listener forces SASL re-authentication (KIP-368) every 12 s, for
# test/security's re-authentication soaks (SCRAM and OAUTHBEARER).
export HOOKBRIDGE_TEST_KAFKA_REAUTH_MS="${HOOKBRIDGE_TEST_KAFKA_REAUTH_MS:-12000}"
export KAFKA_EXTRA_PROPS="${KAFKA_EXTRA_PROPS:-connections.max.reauth.ms=$HOOKBRIDGE_TEST_KAFKA_REAUTH_MS}"
# Redis and PostgreSQL for the Redis and PostgreSQL plugins (test/services/start.sh).
export REDIS_PORT="${REDIS_PORT:-6379}"
export POSTGRES_PORT="${POSTGRES_PORT:-5432}"
export HOOKBRIDGE_TEST_REDIS="${HOOKBRIDGE_TEST_REDIS:-127.0.0.1:$REDIS_PORT}"
export HOOKBRIDGE_TEST_POSTGRES="${HOOKBRIDGE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:$POSTGRES_PORT/hookbridge_test?sslmode=disable}"

stop_all() {
  bash test/kafka/cluster.sh stop > /dev/null 2>&1 || true
  bash test/jaeger/stop.sh || true
  bash test/services/stop.sh || true
  bash test/kafka/stop.sh || true
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Python venv of the FastAPI receiver example (and of the Python plugin when it
# has a requirements.txt), rebuilt only when a requirements file changed; it
# is built while the services start.
venv_out="$(mktemp)"
venv_pid=""
if [ -z "${HOOKBRIDGE_TEST_PYTHON:-}" ]; then
  bash test/python/setup.sh > "$venv_out" &
  venv_pid=$!
fi

bash test/kafka/start.sh
bash test/services/start.sh > /dev/null # prints the HOOKBRIDGE_TEST_* exports above
bash test/jaeger/start.sh

if [ -n "$venv_pid" ]; then
  wait "$venv_pid" # set -e: a failed venv fails the run
  HOOKBRIDGE_TEST_PYTHON="$(tail -n 1 "$venv_out")"
fi
rm -f "$venv_out"
export HOOKBRIDGE_TEST_PYTHON

if [ -z "$(find test -name '*.go' -print -quit)" ]; then
  echo "e2e: no Go packages under ./test yet; only the Kafka start/stop was exercised"
  exit 0
fi

# Every service is up: a test that finds its service missing fails instead
# of skipping. ./plugins/... holds the Redis and PostgreSQL plugins' tests
# against the real servers, and ./plugins/host the Python plugin's (its other
# tests need no service and ran in the unit tier).
export HOOKBRIDGE_E2E=1
pkgs=$(go list ./test/... ./plugins/... | grep -v '/plugins/host$')
echo "e2e: HOOKBRIDGE_TEST_KAFKA=$HOOKBRIDGE_TEST_KAFKA HOOKBRIDGE_TEST_JAEGER=$HOOKBRIDGE_TEST_JAEGER go test -count=1 -p 1 -timeout $E2E_TIMEOUT ./test/... ./plugins/... (but ./plugins/host)"
rc=0
# shellcheck disable=SC2086 # one package path per word
go test -count=1 -p 1 -timeout "$E2E_TIMEOUT" -skip '^TestClusterFailover$' $pkgs || rc=$?
# The three-node cluster of the last step starts while the two before it run.
cluster_log="$(mktemp)"
bash test/kafka/cluster.sh start > "$cluster_log" 2>&1 &
cluster_pid=$!
echo "e2e: go test -count=1 -run '^TestPython' ./plugins/host/"
go test -count=1 -timeout "$E2E_TIMEOUT" -run '^TestPython' ./plugins/host/ || rc=$?
# The consumer's fetch sizes and read-ahead against the real broker's fetch
# semantics (whole first batches, partial batches, compression).
echo "e2e: go test -count=1 -run '^TestRealKafka' ./bridge/kafka/"
go test -count=1 -timeout "$E2E_TIMEOUT" -run '^TestRealKafka' ./bridge/kafka/ || rc=$?
# Leader failover, the death of the group's coordinator and a node's restart
# on a three-node cluster (test/kafka/cluster.sh; replication factor 3,
# min.insync.replicas 2), started for this test alone: about a minute.
echo "e2e: three-node cluster: go test -count=1 -run '^TestClusterFailover\$' ./test/scenario/"
cluster_rc=0
wait "$cluster_pid" || cluster_rc=$?
cat "$cluster_log"
rm -f "$cluster_log"
if [ "$cluster_rc" = 0 ]; then
  HOOKBRIDGE_TEST_KAFKA_CLUSTER="$(cat "${KAFKA_CLUSTER_STATE:-test/kafka/.cluster}/bootstrap")" \
    go test -count=1 -timeout "$E2E_TIMEOUT" -run '^TestClusterFailover$' ./test/scenario/ || rc=$?
else
  rc=1
fi
bash test/kafka/cluster.sh stop || true
exit "$rc"
