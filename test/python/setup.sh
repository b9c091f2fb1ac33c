#!/usr/bin/env bash
# Creates the Python virtualenv of the e2e tier at test/.venv (gitignored) and
# installs into it the requirements of the Python examples:
#   examples/receiver-fastapi/requirements.txt
#   examples/plugin-python/requirements.txt   (when it exists)
#
# Idempotent and cached: the venv is rebuilt only when a requirements file (or
# the set of them, or the interpreter) changed; a hash of them is kept in
# test/.venv/.requirements.sha256 and written only after a complete install,
# so an interrupted run rebuilds next time. Prints the venv's python on the
# last line of stdout.
#
# Environment: PYTHON (default python3) is the interpreter the venv is made
# from; HOOKBRIDGE_TEST_VENV (default <repo>/test/.venv) is where it goes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo="$PWD"

PYTHON="${PYTHON:-python3}"
VENV="${HOOKBRIDGE_TEST_VENV:-$repo/test/.venv}"
log() { printf 'python-venv: %s\n' "$*" >&2; }

command -v "$PYTHON" >/dev/null 2>&1 || { log "$PYTHON not found (need Python 3.9+ with the venv module)"; exit 1; }

reqs=(examples/receiver-fastapi/requirements.txt)
[ -f examples/plugin-python/requirements.txt ] && reqs+=(examples/plugin-python/requirements.txt)

# The hash covers the interpreter's version and each file's path and content.
want="$( {
  "$PYTHON" -c 'import sys; print(sys.version)'
  for r in "${reqs[@]}"; do printf '%s\n' "$r"; cat "$r"; done
} | sha256sum | cut -d' ' -f1)"
stamp="$VENV/.requirements.sha256"

# One setup at a time (another e2e run may be doing the same).
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  log "using cached venv $VENV (${reqs[*]})"
  echo "$VENV/bin/python"
  exit 0
fi

log "creating $VENV from ${reqs[*]}"
t0=$SECONDS
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
pipargs=()
for r in "${reqs[@]}"; do pipargs+=(-r "$r"); done
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${pipargs[@]}" >&2; then
  log "pip install failed; the venv is left without its stamp and is rebuilt next time"
  exit 1
fi
printf '%s\n' "$want" > "$stamp"
log "ready in $((SECONDS - t0))s"
echo "$VENV/bin/python"
