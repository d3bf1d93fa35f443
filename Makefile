# Two commands: `make report` (set up, then run the default experiment) and `make test` (every test; CI runs it).
# `make test-fast` runs the tests that each cost under tests/durations.json's threshold alone (about 2 minutes
# here), on every change; `make test-durations` re-measures the suite and rewrites that file.
# All are idempotent: setup re-runs only when pyproject.toml changes or a system package is missing.
VENV      := .venv
PYTHON    ?= python3
STAMP     := $(VENV)/.installed

.PHONY: report test test-fast test-durations setup system
report: setup
	$(VENV)/bin/reportgen run

test: setup
	$(VENV)/bin/pytest -q --durations=15

test-fast: setup
	$(VENV)/bin/pytest -q -m "not slow"

test-durations: setup
	$(VENV)/bin/python benchmarks/suite_durations.py

setup: system $(STAMP)

system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)
