PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The registry mirror config may name local folders that do not exist; pip only warns about them.
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: demo test docs docs-serve screenshots bench bench-site lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-docs: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e '.[docs]'
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

# The documentation site (mkdocs.yml, docs/) in build/docs/; --strict fails on a broken link or page.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# The README's pictures (docs/img/) of the demo's email and site, taken by headless Chromium.
screenshots: demo
	$(BIN)/python docs/tools/screenshots.py

lint: $(VENV)/.installed-test
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run_all.py

bench-site: $(VENV)/.installed-test
	$(BIN)/python bench/site.py

clean:
	rm -rf $(VENV) var archive site build
