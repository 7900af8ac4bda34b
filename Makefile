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

.PHONY: help venv test lint format reference serve bench-serve bench bench-approaches bench-pipelines clean $(addprefix pipeline-,$(PIPELINES)) $(addprefix tune-,$(PIPELINES)) \
	pipeline-weather pipeline-stock

help:
	@echo "make pipeline-NAME   run a pipeline on its built-in data (NAME: $(PIPELINES)); ARGS='--seed 1 ...'"
	@echo "make tune-NAME       the same, with a Keras Tuner search first; WORKERS=N: a chief oracle and N local tuner workers"
	@echo "make pipeline-weather | pipeline-stock   forecasting on its built-in weather or stock data"
	@echo "make test            the test suite"
	@echo "make bench           recurrent-layer benchmark (bench/results.json)"
	@echo "make bench-approaches each way to speed up an LSTM, one process each (bench/approaches.json)"
	@echo "make bench-pipelines each pipeline, fast path against plain cell (bench/pipelines.json)"
	@echo "make bench-serve     the model server on loopback against in-process calls (bench/serve.json)"
	@echo "make serve           serve the models published into MODELS=models (REST 8501, gRPC 8500); ARGS='--rest-port ...'"
	@echo "make reference       docs/reference/NAME.md from each pipeline's declared settings, data sources and search space"
	@echo "make lint | format   ruff"
	@echo "make venv            create $(VENV), install the project, build the native kernels (the targets above do it when needed)"

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

venv: $(STAMP) $(NATIVE)

# Static pattern rules: make skips implicit-rule search for .PHONY targets.
$(addprefix pipeline-,$(PIPELINES)): pipeline-%: $(STAMP) $(NATIVE)
	$(BIN)/python -m pipelines run $* --preset default $(ARGS)

$(addprefix tune-,$(PIPELINES)): tune-%: $(STAMP) $(NATIVE)
	$(BIN)/python -m pipelines run $* --preset default --tune $(if $(WORKERS),--tune-workers $(WORKERS)) $(ARGS)

# Forecasting on each of its built-in data sets.
pipeline-weather pipeline-stock: pipeline-%: $(STAMP) $(NATIVE)
	$(BIN)/python -m pipelines run forecasting --preset default --data builtin:$* $(ARGS)

# pytest exits 5 when it collects nothing; that is not a failure of the suite.
test: $(STAMP) $(NATIVE)
	@$(BIN)/python -m pytest $(ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) $(NATIVE)
	$(BIN)/python -m bench

bench-approaches: $(STAMP) $(NATIVE)
	$(BIN)/python -m bench.approaches

bench-pipelines: $(STAMP) $(NATIVE)
	$(BIN)/python -m bench.pipelines

bench-serve: $(STAMP) $(NATIVE)
	$(BIN)/python -m bench.serve

# Serve the models published into MODELS (python -m pipelines publish RUN MODELS).
MODELS ?= models
serve: $(STAMP) $(NATIVE)
	$(BIN)/python -m pipelines serve $(MODELS) $(ARGS)

reference: $(STAMP)
	$(BIN)/python -m pipelines.reference

clean:
	rm -rf runs .pytest_cache .ruff_cache $(NATIVE)
