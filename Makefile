# The two commands of the README, and their parts. Every target installs first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= runs/demo

.PHONY: install demo test

install:
	bash scripts/install.sh --venv $(VENV)

# The built-in default: the whole search (synthetic data -> supernet -> search -> retrain ->
# final) on synthetic Criteo-shaped data, in one output directory; it prints the report's path.
demo: install
	$(VENV)/bin/nasrec pipeline --config specs/experiments/demo.yaml --output $(DEMO_DIR) --resume

test: install
	$(PY) -m pytest -q
