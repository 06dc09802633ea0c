#!/usr/bin/env bash
# Check the local cloud against Particle's real clients: the `particle` CLI and particle-api-js.
#
# Installs both from the npm registry into build/particle-cli/ (gitignored; node_modules is
# never committed), then runs tests/particle/test_emulator_real_clients.py, which starts
# `trayline cloud serve`, points a throw-away HOME's particle profile at it (apiUrl) and runs
# `particle product device add PRODUCT --file ids.txt` plus scripts/particle-api-js-check.js.
#
# Usage: scripts/check-particle-cli.sh        (needs node + npm; about a minute the first time)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=build/particle-cli
CLI_VERSION=${PARTICLE_CLI_VERSION:-3.43.1}
API_JS_VERSION=${PARTICLE_API_JS_VERSION:-12.0.3}

command -v node >/dev/null || { echo "node is not installed (apt-get install nodejs npm)" >&2; exit 2; }
if [ ! -x "$DIR/node_modules/.bin/particle" ] || [ ! -d "$DIR/node_modules/particle-api-js" ]; then
  mkdir -p "$DIR"
  [ -f "$DIR/package.json" ] || echo '{"name":"trayline-particle-cli-check","private":true}' > "$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error \
    "particle-cli@$CLI_VERSION" "particle-api-js@$API_JS_VERSION"
fi
TRAYLINE_PARTICLE_CLI_DIR="$PWD/$DIR" .venv/bin/pytest -q -rs tests/particle/test_emulator_real_clients.py
