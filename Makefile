# The one entry point for people and CI: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# The approvals inbox's browser test drives Debian's chromium (nothing is downloaded).
	command -v chromium >/dev/null || ( [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium chromium-driver ) || echo "hint: sudo apt-get install chromium chromium-driver (for tests/e2e/test_inbox_browser.py)"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/retailflow demo $(ARGS)

# Two pytest workers, each with its own dev server and simulators, a test file per worker at a
# time: the end-to-end tests mostly wait (outages, retries), so two overlap well on two cores.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .demo var .pytest_cache .mypy_cache .ruff_cache
