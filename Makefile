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
# Two pytest processes (pytest-xdist), a test file each at a time: the suite is mostly one core
# of Python, so the second core cut it by ~40 % when it came in (1,329 tests: 613-627 s against
# 1,054.8 s in one process); at 031df87, 3,398 tests took 1,065 s here and 1,166 s on CI, of its 1,200.
# Files are handed out in collection order (--no-loadscope-reorder), which tests/conftest.py sorts
# with the files of most `slow` tests first: xdist's own order (most tests first) left one-test files
# of minutes (the sim rig's run, the demo) to the end with the other process idle.
test: setup lint
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=25

bench: setup
	$(PY) -m bench

clean:
	rm -rf .venv models bench-results.json .pytest_cache .hypothesis .mypy_cache .ruff_cache
