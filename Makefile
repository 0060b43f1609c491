# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
PYTEST_ARGS ?=
CHROMIUM := /usr/bin/chromium
# The agent's commands run in bubblewrap; its search tool uses ripgrep.
BWRAP := /usr/bin/bwrap
RG := /usr/bin/rg
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: install run test lint format typecheck unit lock clean bench screenshots

install: $(VENV)/.synced node_modules/.installed

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## run: the whole product locally (sandbox Slack and offline model unless .env says otherwise);
## sessions survive a restart, `SANDBOX_RESET=1 make run` starts with none
run: install $(BWRAP) $(RG)
	$(VENV)/bin/python -m sandbox.local_run

## test: lint, types and every test, on a real Restate server
test: install lint typecheck $(CHROMIUM) $(BWRAP) $(RG)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The dashboard's browser tests drive Debian's Chromium through Playwright (never a browser
# build Playwright downloads). Installed only when missing; CI runs this as root.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium

$(BWRAP):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bubblewrap

$(RG):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ripgrep

## screenshots: refresh the README's images (docs/*.png: dashboard, sandbox page) from the browser tests
screenshots: install $(CHROMIUM) $(BWRAP) $(RG)
	SCREENSHOT_DIR=docs $(VENV)/bin/pytest tests/dashboard/test_browser.py tests/sandbox/test_workspace_render.py $(PYTEST_ARGS)

## bench: measure interruption latency, acks and scale on loopback; writes docs/benchmarks.md
BENCH_ARGS ?=
bench: install $(BWRAP) $(RG)
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## unit: the fast tests only (no Restate server)
unit: install $(BWRAP) $(RG)
	$(VENV)/bin/pytest -m "not integration" $(PYTEST_ARGS)

lock: $(UV)
	$(UV) lock --python $(PYTHON)
	npm install --package-lock-only --no-audit --no-fund

clean:
	rm -rf $(VENV) $(TOOLS) node_modules .run .pytest_cache .mypy_cache .ruff_cache
