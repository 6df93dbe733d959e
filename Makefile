# aicodec developer commands. `make setup` installs and runs the main job; `make test` tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup install run test test-fast bench lint docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,torch,postgres,ray]'
	touch $(STAMP)

## install the lab into .venv and run the main job on the built-in clip
setup: install run

install: $(STAMP)

## the main job on the built-in default clip
ITERATIONS ?= 20
run: $(STAMP)
	$(BIN)/aicodec evolve --iterations $(ITERATIONS)

## the whole test suite, slow tests included (what CI runs)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

## the fast lane for the edit-test loop (under 2 minutes on 2 cores): every test but those
## marked slow (real evolves and ladders, Ray, PostgreSQL, a browser, many sandbox runs)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS)

## benchmarks: printed figures, not tests (SEEDS_ARGS="--seeds hybrid --clips builtin" for a subset;
## HYBRID_SPEED_ARGS="--base REV --frames 10" for the hybrid's old-against-new speed table;
## HYBRID_TOOLS_ARGS="--set NAME=VALUE --base NAME=VALUE" for the A/B of one coding tool)
SEEDS_ARGS ?=
HYBRID_SPEED_ARGS ?=
HYBRID_TOOLS_ARGS ?= --base intra_modes=10 --base intra_mpm=0 --base adapt_chunk=0
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_sandbox.py
	$(BIN)/python benchmarks/bench_seeds.py $(SEEDS_ARGS)
	$(BIN)/python benchmarks/bench_hybrid_speed.py $(HYBRID_SPEED_ARGS)
	$(BIN)/python benchmarks/bench_hybrid_tools.py $(HYBRID_TOOLS_ARGS)
	$(BIN)/python benchmarks/bench_ray.py
	$(BIN)/python benchmarks/bench_report.py

## docs/commands.md, the command reference, from the CLI's own --help (a test checks it)
docs: $(STAMP)
	$(BIN)/python -m aicodec.cli_reference docs/commands.md

## ruff (rules and format) over the code, the seed codecs in baselines/ included;
## mypy over src/ (pyproject's [tool.mypy]): no errors, no unused ignores
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks baselines
	$(BIN)/ruff format --check src tests benchmarks baselines
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
