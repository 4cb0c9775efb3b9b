# Two commands for a fresh machine: `make demo` (train + evaluate on synthetic data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SLNL_SHARED_DATA ?= $(abspath ../shared/data)
export SLNL_SHARED_DATA

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

demo: install
	$(PY) -m slnl_jax.main --config=configs/demo.py --workdir=workdirs/demo

lint: install
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q -n 2 --dist loadfile tests

clean:
	rm -rf $(VENV) workdirs .pytest_cache
