#!/usr/bin/env bash
# Topic helper for test scripts, against the broker from start.sh
# (KAFKA_BOOTSTRAP, default 127.0.0.1:$KAFKA_PORT).
#
#   topics.sh create NAME [PARTITIONS] [CONFIG=VALUE ...]   (PARTITIONS default 6)
#   topics.sh delete NAME
#   topics.sh list
#   topics.sh describe [NAME]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ -d "$KAFKA_LIBS" ] || { log "no jars in $KAFKA_LIBS: run test/kafka/start.sh first"; exit 1; }
tc() { kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" "$@"; }

cmd="${1:-}"; shift || true
case "$cmd" in
  create)
    [ $# -ge 1 ] || { echo "usage: $0 create NAME [PARTITIONS] [CONFIG=VALUE ...]" >&2; exit 2; }
    name="$1"; parts="${2:-6}"; shift; [ $# -gt 0 ] && shift
    cfg=(); for c in "$@"; do cfg+=(--config "$c"); done
    tc --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 "${cfg[@]}"
    ;;
  delete)
    [ $# -eq 1 ] || { echo "usage: $0 delete NAME" >&2; exit 2; }
    tc --delete --if-exists --topic "$1"
    ;;
  list)
    tc --list
    ;;
  describe)
    if [ $# -ge 1 ]; then tc --describe --topic "$1"; else tc --describe; fi
    ;;
  *)
    echo "usage: $0 {create NAME [PARTITIONS] [CONFIG=VALUE ...] | delete NAME | list | describe [NAME]}" >&2
    exit 2
    ;;
esac
