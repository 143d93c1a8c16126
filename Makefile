PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The registry mirror config may name local folders that do not exist; pip only warns about them.
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: demo test bench bench-site lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	@rm -rf var/demo
	@echo "== digest run: the example snapshots in examples/inbox/ =="
	$(BIN)/digest run --config examples/demo.toml
	@echo
	@echo "== the same again: every paper is already seen =="
	$(BIN)/digest run --config examples/demo.toml
	@echo
	@echo "== digest site: the archive as a static HTML site (var/demo/site/) =="
	$(BIN)/digest site --config examples/demo.toml

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run_all.py

bench-site: $(VENV)/.installed-test
	$(BIN)/python bench/site.py

clean:
	rm -rf $(VENV) var archive site build
