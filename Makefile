# hens: `make install`, `make test`, `make demo`. Every target installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PIPC   := $(PIP) install -q -c constraints.txt
STAMP  := $(VENV)/.hens-installed
DEMO   ?= demo-out
export OMP_NUM_THREADS ?= 1

.PHONY: install test test-slow demo notebooks bench bench-hens bench-train clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIPC) torch==2.13.0 setuptools setuptools-scm wheel numpy
	# torch-harmonics is source-only; build isolation would fetch a CUDA torch.
	$(PY) -c "import torch_harmonics" 2>/dev/null || \
	    $(PIPC) --no-build-isolation torch-harmonics==0.8.1
	$(PIPC) --no-build-isolation -e ".[test]"
	touch $(STAMP)

test: install
	$(VENV)/bin/pytest -q

test-slow: install
	$(VENV)/bin/pytest -q -m slow

demo: install
	$(VENV)/bin/hens demo --out $(DEMO)

notebooks: install  # executes the notebooks headless on the demo's products
	cd notebooks && HENS_DEMO_DIR=$(abspath $(DEMO)) ../$(VENV)/bin/jupyter execute *.ipynb

# the benchmarks that bring their own data; bench_train.py needs a world and ~35 minutes
bench: install
	for b in crps engine reader sfno store world; do $(PY) benchmarks/bench_$$b.py || exit 1; done
	$(PY) benchmarks/plan_hens.py

# issue 13's headline: 7,424 members generated on 2 ranks and scored (~15 minutes on 2 idle cores)
bench-hens: install
	$(PY) benchmarks/bench_hens.py

bench-train: install
	test -e $(DEMO)/world.zarr || $(VENV)/bin/hens world --out $(DEMO)/world.zarr --grid 32x64 --days 730
	$(PY) benchmarks/bench_train.py --data $(DEMO)/world.zarr --out bench-train

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
