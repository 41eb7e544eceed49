# Two commands for a new user: `make demo` (the main job) and `make test` (the tests).
# Both create .venv on first use and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint format typecheck clean gpu-wheels

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/tir demo

test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

# Wheels for the lent GPU machine (Python 3.12, x86-64), which lacks some of the dependencies:
# see benchmarks/gpu_wheels.txt and benchmarks/gpu_check.sh.
gpu-wheels: $(STAMP)
	rm -rf .whl  # a version left from an older list would be installed twice there
	$(BIN)/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d .whl -r benchmarks/gpu_wheels.txt

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
