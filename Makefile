# agent-exporter: `make run` serves on an embedded SQLite store, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= data/agent-exporter.db
PORT   ?= 9477

.PHONY: help install run demo test lint typecheck pytest clean

help:
	@echo "make run    serve on 127.0.0.1:$(PORT) with the SQLite store $(DB)"
	@echo "make test   lint, type-check and run the test suite"
	@echo "make demo   serve as make run and send demo traffic (DEMO_ARGS=\"--incident failure-spike:start=300\")"

$(STAMP): exporter/pyproject.toml exporter/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c exporter/constraints.txt -e "exporter[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/agent-exporter serve --port $(PORT) --database-url sqlite:///$(DB)

# the exporter and realistic agent traffic together; Ctrl-C flushes the traffic and stops both
demo: install
	$(BIN)/agent-exporter demo --serve --url http://127.0.0.1:$(PORT) --database-url sqlite:///$(DB) $(DEMO_ARGS)

lint: install
	$(BIN)/ruff check exporter
	$(BIN)/ruff format --check exporter

typecheck: install
	cd exporter && ../$(BIN)/mypy

pytest: install
	cd exporter && ../$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) data exporter/.pytest_cache exporter/.mypy_cache exporter/.ruff_cache
