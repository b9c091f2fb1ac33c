#!/usr/bin/env bash
# Starts a single-node Apache Kafka 4.x broker (KRaft, broker+controller) for
# the e2e tests, from Maven jars cached under test/kafka/.cache/libs.
# Idempotent: if the broker started by this script is running, says so and exits 0.
# See common.sh for the environment variables. Stop it with test/kafka/stop.sh.
#
# With KAFKA_SASL_SSL=1 the broker also gets a SASL_SSL listener on
# 127.0.0.1:$KAFKA_SASL_PORT (default KAFKA_PORT+2, i.e. 9094) accepting
# SCRAM-SHA-512 and SCRAM-SHA-256 for user $KAFKA_SASL_USER (default hookbridge)
# with password $KAFKA_SASL_PASSWORD (default hookbridge-secret), created at
# format time, and OAUTHBEARER with unsecured JWTs (alg none). Its certificates are generated with openssl into
# $KAFKA_STATE/tls: ca.pem (the CA clients trust) and broker.pem (a PEM
# keystore for 127.0.0.1 and localhost). The PLAINTEXT listener is unchanged.
#
# KAFKA_EXTRA_PROPS, when set, is appended to server.properties last (a key
# given again there wins), e.g.
# KAFKA_EXTRA_PROPS='listener.name.sasl_ssl.connections.max.reauth.ms=15000'
# to make the broker close SASL sessions not re-authenticated within 15 s.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_SASL_SSL="${KAFKA_SASL_SSL:-0}"
KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-$((KAFKA_PORT + 2))}"
KAFKA_SASL_USER="${KAFKA_SASL_USER:-hookbridge}"
KAFKA_SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-hookbridge-secret}"
KAFKA_TLS_DIR="$KAFKA_STATE/tls"
sasl_ports=""
[ "$KAFKA_SASL_SSL" = 1 ] && sasl_ports="$KAFKA_SASL_PORT"

if pid="$(kafka_pid)"; then
  log "already running (pid $pid, state $KAFKA_STATE, bootstrap $(cat "$KAFKA_STATE/bootstrap" 2>/dev/null || echo "$KAFKA_BOOTSTRAP"))"
  exit 0
fi

command -v "$JAVA" >/dev/null 2>&1 || { log "java not found (need Java 17+)"; exit 1; }

# 1. Jars: fetch once with Maven, keyed by the pom's checksum.
stamp="$KAFKA_CACHE/libs.stamp"
want="$(sha256sum "$KAFKA_DIR/pom.xml" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$KAFKA_LIBS" ]; then
  log "using cached jars in $KAFKA_LIBS"
else
  command -v mvn >/dev/null 2>&1 || { log "mvn not found (needed once to fetch the Kafka jars)"; exit 1; }
  log "fetching Kafka jars with Maven into $KAFKA_LIBS"
  t0=$SECONDS
  mkdir -p "$KAFKA_CACHE"
  tmp="$(mktemp -d "$KAFKA_CACHE/libs.tmp.XXXXXX")"
  if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_DIR/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime > "$KAFKA_CACHE/mvn.log" 2>&1; then
    cat "$KAFKA_CACHE/mvn.log" >&2
    rm -rf "$tmp"; log "mvn dependency:copy-dependencies failed"; exit 1
  fi
  rm -rf "$KAFKA_LIBS" "$stamp"
  mv "$tmp" "$KAFKA_LIBS"
  printf '%s\n' "$want" > "$stamp"
  log "fetched $(ls "$KAFKA_LIBS" | wc -l) jars in $((SECONDS - t0))s"
fi

# 2. Ports must be free (something else may hold them).
for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" $sasl_ports; do
  if port_open "$p"; then
    log "port $p on 127.0.0.1 is already in use by another process; set KAFKA_PORT/KAFKA_CONTROLLER_PORT"
    exit 1
  fi
done

# 3. Fresh state dir and configuration.
rm -rf "$KAFKA_STATE"
mkdir -p "$KAFKA_STATE/data" "$KAFKA_LOGDIR"
cat > "$KAFKA_CONFIG" <<PROPS
# Written by test/kafka/start.sh: single-node KRaft cluster for the e2e tests.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_STATE/data
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
PROPS
printf '%s\n' "$KAFKA_BOOTSTRAP" > "$KAFKA_STATE/bootstrap"

