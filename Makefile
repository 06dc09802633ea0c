# trayline — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo install lint typecheck pytest bench clean particle-clients e2e-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest -q -p no:cacheprovider tests/architecture  # layers, module and function sizes

typecheck: $(STAMP)
	$(BIN)/mypy

# Particle's own clients for tests/particle/test_emulator_real_clients.py (see the script).
particle-clients:
	-scripts/install-particle-clients.sh build/particle-cli

# Debian's Chromium for the browser tests (tests/e2e; Playwright's own browser download does not
# work here). Installs only when /usr/bin/chromium is missing; needs root (as CI runs).
e2e-deps:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

pytest: $(STAMP) particle-clients e2e-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/trayline demo

# Each prints its figures against a baseline measured in the same run (see each script's docstring).
bench: $(STAMP)
	$(BIN)/python benchmarks/provision.py
	$(BIN)/python benchmarks/firmware.py
	$(BIN)/python benchmarks/devices.py
	$(BIN)/python benchmarks/usb_flash.py
	$(BIN)/python benchmarks/station.py
	$(BIN)/python benchmarks/web.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
