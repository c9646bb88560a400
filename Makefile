# Everything installs from nothing: `make sweep` and `make test` create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STUDY ?= quickstart
STORAGE ?= sqlite:///sweeps.db
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install sweep report dashboard test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

sweep: $(STAMP)
	$(BIN)/sweep run $(STUDY) --storage $(STORAGE)

report: $(STAMP)
	$(BIN)/sweep report $(STUDY) --storage $(STORAGE)

dashboard: $(STAMP)
	$(BIN)/sweep dashboard --storage $(STORAGE)

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m sweep.bench

clean:
	rm -rf $(VENV) reports sweeps.db
