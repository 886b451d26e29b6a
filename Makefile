# Two commands on a fresh machine: `make demo` and `make test`. Each sets up what it needs.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_VENV := .venv-demo
LINTED := $(wildcard src tests examples bench compat)

# The support matrix: Python 3.10-3.13 x pytest 8.4 and the latest 9.x.
PYTHONS := 3.10 3.11 3.12 3.13
PYTESTS := 8.4 9
find_python = $(firstword $(wildcard $(HOME)/.pyenv/versions/$(1).*/bin/python$(1)) $(shell command -v python$(1)))

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test check lint types pytest browser matrix matrix-ci cell bench bench-plots bench-envs bench-docs compat clean

$(VENV)/.installed: pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip uv
	$(VENV)/bin/uv pip install -q -p $(PY) -e '.[test]'
	touch $@

$(DEMO_VENV)/.installed: pyproject.toml
	rm -rf $(DEMO_VENV)
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install -q -U pip
	$(DEMO_VENV)/bin/pip install -q -e . pytest-asyncio pytest-mock aiohttp aiosqlite
	touch $@

## demo: run examples/ under pytest-asyncio and under aiotempo, and print what aiotempo saved
DEMO_ARGS ?= --asyncio-concurrency=8 --asyncio-clock=virtual
demo: $(DEMO_VENV)/.installed
	$(DEMO_VENV)/bin/python examples/run_demo.py $(DEMO_ARGS)

## test: lint, type-check and run the whole suite (examples included) on the newest Python/pytest
test: $(VENV)/.installed browser lint types pytest

## browser: Debian's chromium for tests/test_timeline_browser.py (Playwright is a test extra);
## without it those tests skip, or fail when CI is set
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
		sudo=$$(test "$$(id -u)" = 0 || echo sudo); \
		command -v apt-get >/dev/null \
		&& $$sudo apt-get update -qq \
		&& $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
		|| echo "could not install $(CHROMIUM): the browser tests will skip (and fail on CI)"; }

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

types: $(VENV)/.installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider $(ARGS)

## matrix: the suite on every supported Python x pytest pair
matrix:
	@for py in $(PYTHONS); do for pt in $(PYTESTS); do \
		$(MAKE) --no-print-directory cell PY_VERSION=$$py PYTEST_VERSION=$$pt || exit 1; done; done

## matrix-ci: what CI runs besides `make test` (python3 with pytest 9): the oldest and the newest
## pair, and Python 3.12 on pytest 8.4, so that every supported Python runs once
matrix-ci:
	$(MAKE) --no-print-directory cell PY_VERSION=3.10 PYTEST_VERSION=8.4
	$(MAKE) --no-print-directory cell PY_VERSION=3.12 PYTEST_VERSION=8.4
	$(MAKE) --no-print-directory cell PY_VERSION=3.13 PYTEST_VERSION=9

cell: $(VENV)/.installed
	@test -n "$(call find_python,$(PY_VERSION))" || { echo "python$(PY_VERSION) not found"; exit 1; }
	@echo "== Python $(PY_VERSION), pytest $(PYTEST_VERSION).*"
	$(VENV)/bin/uv venv -q -p $(call find_python,$(PY_VERSION)) .venv-matrix/$(PY_VERSION)-$(PYTEST_VERSION)
	$(VENV)/bin/uv pip install -q -p .venv-matrix/$(PY_VERSION)-$(PYTEST_VERSION)/bin/python \
		-e '.[test]' 'pytest==$(PYTEST_VERSION).*'
	.venv-matrix/$(PY_VERSION)-$(PYTEST_VERSION)/bin/python -m pytest -q -p no:cacheprovider

## bench: benchmarks, as ratios measured side by side in one run
bench: $(VENV)/.installed
	$(PY) bench/run.py $(ARGS)

## bench-plots: docs/img/bench-*.{png,svg} from bench/results/ (made by `make bench` or bench-docs)
bench-plots: $(VENV)/.installed
	$(PY) bench/plot.py $(ARGS)

## bench-envs: the environments of the variants that cannot share .venv (bench/README.md)
BENCH_COOPERATIVE := .venv-bench-cooperative
BENCH_LOOPTIME := .venv-bench-looptime
bench-envs: $(BENCH_COOPERATIVE)/.installed $(BENCH_LOOPTIME)/.installed

$(BENCH_COOPERATIVE)/.installed:
	rm -rf $(BENCH_COOPERATIVE)
	$(PYTHON) -m venv $(BENCH_COOPERATIVE)
	$(BENCH_COOPERATIVE)/bin/pip install -q 'pytest==8.4.*' pytest-asyncio-cooperative aiohttp
	touch $@

$(BENCH_LOOPTIME)/.installed: pyproject.toml
	rm -rf $(BENCH_LOOPTIME)
	$(PYTHON) -m venv $(BENCH_LOOPTIME)
	$(BENCH_LOOPTIME)/bin/pip install -q -U pip uv
	$(BENCH_LOOPTIME)/bin/uv pip install -q -p $(BENCH_LOOPTIME)/bin/python -e '.[bench]' looptime
	touch $@

## bench-docs: docs/benchmarks.md's charts: every suite with --slow (about 15 min; the clock
## suite from looptime's environment, so that its looptime variant runs), then bench-plots
bench-docs: $(VENV)/.installed bench-envs
	-$(PY) bench/run.py --slow $$($(PY) bench/run.py --list | cut -d' ' -f1 | grep -vx clock)
	-$(BENCH_LOOPTIME)/bin/python bench/run.py --slow clock
	$(PY) bench/plot.py

## compat: real open-source suites under pytest-asyncio and under aiotempo
compat: $(VENV)/.installed
	$(PY) compat/run.py $(ARGS)

clean:
	rm -rf $(VENV) $(DEMO_VENV) .venv-matrix compat/work bench/results
