# Two commands for a newcomer: `make run` (the demo on examples/) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Most tests wait on servers, subprocesses and sleeps rather than the CPU: four pytest
# workers finish the suite in about half the time on two cores (TEST_WORKERS=0: one process).
TEST_WORKERS ?= 4

.PHONY: run test lint test-slow bench install clean-demo

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

# The demo: the example feeds and PDFs into the embedded SQLite store with the
# offline enricher, whatever .env says, then the table of what was enriched.
run: $(VENV)/.installed
	SOURCES_BACKEND=sqlite ENRICHER=local RSS_WINDOW_DAYS=0 \
	RSS_FEEDS="$$(ls examples/feeds/*.xml | paste -sd, -)" PDF_DIR=examples/pdfs \
	./pipeline_enhanced.sh
	SOURCES_BACKEND=sqlite $(PY) -m knowledge_pipeline list

test: $(VENV)/.dev-installed lint
	$(PY) -m pytest -q -m "not slow" $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS)) $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check --select F --quiet knowledge_pipeline tests benchmarks *.py

test-slow: $(VENV)/.dev-installed
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	$(PY) benchmarks/bench_parallel.py

clean-demo:
	rm -rf data/*.db data/*.db-wal data/*.db-shm data/*.db.lock logs/pipeline.jsonl*
