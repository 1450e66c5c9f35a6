# Every install step lives here: CI runs `make test` on a clean checkout.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export UV_COMPILE_BYTECODE := 1

.PHONY: install demo test bench bench-quick lint format browser postgres requirements clean

install: $(VENV)/.installed

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: requirements.txt pyproject.toml $(BIN)/uv
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

# The report is checked in a real headless browser (Debian's chromium).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the report test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# A team's Prefect server is tested on PostgreSQL (Debian's postgresql; its programs live off PATH, in
# /usr/lib/postgresql/<version>/bin). The tests start their own cluster.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian postgresql for the team server test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

demo: install
	$(BIN)/cutroom run examples/briefs/aurora-launch.yaml --out cutroom-out

# Three workers, each taking the next test (a file that shares costly module fixtures stays on one: xdist_group).
# Tests wait on loopback services (Prefect, the simulator, S3) for about a quarter of their time: with two
# workers on two cores, 1.4 cores were busy; a third fills those waits. Each worker starts its own services.
test: install browser postgres
	$(BIN)/python -m pytest -n 3 --dist loadgroup

# Benchmarks on loopback services (README.md, "Benchmarks"): figures and ratios, no pass/fail.
bench: install
	$(BIN)/python -m bench

bench-quick: install
	$(BIN)/python -m bench --quick

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-pin after editing pyproject.toml dependencies (no index URLs are written).
requirements: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --no-emit-index-url --no-header -o requirements.txt

clean:
	rm -rf $(VENV) cutroom-out .pytest_cache
