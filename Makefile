# Two commands do everything on a fresh machine: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build on this machine's disk, never a CUDA download.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# Chromium (Debian's package) for the browser tests, where this machine allows it;
	# where it cannot, `make test` says so in its summary.
	command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	    && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	    || echo "warning: could not install chromium: the browser tests will not run"
	# The index, if it is not up to date, and the question encoder's one-time export
	# (~15 s), so that the first `make run` is ready in seconds.
	$(BIN)/assistant build
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/assistant serve

test: setup
	$(BIN)/python -m pytest

# The benchmark suite (benchmarks/run.py: table, results.json, scaling.png); the
# optional "bench" extra adds txtai, measured side by side.
$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $@

bench: setup $(VENV)/.bench-installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) index/.tmp-*
