# Each target creates or refreshes its own virtual environment, so both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip -q --disable-pip-version-check

.PHONY: example test test-fast test-statistical schema clean

# The core plus the fast sampler: enough to fit the embedded example.
$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[fast]'
	touch $@

# Everything the tests exercise. torch and torchvision are pinned first, as a pair the
# machine image holds for Python 3.11 (torch a CUDA build, which also runs on the CPU; the
# image's CPU build of torch 2.13.0 has no torchvision that imports beside it). The extras
# then find them satisfied.
$(VENV)/.test: $(VENV)/.core
	$(PIP) install 'torch==2.14.1' 'torchvision==0.29.1'
	$(PIP) install -e '.[fast,test,tensorboard,wandb,torch,sweep,mlflow,huggingface,lightning]'
	touch $@

example: $(VENV)/.core
	$(VENV)/bin/scalingfit fit --example --out example-fit

# CI's suite; the recoveries of known exponents at full sampling (marked statistical,
# minutes each) run with `make test-statistical`, beside the benchmarks.
test: $(VENV)/.test
	$(VENV)/bin/python -m pytest -q -n 2 -m "not statistical"

test-statistical: $(VENV)/.test
	$(VENV)/bin/python -m pytest -q -m statistical

test-fast: $(VENV)/.test
	$(VENV)/bin/python -m pytest -q -m "not slow and not statistical"

schema: $(VENV)/.core
	$(VENV)/bin/python -m scalingfit.ingest.table > data_schema/canonical_table.schema.json

clean:
	rm -rf $(VENV) example-fit .pytest_cache