# 3b. Optional SASL_SSL listener: a CA and a broker certificate, then the
#     listener, its PEM keystore and SCRAM (the user is added at format time).
format_scram=()
if [ "$KAFKA_SASL_SSL" = 1 ]; then
  command -v openssl >/dev/null 2>&1 || { log "openssl not found (needed for KAFKA_SASL_SSL=1)"; exit 1; }
  mkdir -p "$KAFKA_TLS_DIR"
  (
    cd "$KAFKA_TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 -keyout ca.key -out ca.pem \
      -subj "/CN=hookbridge test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout broker.key -out broker.csr -subj "/CN=localhost"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "basicConstraints=CA:FALSE" > broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 7 \
      -extfile broker.ext -out broker.crt
    # PEM keystore: the (unencrypted PKCS#8) key, then the chain.
    cat broker.key broker.crt ca.pem > broker.pem
    chmod 600 ca.key broker.key broker.pem
  ) > "$KAFKA_LOGDIR/openssl.log" 2>&1 || { log "openssl failed:"; cat "$KAFKA_LOGDIR/openssl.log" >&2; exit 1; }
  sed -i \
    -e "s|^listeners=.*|&,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT|" \
    -e "s|^advertised.listeners=.*|&,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT|" \
    -e "s|^listener.security.protocol.map=.*|&,SASL_SSL:SASL_SSL|" \
    "$KAFKA_CONFIG"
  cat >> "$KAFKA_CONFIG" <<PROPS
# SASL_SSL listener (KAFKA_SASL_SSL=1): SCRAM over TLS, PEM keystore.
# OAUTHBEARER takes the broker's default validator: unsecured JWTs (alg none)
# whose exp bounds the session, as the tests' token endpoints issue.
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,OAUTHBEARER
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$KAFKA_TLS_DIR/broker.pem
PROPS
  format_scram=(
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]"
    --add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]"
  )
  printf '%s\n' "127.0.0.1:$KAFKA_SASL_PORT" > "$KAFKA_STATE/sasl_bootstrap"
fi

# 3c. Extra broker properties from the environment, last so that they win.
if [ -n "${KAFKA_EXTRA_PROPS:-}" ]; then
  printf '# KAFKA_EXTRA_PROPS\n%s\n' "$KAFKA_EXTRA_PROPS" >> "$KAFKA_CONFIG"
fi

# 4. Format the storage with a random cluster id (a standalone dynamic quorum).
cluster_id="$(kafka_tool kafka.tools.StorageTool random-uuid)"
printf '%s\n' "$cluster_id" > "$KAFKA_STATE/cluster.id"
if ! kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONFIG" --standalone "${format_scram[@]}" \
      > "$KAFKA_LOGDIR/format.log" 2>&1; then
  log "storage format failed:"; cat "$KAFKA_LOGDIR/format.log" >&2; exit 1
fi

# 5. Start the broker in its own session; the inner shell records its own PID
#    and execs java, so the PID file holds the broker's PID.
t0=$SECONDS
# shellcheck disable=SC2086
setsid bash -c 'echo $$ > "$0"; exec "$@"' "$KAFKA_PIDFILE" \
  "$JAVA" ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} \
  -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
  -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
  -Dkafka.logs.dir="$KAFKA_LOGDIR" \
  -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" \
  -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONFIG" \
  > "$KAFKA_LOGDIR/kafka.out" 2>&1 < /dev/null &

fail() {
  log "$*"
  log "---- tail of $KAFKA_LOGDIR/server.log"
  tail -n 60 "$KAFKA_LOGDIR/server.log" >&2 2>/dev/null || true
  log "---- tail of $KAFKA_LOGDIR/kafka.out"
  tail -n 30 "$KAFKA_LOGDIR/kafka.out" >&2 2>/dev/null || true
  if pid="$(kafka_pid)"; then log "killing broker pid $pid"; kill -KILL "$pid" 2>/dev/null || true; fi
  exit 1
}

# 6. Wait (bounded) for the port, the "started" log line, then a real request.
timeout="${KAFKA_START_TIMEOUT:-90}"
deadline=$((SECONDS + timeout))
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$KAFKA_PIDFILE" ] && break; sleep 0.1; done
while :; do
  kafka_pid >/dev/null || fail "broker exited during start-up"
  if port_open "$KAFKA_PORT" && { [ -z "$sasl_ports" ] || port_open "$KAFKA_SASL_PORT"; } &&
     grep -q 'Kafka Server started' "$KAFKA_LOGDIR/server.log" 2>/dev/null; then
    break
  fi
  [ "$SECONDS" -lt "$deadline" ] || fail "broker not ready after ${timeout}s"
  sleep 0.5
done
until kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" --list \
        > /dev/null 2> "$KAFKA_LOGDIR/ready-check.err"; do
  [ "$SECONDS" -lt "$deadline" ] || { cat "$KAFKA_LOGDIR/ready-check.err" >&2; fail "broker did not answer after ${timeout}s"; }
  sleep 1
done
log "broker ready on $KAFKA_BOOTSTRAP (pid $(kafka_pid), cluster $cluster_id, $((SECONDS - t0))s, state $KAFKA_STATE)"
if [ "$KAFKA_SASL_SSL" = 1 ]; then
  log "SASL_SSL on 127.0.0.1:$KAFKA_SASL_PORT (SCRAM-SHA-512/256, user $KAFKA_SASL_USER), CA $KAFKA_TLS_DIR/ca.pem"
fi
