# Two commands for a fresh machine (see README.md):
#   make run    set everything up, then start Flowork (tray app with a display, headless engine without)
#   make test   set everything up, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.flowork-installed

.PHONY: run test venv system-deps bench bench-quick dist clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Flowork needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[desktop,test,build]'
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/flowork

system-deps:
	@bash scripts/install-system-deps.sh

test: $(STAMP) system-deps
	$(PY) -m pytest

# Benchmarks against same-run baselines (bench/RESULTS.md); bench-quick: small counts, as CI runs them.
bench: $(STAMP)
	$(PY) -m bench.run

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick

clean:
	rm -rf $(VENV) build dist .pytest_cache
