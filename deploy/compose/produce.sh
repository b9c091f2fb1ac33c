#!/bin/sh
# Producer of the compose demo: one JSON order every $PRODUCE_INTERVAL seconds
# to $TOPIC, keyed by customer (five keys, so per-key ordering is visible),
# with a content-type header. A single kafka-console-producer JVM reads the
# lines: "<headers>TAB<key>TAB<value>" (parse.headers, parse.key).
set -eu
: "${BOOTSTRAP:=kafka:9092}" "${TOPIC:=orders}" "${PRODUCE_INTERVAL:=1}"

i=0
while :; do
  i=$((i + 1))
  customer="customer-$((i % 5))"
  printf 'content-type:application/json\t%s\t{"order_id":%d,"customer":"%s","amount_cents":%d}\n' \
    "$customer" "$i" "$customer" $(((i * 1373) % 10000 + 100))
  sleep "$PRODUCE_INTERVAL"
done | /opt/kafka/bin/kafka-console-producer.sh \
  --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" \
  --reader-property parse.headers=true \
  --reader-property parse.key=true \
  --command-property linger.ms=5
