#!/usr/bin/env bash
# Check the local cloud against Particle's real clients: the `particle` CLI and particle-api-js.
#
# Installs both, pinned by .ci/particle-clients/package-lock.json, into build/particle-cli/
# (gitignored; node_modules is never committed; cached between runs) with
# scripts/install-particle-clients.sh, then runs tests/particle/test_emulator_real_clients.py
# with TRAYLINE_REQUIRE_REAL_CLIENTS=1, which starts `trayline cloud serve`, points a
# throw-away HOME's particle profile at it (apiUrl) and runs
# `particle product device add PRODUCT --file ids.txt` plus scripts/particle-api-js-check.js.
#
# Usage: scripts/check-particle-cli.sh        (needs node + npm; about a minute the first time)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=build/particle-cli
scripts/install-particle-clients.sh "$DIR"
TRAYLINE_REQUIRE_REAL_CLIENTS=1 TRAYLINE_PARTICLE_CLI_DIR="$PWD/$DIR" \
  .venv/bin/pytest -q -rs tests/particle/test_emulator_real_clients.py
