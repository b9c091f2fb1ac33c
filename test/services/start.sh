#!/usr/bin/env bash
# Starts Redis and PostgreSQL for the plugin tests (from Debian packages; see
# README.md, "Tests and benchmarks"), each in a private state dir:
#
#   redis-server  127.0.0.1:$REDIS_PORT (6379), daemonized, pid file in the
#                 state dir, no persistence (no RDB, no AOF)
#   PostgreSQL    a cluster of its own (initdb as user postgres) in the state
#                 dir, 127.0.0.1:$POSTGRES_PORT (5432), trust authentication,
#                 fsync off, with a database $POSTGRES_DB (hookbridge_test)
#
# Installs the Debian packages redis-server and postgresql first when they are
# missing (apt-get update once, then apt-get install; root needed for that
# step only). The packages' own services are neither started nor used.
#
# Idempotent: servers this script started and that still run are reused.
# Prints, on stdout, the variables the tests read:
#
#   eval "$(bash test/services/start.sh)"
#   go test -count=1 -p 1 ./test/plugins/ ./plugins/...
#   bash test/services/stop.sh
#
# See common.sh for the environment variables.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# 1. Packages, only when missing.
missing=()
for pkg in redis-server postgresql; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { log "packages missing: ${missing[*]}; install them as root (apt-get install -y ${missing[*]})"; exit 1; }
  log "installing ${missing[*]}"
  # Keep the packages from starting their own services (they would take the
  # ports); Debian's policy-rc.d mechanism, only when none is in place.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, test/services/start.sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2 || rc=$?
  [ "$own_policy" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || { log "apt-get failed ($rc)"; exit "$rc"; }
fi
command -v redis-server >/dev/null || { log "redis-server not found after installing redis-server"; exit 1; }
[ -x "$POSTGRES_BIN/initdb" ] || { log "$POSTGRES_BIN/initdb not found; set POSTGRES_BIN to the PostgreSQL server binaries"; exit 1; }
psql="$POSTGRES_BIN/psql"
[ -x "$psql" ] || psql=psql

mkdir -p "$SERVICES_STATE"
chmod 755 "$SERVICES_STATE"
touch "$SERVICES_MARKER"
timeout="$SERVICES_START_TIMEOUT"

# 2. Redis.
if pid="$(redis_pid)"; then
  log "redis already running (pid $pid) on $(redis_addr)"
else
  port_open "$REDIS_PORT" && { log "port $REDIS_PORT on 127.0.0.1 is in use by another process; set REDIS_PORT"; exit 1; }
  rm -rf "$REDIS_DIR"
  mkdir -p "$REDIS_DIR"
  chown "$(owner_of redis)" "$REDIS_DIR"
  as_user redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --daemonize yes --pidfile "$REDIS_PIDFILE" --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" \
    --save '' --appendonly no
  deadline=$((SECONDS + timeout))
  until [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && redis_pid >/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "redis not ready after ${timeout}s; tail of $REDIS_DIR/redis.log:"
      tail -n 30 "$REDIS_DIR/redis.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
  log "redis ready on $(redis_addr) (pid $(redis_pid), $(redis-server --version | grep -o 'v=[^ ]*'))"
fi

# 3. PostgreSQL: a private cluster owned by the postgres user.
if pid="$(postgres_pid)"; then
  log "postgres already running (pid $pid) on 127.0.0.1:$POSTGRES_PORT"
else
  port_open "$POSTGRES_PORT" && { log "port $POSTGRES_PORT on 127.0.0.1 is in use by another process; set POSTGRES_PORT"; exit 1; }
  rm -rf "$POSTGRES_DIR"
  mkdir -p "$POSTGRES_DIR"
  chown "$(owner_of postgres)" "$POSTGRES_DIR"
  chmod 700 "$POSTGRES_DIR"
  (cd "$POSTGRES_DIR" && as_user postgres "$POSTGRES_BIN/initdb" -D "$POSTGRES_DATA" -U postgres \
    --auth=trust --encoding=UTF8 --locale=C --no-sync) > "$POSTGRES_DIR/initdb.log" 2>&1 ||
    { log "initdb failed:"; cat "$POSTGRES_DIR/initdb.log" >&2; exit 1; }
  # Test settings: loopback only, socket in the state dir, no durability.
  if ! (cd "$POSTGRES_DIR" && as_user postgres "$POSTGRES_BIN/pg_ctl" start -w -t "$timeout" \
        -D "$POSTGRES_DATA" -l "$POSTGRES_DIR/postgres.log" \
        -o "-p $POSTGRES_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$POSTGRES_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200") \
        > "$POSTGRES_DIR/pg_ctl.log" 2>&1; then
    log "postgres did not start; tail of $POSTGRES_DIR/postgres.log:"
    tail -n 30 "$POSTGRES_DIR/postgres.log" >&2 2>/dev/null || true
    if [ -f "$POSTGRES_DATA/postmaster.pid" ]; then head -n 1 "$POSTGRES_DATA/postmaster.pid" > "$POSTGRES_PIDFILE"; fi
    exit 1
  fi
  head -n 1 "$POSTGRES_DATA/postmaster.pid" > "$POSTGRES_PIDFILE"
  log "postgres ready on 127.0.0.1:$POSTGRES_PORT (pid $(postgres_pid), $("$POSTGRES_BIN/postgres" --version))"
fi
if [ "$("$psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DB'")" != 1 ]; then
  "$psql" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >&2
  log "created database $POSTGRES_DB"
fi

print_env
