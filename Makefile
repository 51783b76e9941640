# agent-exporter: `make run` serves on an embedded SQLite store, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= data/agent-exporter.db
PORT   ?= 9477

.PHONY: help install run test lint typecheck pytest clean soak

help:
	@echo "make run    serve on 127.0.0.1:$(PORT) with the SQLite store $(DB)"
	@echo "make test   lint, type-check and run the test suite"
	@echo "make soak   minutes of steady load on SQLite and PostgreSQL (SOAK_SECONDS, SOAK_RATE)"

$(STAMP): exporter/pyproject.toml exporter/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c exporter/constraints.txt -e "exporter[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/agent-exporter serve --port $(PORT) --database-url sqlite:///$(DB)

lint: install
	$(BIN)/ruff check exporter
	$(BIN)/ruff format --check exporter

typecheck: install
	cd exporter && ../$(BIN)/mypy

pytest: install
	cd exporter && ../$(BIN)/pytest

test: lint typecheck pytest

SOAK_SECONDS ?= 300
SOAK_RATE    ?= 50
soak: install
	cd exporter && SOAK_SECONDS=$(SOAK_SECONDS) SOAK_RATE=$(SOAK_RATE) ../$(BIN)/pytest -m soak -s -p no:cacheprovider

clean:
	rm -rf $(VENV) data exporter/.pytest_cache exporter/.mypy_cache exporter/.ruff_cache
