# Two commands for a fresh machine: `make demo` (train + evaluate on synthetic data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SLNL_SHARED_DATA ?= $(abspath ../shared/data)
export SLNL_SHARED_DATA

.PHONY: install demo test lint results clean

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
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -q -rs -n 2 --dist loadfile tests

# docs/results.md: every study on real MSR Action3D (about 5 hours on 2 CPU cores from scratch; resumable), then
# the page from the reports. 60 epochs is the preset's earlier budget, at which Tables 3-5 were run.
ABLATE := $(PY) tools/ablate.py --config=configs/msr_action3d_cpu.py
EPOCHS_60 := --config.train.num_epochs=60 --config.train.lr_decay=0.96
results: install
	$(ABLATE) --study=baseline --seeds=3 --workdir=workdirs/ablate_msr90 --report_dir=docs/results/target
	$(ABLATE) $(EPOCHS_60) --study=all --seeds=3 --workdir=workdirs/ablate_msr60 --report_dir=docs/results/tables_seed3
	$(ABLATE) $(EPOCHS_60) --config.dataset.center_channels=3 --study=baseline --seeds=3 \
	  --workdir=workdirs/ablate_msr60_center --report_dir=docs/results/centered
	$(ABLATE) --config.train.num_epochs=15 --config.train.lr_decay=0.9 --config.train.eval_every_epochs=3 \
	  --study=all --seeds=3 --workdir=workdirs/ablate_msr --report_dir=docs/results/budget15
	$(PY) tools/results_page.py --intro=docs/results_intro.md --out=docs/results.md --target_top1=85 \
	  --section="The preset (90 epochs): full model vs Baseline1=docs/results/target" \
	  --section="Tables 3-5 at 60 epochs (lr decay 0.96), 3 seeds=docs/results/tables_seed3" \
	  --section="The 60-epoch budget with each clip centred=docs/results/centered" \
	  --section="Tables 3-5 at 15 epochs (lr decay 0.9), 3 seeds=docs/results/budget15"

clean:
	rm -rf $(VENV) workdirs .pytest_cache
