# The README's two commands are `make demo` and `make test`; both run `make setup` first.
PY := .venv/bin/python

.PHONY: setup demo lint test bench clean

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/capture-agent demo

# ruff and mypy as configured in pyproject.toml; `make test` runs it first, so a lint failure fails the run.
lint: setup
	$(PY) -m ruff check . && $(PY) -m mypy

# The 25 slowest tests are listed at the end: the whole run must stay under 20 minutes on 2 cores.
test: setup lint
	$(PY) -m pytest -q --durations=25

bench: setup
	$(PY) -m bench

clean:
	rm -rf .venv models bench-results.json .pytest_cache .hypothesis .mypy_cache .ruff_cache
