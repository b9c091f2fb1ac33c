# Shared settings for test/services/{start,stop}.sh. Source it; don't run it.
#
# Redis and PostgreSQL for the plugin tests (test/plugins, plugins/redis,
# plugins/postgres), from Debian packages, each started by hand in a private
# state dir (nothing of the packages' own services is used or touched).
#
# Environment (all optional):
#   SERVICES_STATE   state dir (data, logs, pid files), default /tmp/hookbridge-services.<checksum
#                    of this checkout's path>: outside the checkout, because the servers run as
#                    the redis and postgres users, who cannot enter a checkout in a private
#                    (mode 700) directory such as one made by mktemp -d
#   REDIS_PORT       Redis port on 127.0.0.1, default 6379
#   POSTGRES_PORT    PostgreSQL port on 127.0.0.1, default 5432
#   POSTGRES_BIN     PostgreSQL server binaries, default /usr/lib/postgresql/15/bin
#   POSTGRES_DB      database created for the tests, default hookbridge_test
#   SERVICES_START_TIMEOUT  seconds to wait for each server, default 60

SERVICES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

_abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "$1" ;; esac; }

SERVICES_STATE="$(_abspath "${SERVICES_STATE:-/tmp/hookbridge-services.$(printf '%s' "$SERVICES_DIR" | cksum | cut -d' ' -f1)}")"
SERVICES_MARKER="$SERVICES_STATE/.hookbridge-services"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_DIR="$SERVICES_STATE/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
POSTGRES_BIN="${POSTGRES_BIN:-/usr/lib/postgresql/15/bin}"
POSTGRES_DB="${POSTGRES_DB:-hookbridge_test}"
POSTGRES_DIR="$SERVICES_STATE/postgres"
POSTGRES_DATA="$POSTGRES_DIR/data"
POSTGRES_PIDFILE="$POSTGRES_DIR/postgres.pid"
SERVICES_START_TIMEOUT="${SERVICES_START_TIMEOUT:-60}"

log() { printf '[services] %s\n' "$*" >&2; }

# as_user USER CMD...: runs CMD as USER when we are root, else as ourselves
# (a non-root user runs the servers under its own account).
as_user() {
  local user="$1"
  shift
  if [ "$(id -u)" = 0 ] && id "$user" >/dev/null 2>&1; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

# owner_of USER: the account the servers run as (see as_user).
owner_of() {
  if [ "$(id -u)" = 0 ] && id "$1" >/dev/null 2>&1; then printf '%s\n' "$1"; else id -un; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# live_pid PIDFILE WORD: prints the PID in PIDFILE (first line) when that
# process is alive and its command line contains WORD; else fails.
live_pid() {
  [ -f "$1" ] || return 1
  local pid
  pid="$(head -n 1 "$1" | tr -dc '0-9')"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$2" || return 1
  fi
  printf '%s\n' "$pid"
}

redis_pid() { live_pid "$REDIS_PIDFILE" redis-server; }
postgres_pid() { live_pid "$POSTGRES_PIDFILE" postgres; }

redis_addr() { printf '127.0.0.1:%s\n' "$REDIS_PORT"; }
postgres_url() { printf 'postgres://postgres@127.0.0.1:%s/%s?sslmode=disable\n' "$POSTGRES_PORT" "$POSTGRES_DB"; }

print_env() {
  printf 'export HOOKBRIDGE_TEST_REDIS=%s\n' "$(redis_addr)"
  printf "export HOOKBRIDGE_TEST_POSTGRES='%s'\n" "$(postgres_url)"
}
