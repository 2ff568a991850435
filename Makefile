# The two commands of the README, and their parts. Every target installs first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= runs/demo

.PHONY: install demo test

install:
	bash scripts/install.sh --venv $(VENV)

# The built-in default: synthetic Criteo-shaped data, then a small model trained on it.
demo: install
	$(VENV)/bin/nasrec synth --like criteo --rows 200000 --output $(DEMO_DIR)/data --overwrite
	$(VENV)/bin/nasrec train --data $(DEMO_DIR)/data --arch specs/architectures/simple.json \
		--output $(DEMO_DIR)/train --batch-size 256
	@echo "results: $(DEMO_DIR)/train/results.json"

test: install
	$(PY) -m pytest -q
