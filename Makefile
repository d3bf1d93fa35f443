# Two commands: `make report` (set up, then run the default experiment) and `make test`.
# Both are idempotent: setup re-runs only when pyproject.toml changes or a system package is missing.
VENV      := .venv
PYTHON    ?= python3
STAMP     := $(VENV)/.installed

.PHONY: report test setup system
report: setup
	$(VENV)/bin/reportgen run

test: setup
	$(VENV)/bin/pytest -q

setup: system $(STAMP)

system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)
