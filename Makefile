# Each target creates or refreshes its own virtual environment, so both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip -q --disable-pip-version-check

.PHONY: example test test-fast benchmarks schema clean

# The core plus the fast sampler: enough to fit the embedded example.
$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[fast]'
	touch $@

# Everything the tests exercise. torch 2.13.0 is pinned first because a CPU wheel of it
# ships with the machine image; the extras then find it satisfied.
$(VENV)/.test: $(VENV)/.core
	$(PIP) install 'torch==2.13.0'
	$(PIP) install -e '.[fast,test,tensorboard,wandb,torch,sweep]'
	touch $@

example: $(VENV)/.core
	$(VENV)/bin/scalingfit fit --example --out example-fit

test: $(VENV)/.test
	$(VENV)/bin/python -m pytest -q -n 2

test-fast: $(VENV)/.test
	$(VENV)/bin/python -m pytest -q -m "not slow"

schema: $(VENV)/.core
	$(VENV)/bin/python -m scalingfit.ingest.table > data_schema/canonical_table.schema.json

clean:
	rm -rf $(VENV) example-fit .pytest_cache
