# make demo: server + simulated dispensers on any machine.  make test: the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install lock test test-gevent test-threading test-py313 test-stacks test-fast demo run bench lint mutate clean

# Every third-party package comes from the hashed lock (pip refuses anything unpinned or altered), then the
# project itself is installed on top without dependencies, built by the locked setuptools.
$(STAMP): pyproject.toml requirements/dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Re-resolve the locks after changing a dependency in pyproject.toml (needs uv: pipx install uv). Existing pins
# are kept where they still fit; `make lock UV_FLAGS=--upgrade` moves everything to the newest releases.
UV ?= uv
LOCK := $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes --custom-compile-command 'make lock'
lock:
	$(LOCK) $(UV_FLAGS) pyproject.toml --extra server -o requirements/server.lock
	$(LOCK) $(UV_FLAGS) pyproject.toml --extra dispenser -o requirements/dispenser.lock
	$(LOCK) $(UV_FLAGS) pyproject.toml requirements/build.in --extra dev -o requirements/dev.lock

# The suite mostly waits (servers, browsers, timeouts): four workers on two cores, whole modules to each, the longest
# first as the last run measured them (tests/durations.json, rewritten by this run; tests/helpers/workers.py).
# `make test WORKERS=0` runs it in one process.
WORKERS ?= 4
test: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest --write-durations $(if $(filter-out 0,$(WORKERS)),-n $(WORKERS) --dist loadfile)

# The other server stacks (async_mode, README): every server the tests start runs gevent, or gunicorn's threads
# (GEL_TEST_ASYNC_MODE; a test about one stack pins its own). In-process tests (unit, api) do not depend on it.
# CI runs them after `make test`, with the process tests on Python 3.13 (Raspberry Pi OS's).
SERVER_TESTS := tests/process tests/load tests/services tests/dispenser tests/browser
XDIST := $(if $(filter-out 0,$(WORKERS)),-n $(WORKERS) --dist loadfile)
test-gevent: $(STAMP)
	GEL_TEST_ASYNC_MODE=gevent $(PY) -m pytest $(XDIST) $(SERVER_TESTS)

test-threading: $(STAMP)
	GEL_TEST_ASYNC_MODE=threading $(PY) -m pytest $(XDIST) tests/process tests/browser/test_dashboard.py

# Its own venv from the same hashed lock: PY313=/path/to/python3.13 if it is not on PATH or in pyenv.
PY313 ?= $(or $(lastword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13)),$(shell command -v python3.13))
VENV313 := .venv-3.13
test-py313:
	@test -n "$(PY313)" || { echo "no python3.13: set PY313=/path/to/python3.13"; exit 1; }
	test -x $(VENV313)/bin/python || $(PY313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(VENV313)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(VENV313)/bin/python -m pytest $(XDIST) tests/process

test-stacks: test-gevent test-threading test-py313

# The quick loop while editing: no process, torture, fuzz, browser or service test. `make test` runs them all.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not browser and not services"

# `make demo NOTIFY=1`: the alerts also go to a local webhook receiver (and to MQTT when Mosquitto answers).
# `make demo FLEET=300`: 300 simulated dispensers in groups (one process), for the wall display at scale.
demo: $(STAMP)
	$(PY) tools/demo.py --config config.toml $(if $(FLEET),--fleet $(FLEET)) $(if $(NOTIFY),--notify)

# The server alone. With the example tokens of config.toml it refuses to start: `make run DEMO=1` serves them on
# 127.0.0.1 (as `make demo` does), or put your own tokens in config.toml.
run: $(STAMP)
	$(PY) -m app --config config.toml $(if $(DEMO),--demo)

bench: $(STAMP)
	$(PY) -m bench.run

# ruff, and the layers of app/ (pyproject.toml, [tool.importlinter]): each imports only those below it.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache

# Injected faults the tests must catch (mutmut 3, [tool.mutmut] in pyproject.toml): before a release and after
# changing a core module, not in CI (minutes per module). `mutmut results` lists the survivors; docs/mutation.md.
# `make mutate MUTANTS="app.store.writes*"` runs one module; the summary goes to docs/mutation.md either way.
mutate: $(STAMP)
	$(VENV)/bin/mutmut run $(MUTANTS)
	$(PY) tools/mutation_report.py

clean:
	rm -rf $(VENV) $(VENV313) instance .pytest_cache .ruff_cache mutants
