# The README's two commands are `make demo` and `make test`; both run `make setup` first.
PY := .venv/bin/python

.PHONY: setup demo test bench clean

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/capture-agent demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m bench

clean:
	rm -rf .venv models bench-results.json .pytest_cache .hypothesis
