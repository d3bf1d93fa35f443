# Two commands: `make report` (set up, then run the default experiment) and `make test` (every test; CI runs it).
# `make test-fast` skips the tests marked `slow` (training, PDFs, subprocess runs; docs/tests.md): for every change.
# Both run on two pytest-xdist workers, a test file each at a time (docs/tests.md).
# All are idempotent: setup re-runs only when pyproject.toml changes or a system package is missing.
VENV      := .venv
PYTHON    ?= python3
STAMP     := $(VENV)/.installed
# two workers: most tests wait on one core (training is single-threaded) or on a child process; a file's
# tests stay on one worker so its module-scoped fixtures are made once. PARALLEL= runs them in one process.
PARALLEL  ?= -n 2 --dist loadfile

.PHONY: report test test-fast setup system
report: setup
	$(VENV)/bin/reportgen run

test: setup
	$(VENV)/bin/pytest -q $(PARALLEL) --durations=15

test-fast: setup
	$(VENV)/bin/pytest -q $(PARALLEL) -m "not slow"

setup: system $(STAMP)

system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)
