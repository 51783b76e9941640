# agent-exporter: `make run` serves on an embedded SQLite store, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= data/agent-exporter.db
PORT   ?= 9477

.PHONY: help install run demo test lint typecheck pytest bench clean generate stack soak screenshots mutate

help:
	@echo "make run    serve on 127.0.0.1:$(PORT) with the SQLite store $(DB)"
	@echo "make test   lint (ruff, import-linter), type-check and run the test suite"
	@echo "make demo   serve as make run and send demo traffic (DEMO_ARGS=\"--incident failure-spike:start=300\")"
	@echo "make bench  measure ingest, scrape, reads, memory, the client and a soak; writes docs/BENCHMARKS.md (~40 min)"
	@echo "make generate  render rules, alerts and dashboards from alerts/config.yaml"
	@echo "make stack  exporter, Prometheus and Alertmanager on 127.0.0.1 (ports: PORT, PROM_PORT, AM_PORT)"
	@echo "make soak   minutes of steady load on SQLite and PostgreSQL (SOAK_SECONDS, SOAK_RATE)"
	@echo "make mutate mutation testing of the core modules with mutmut, kill rate per module (MODULES=\"pricing analytics\")"
	@echo "make screenshots  a PNG of each web page, light and dark, desktop and phone, into docs/images/"

$(STAMP): exporter/pyproject.toml exporter/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c exporter/constraints.txt -e "exporter[dev]"
	@touch $(STAMP)

install: $(STAMP)

# a local SQLite file has one writer: migrating it here is safe (serve itself migrates only an empty
# database, so that replicas on one PostgreSQL never race to migrate)
run: install
	$(BIN)/agent-exporter db upgrade --database-url sqlite:///$(DB)
	$(BIN)/agent-exporter serve --port $(PORT) --database-url sqlite:///$(DB)

# the exporter and realistic agent traffic together; Ctrl-C flushes the traffic and stops both
demo: install
	$(BIN)/agent-exporter db upgrade --database-url sqlite:///$(DB)
	$(BIN)/agent-exporter demo --serve --url http://127.0.0.1:$(PORT) --database-url sqlite:///$(DB) $(DEMO_ARGS)

lint: install
	$(BIN)/ruff check exporter
	$(BIN)/ruff format --check exporter
	cd exporter && ../$(BIN)/lint-imports

typecheck: install
	cd exporter && ../$(BIN)/mypy

pytest: install
	cd exporter && ../$(BIN)/pytest

test: lint typecheck pytest

bench: install
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	cd exporter && ../$(BIN)/python -m bench $(BENCH_ARGS)

generate: install
	$(BIN)/python -m agent_exporter.mixin generate

PROM_PORT ?= 9090
AM_PORT   ?= 9093
stack: install
	$(BIN)/python -m agent_exporter.demo.stack --exporter-port $(PORT) --prometheus-port $(PROM_PORT) \
		--alertmanager-port $(AM_PORT) $(if $(STACK_DB),--database-url $(STACK_DB))

SOAK_SECONDS ?= 300
SOAK_RATE    ?= 50
soak: install
	cd exporter && SOAK_SECONDS=$(SOAK_SECONDS) SOAK_RATE=$(SOAK_RATE) ../$(BIN)/pytest -m soak -s -p no:cacheprovider

# the web pages in Debian's Chromium (apt-get install chromium), fed the shared dataset and demo traffic
screenshots: install
	cd exporter && ../$(BIN)/python -m tests.web_screenshots

# mutation testing (docs/quality.md): mutmut mutates the core modules and runs the fast unit tests that
# reach each mutant; not part of make test (26.5 minutes for all seven on 2 cores at load 2-4: MODULES splits
# it). mutants/ is made afresh: mutmut does not refresh the copies of modules it does not mutate.
MODULES     ?= record fields pricing metrics ingest analytics reports
MUTATE_JOBS ?= 2
mutate: install
	rm -rf exporter/mutants
	cd exporter && nice -n 15 ../$(BIN)/mutmut run --max-children $(MUTATE_JOBS) $(foreach m,$(MODULES),'agent_exporter.$(m).*')
	cd exporter && ../$(BIN)/python -m tests.mutation_summary $(MODULES)

clean:
	rm -rf $(VENV) data exporter/mutants exporter/.pytest_cache exporter/.mypy_cache exporter/.ruff_cache
