# One task runner for people, the README and CI.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit fuzz serve bench bench-flows messages screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/outbound demo

serve: $(STAMP)
	$(BIN)/outbound serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

# Browser tests run in a process of their own: Playwright's synchronous API keeps an event loop
# running in the main thread until the session ends, which the asynchronous tests cannot share.
test: lint typecheck
	$(BIN)/pytest -q --ignore=tests/browser
	$(BIN)/pytest -q tests/browser

# The schema fuzzing of `make test`, with more examples per operation (and another seed if set).
fuzz: $(STAMP)
	OUTBOUND_FUZZ_EXAMPLES=$${OUTBOUND_FUZZ_EXAMPLES:-100} $(BIN)/pytest tests/fuzz -q

bench: $(STAMP)
	$(BIN)/python -m bench

bench-flows: $(STAMP)
	$(BIN)/python -m bench.flows

# The console's pictures in docs/screenshots, taken by the browser tests (look at each).
screenshots: $(STAMP)
	OUTBOUND_UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q tests/browser

# The console's strings: extract them, then add the new ones to each catalog (translate them
# in src/outbound/console/locale/*/LC_MESSAGES/messages.po; a test fails while one is missing).
LOCALE := src/outbound/console/locale
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output \
		--project outbound -o $(LOCALE)/messages.pot .
	$(BIN)/pybabel update -N -i $(LOCALE)/messages.pot -d $(LOCALE) --no-wrap

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
