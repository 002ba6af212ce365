# Two entry points, each doing its own set-up on a fresh machine (see README):
#   make migration-test   the main job: scripts/test_migrations.py --verbose
#   make test             the whole test suite (starts its own throwaway PostgreSQL 15)
#
# PYTHON picks the interpreter for the virtualenv: Python 3.12 when it can be found
# (plain python3.12, or pyenv's 3.12.x), else python3 (3.11 is supported too).

VENV ?= .venv
PYTHON ?= $(shell sh scripts/find_python.sh)
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: venv bytecode test migration-test lint benchmark dist clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

# The suite starts thousands of Python processes (tool runs, step servers, fixture projects'
# manage.py) on the repository's own modules. Where the environment sets
# PYTHONDONTWRITEBYTECODE=1 (these machines do) none of them writes a .pyc, so on a fresh clone
# each one compiled the tool and the fixture's migrations from source again: compiling them once
# first (about a second; compileall writes whatever that variable says) took the suite on a fresh
# clone from 7:56 to 6:52 of user CPU, 465.9 to 437.4 s (docs/tests.md).
BYTECODE_DIRS := migration_check hello_world upstream scripts benchmarks tests

# Only a speed-up: a file that does not compile (a fixture may one day be broken on purpose) is
# said, and the suite runs it from source as before.
bytecode: venv
	@$(VENV_PY) -m compileall -q -j 0 $(BYTECODE_DIRS) >/dev/null 2>&1 || \
		echo "make bytecode: some files did not compile (python -m compileall $(BYTECODE_DIRS) says which); the suite runs them from source"

test: venv bytecode
	$(VENV_PY) -m pytest -n 2 --dist loadscope $(PYTEST_ARGS)

migration-test: venv
	$(VENV_PY) scripts/test_migrations.py --verbose $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .

benchmark: venv
	$(VENV_PY) benchmarks/run.py $(ARGS)

# The distribution: dist/django_migration_check-*.whl (pip install it) and the one-file build
# for teams that copy the tool, dist/test_migrations.pyz (stdlib zipapp).
dist: venv
	$(VENV_PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .
	$(VENV_PY) scripts/build_pyz.py

clean:
	rm -rf $(VENV) .pytest_cache dist
