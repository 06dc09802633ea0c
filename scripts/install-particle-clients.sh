#!/usr/bin/env bash
# Install Particle's own clients (particle-cli, particle-api-js), pinned by
# .ci/particle-clients/package-lock.json, into build/particle-cli/ (git-ignored).
#
# The tests in tests/particle/test_emulator_real_clients.py run them against the
# local cloud. Cached between runs: nothing is done when the installed lock file
# matches the pinned one, and npm's own cache (~/.npm) lets a reinstall work
# offline. On failure, prints ONE line on stderr and exits 1; the tests then
# skip, or fail under TRAYLINE_REQUIRE_REAL_CLIENTS=1.
#
# Usage: scripts/install-particle-clients.sh [DIR]   (DIR default: build/particle-cli)
set -uo pipefail
cd "$(dirname "$0")/.."
PINS=.ci/particle-clients
DIR=${1:-${TRAYLINE_PARTICLE_CLI_DIR:-build/particle-cli}}
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

fail() { echo "particle clients: $1 (see scripts/install-particle-clients.sh)" >&2; exit 1; }

command -v node >/dev/null 2>&1 || fail "node is not installed (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || fail "npm is not installed (apt-get install npm)"

if [ -x "$DIR/node_modules/.bin/particle" ] && [ -d "$DIR/node_modules/particle-api-js" ] \
   && cmp -s "$PINS/package-lock.json" "$DIR/.installed-lock.json"; then
  exit 0  # already installed at the pinned versions
fi

mkdir -p "$DIR" || fail "cannot create $DIR"
cp "$PINS/package.json" "$PINS/package-lock.json" "$DIR/" || fail "cannot copy the pins to $DIR"
rm -f "$DIR/.installed-lock.json"
# npm ci installs exactly the lock file. First from npm's cache (~/.npm) alone, which works
# with no network and fails fast when a tarball is missing; then from the registry.
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
if ! (cd "$DIR" && npm ci --offline --loglevel=error >"$LOG" 2>&1); then
  if ! (cd "$DIR" && npm ci --prefer-offline --loglevel=error >"$LOG" 2>&1); then
    reason=$(grep -m1 -E 'npm (ERR|error)' "$LOG" | sed -E 's/^npm (ERR!|error) *//' | cut -c1-160)
    fail "npm ci failed in $DIR: ${reason:-unknown error} (no network and nothing cached?)"
  fi
fi
[ -x "$DIR/node_modules/.bin/particle" ] || fail "npm ci finished but $DIR/node_modules/.bin/particle is missing"
cp "$PINS/package-lock.json" "$DIR/.installed-lock.json"
