# RNN Suite. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NATIVE := layers/native/librnn_suite_ops.so
# Every pipeline package (pipelines/NAME/config.py), named as the registry names it.
PIPELINES := $(subst _,-,$(notdir $(patsubst %/config.py,%,$(wildcard pipelines/*/config.py))))
ARGS ?=
WORKERS ?=
# Test processes (pytest-xdist): one per core by default; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto

.PHONY: help venv test lint format reference record docs docs-serve serve bench-serve bench \
	bench-approaches bench-pipelines clean $(addprefix pipeline-,$(PIPELINES)) \
	$(addprefix tune-,$(PIPELINES)) pipeline-weather pipeline-stock

# Every target has one "## NAME: what it does" line above it; `make help` prints them.
## help: list every target, one line each
help:
	@awk '/^## / { sub(/^## /, ""); name = $$0; sub(/: .*/, "", name); text = $$0; \
		sub(/^[^:]*: /, "", text); printf "make %-18s %s\n", name, text }' $(MAKEFILE_LIST)
	@echo "(NAME: $(PIPELINES); ARGS='--seed 1 ...' passes flags to the command)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# An environment made before the switch to the full tensorflow wheel holds tensorflow-cpu,
	@# which installs the same package: remove it first so the two never overlap.
	@$(BIN)/python -m pip uninstall --quiet --yes tensorflow-cpu 2>/dev/null || true
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

# The native kernels, compiled for this machine; where that fails the layers run
# their XLA kernels (same results), so a failed build does not stop the target.
$(NATIVE): $(STAMP) $(wildcard layers/native/*.cc layers/native/*.h)
	$(BIN)/python -m layers.native

## venv: create .venv, install the project, build the native kernels (targets do it when needed)
venv: $(STAMP) $(NATIVE)

# Static pattern rules: make skips implicit-rule search for .PHONY targets.
## pipeline-NAME: run pipeline NAME with --preset default on its built-in data
$(addprefix pipeline-,$(PIPELINES)): pipeline-%: $(STAMP) $(NATIVE)
	$(BIN)/python -m pipelines run $* --preset default $(ARGS)

## tune-NAME: the same, with a Keras Tuner search first; WORKERS=N adds N local tuner workers
$(addprefix tune-,$(PIPELINES)): tune-%: $(STAMP) $(NATIVE)
	$(BIN)/python -m pipelines run $* --preset default --tune $(if $(WORKERS),--tune-workers $(WORKERS)) $(ARGS)

# Forecasting on each of its built-in data sets.
## pipeline-weather: forecasting on the built-in Seattle weather
## pipeline-stock: forecasting on the built-in stock prices
pipeline-weather pipeline-stock: pipeline-%: $(STAMP) $(NATIVE)
	$(BIN)/python -m pipelines run forecasting --preset default --data builtin:$* $(ARGS)

# pytest exits 5 when it collects nothing; that is not a failure of the suite.
## test: the test suite, one process per core (ARGS: pytest's arguments; TEST_WORKERS=N)
test: $(STAMP) $(NATIVE)
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) $(ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

## lint: ruff check and format check
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## format: ruff format and fix
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: recurrent-layer benchmark into bench/results.json
bench: $(STAMP) $(NATIVE)
	$(BIN)/python -m bench

## bench-approaches: each way to speed up an LSTM, one process each (bench/approaches.json)
bench-approaches: $(STAMP) $(NATIVE)
	$(BIN)/python -m bench.approaches

## bench-pipelines: each pipeline, fast path against plain cell (bench/pipelines.json)
bench-pipelines: $(STAMP) $(NATIVE)
	$(BIN)/python -m bench.pipelines

## bench-serve: the model server on loopback against in-process calls (bench/serve.json)
bench-serve: $(STAMP) $(NATIVE)
	$(BIN)/python -m bench.serve

# Serve the models published into MODELS (python -m pipelines publish RUN MODELS).
MODELS ?= models
## serve: serve the models published into MODELS=models (REST 8501, gRPC 8500)
serve: $(STAMP) $(NATIVE)
	$(BIN)/python -m pipelines serve $(MODELS) $(ARGS)

## reference: regenerate docs/reference/ and the generated blocks of docs/ and README.md
reference: $(STAMP)
	$(BIN)/python -m pipelines.reference

# A finished run's metrics into docs/results/PIPELINE[-LABEL].json, then the pages again.
RUN ?=
LABEL ?=
EVALUATION ?=
## record: RUN='runs/a runs/b' [LABEL=...] [EVALUATION=...]: record finished runs (one per seed) for the docs
record: $(STAMP)
	@test -n "$(RUN)" || { echo "error: give RUN=runs/NAME/latest" >&2; exit 2; }
	$(BIN)/python -m pipelines.reference record $(RUN) $(if $(LABEL),--label $(LABEL)) \
		$(if $(EVALUATION),--evaluation $(EVALUATION))

## docs: regenerate the generated pages, then build the site into build/site (strict)
docs: reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## docs-serve: preview the site at http://127.0.0.1:8000, rebuilt on every change
docs-serve: reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

## clean: remove runs, caches, the built site and the native kernels
clean:
	rm -rf runs .pytest_cache .ruff_cache build/site $(NATIVE)
