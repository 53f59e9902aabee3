# Two commands for a fresh clone: `make book` and `make test`. Both create the
# virtual environment from python3 and install requirements.txt when needed, and
# install Debian's dataset-fashion-mnist (the second dataset, read offline);
# `make test` also installs what the browser test needs (Debian's chromium and
# the npm packages in tests/browser).
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
# Exact versions from a green run: CI installs these, so a new release upstream cannot turn
# main red. `make test LOCK=` installs the newest releases the ranges allow instead (the
# weekly drift workflow); `make lock` rewrites the file from the current environment.
LOCK     ?= requirements-lock.txt
LINTED   := src tests benchmarks scripts _ext chapters
CHROMIUM ?= /usr/bin/chromium
NODE_DEPS := tests/browser/node_modules/.package-lock.json
FASHION  := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export CHROMIUM

.PHONY: help book book-build test notebooks unit nbval fashion standin standin-reference \
	standin-run after-notebooks browser clean bench figures lint lock gpu-check

help:
	@echo "make book   build the HTML book into _build/html, running every chapter on digits, while"
	@echo "            the same chapters run on clothes beside it (the claims page comes from both runs)"
	@echo "make test   unit tests, every notebook under nbval on digits and on clothes (both at once), the book with -W,"
	@echo "            then a browser over it"
	@echo "make lint   actionlint over the workflows; ruff format --check and ruff check over the code and notebooks"
	@echo "make bench  notebook times and memory, data-load and fit-loop timings"
	@echo "make gpu-check  on a machine with a CUDA GPU: the device tests and every chapter"
	@echo "            cold on it, diffed against the CPU's claims (benchmarks/gpu-check.md)"
	@echo "make clean  drop the build output and the model cache"

# Reinstall when the requirements change; the stamp records a finished install.
$(STAMP): requirements.txt pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt $(if $(LOCK),-c $(LOCK))
	touch $(STAMP)

lock: $(STAMP)
	@echo "# Exact versions of a green run (make lock); make installs requirements.txt under them." > $(LOCK)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^#' >> $(LOCK)

# The workflows (actionlint) and one code style (ruff, line length 88) for the package,
# the tests and the notebooks alike.
lint: $(STAMP)
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/ruff check $(LINTED)

# A clean, complete build: no page left over from an older build, none skipped as unchanged.
# The build executes every chapter on the default digits, where every claim is enforced,
# while the clothes' pass runs beside it (one thread each, as in make test); then a second,
# incremental build rereads only the claims page, now that both runs have left their records.
book: $(STAMP) $(FASHION)
	OMP_NUM_THREADS=1 $(MAKE) --no-print-directory -j2 -O book-build fashion
	env -u AEBOOK_DATA $(BIN)/jupyter-book build . --warningiserror --keep-going

# The build alone, for when the clothes' run has just been made (make test).
book-build: $(STAMP)
	rm -rf _build/html
	env -u AEBOOK_DATA $(BIN)/jupyter-book build . --all --warningiserror --keep-going
	@test -f _build/html/index.html && echo "book: _build/html/index.html"

$(FASHION):
	@echo "installing Debian's dataset-fashion-mnist (Fashion-MNIST, read offline by load_data)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq dataset-fashion-mnist

unit: $(STAMP) $(FASHION)
	$(BIN)/python -m pytest tests --ignore=tests/browser

# Every chapter on the default digits: a claim that does not hold fails the run.
nbval: $(STAMP)
	env -u AEBOOK_DATA $(BIN)/python -m pytest --nbval-lax --nbval-current-env chapters

# Every chapter on clothes (fashion5k), to the end: claims are reported, not enforced, and
# recorded for the claims page. Any exception still fails the run.
fashion: $(STAMP) $(FASHION)
	sleep $(STAGGER)
	AEBOOK_DATA=fashion5k $(BIN)/python -m pytest --nbval-lax --nbval-current-env chapters

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser test"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

$(NODE_DEPS): tests/browser/package.json tests/browser/package-lock.json
	command -v npm >/dev/null || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm)
	cd tests/browser && npm ci --no-audit --no-fund

browser: $(STAMP) $(CHROMIUM) $(NODE_DEPS)
	$(BIN)/python -m pytest tests/browser

# Both notebook passes at once, one thread each: on two cores that trains more per second than one
# pass after the other with two threads each (a two-thread epoch is only 1.1 to 1.3 times faster).
# -O keeps each pass's output together.
# STAGGER starts the second a few seconds after the first: their first kernels once
# started in the same second and one died at start (chapters/conftest.py retries that).
STAGGER ?= 0
notebooks: $(STAMP) $(FASHION)
	OMP_NUM_THREADS=1 $(MAKE) --no-print-directory -j2 -O nbval fashion STAGGER=10

# The chapters' analysis once more on the stand-in GPU (tests/standin.py: a device that
# computes on the CPU bit for bit and fails where CUDA fails), as `auto` picks CUDA on a
# GPU runtime: with the models the CPU pass trained (its own cache folder links to
# them), every claim must hold or fail as in the CPU pass, with the same values (timing
# claims aside). An IPython startup file registers the device in each kernel. Chapter
# 10 pins the CPU, so it is not run again. The CPU pass's records are copied first
# (standin-reference): the book build may rewrite them while this runs.
CACHE          := $(if $(AEBOOK_CACHE),$(abspath $(AEBOOK_CACHE)),$(CURDIR)/.cache)
STANDIN_CACHE  := $(CACHE)/standin
STANDIN_REF    := $(CACHE)/claims-cpu
STANDIN_SKIP   := 10_sparse_dictionaries
STANDIN_IPY    := $(STANDIN_CACHE)/ipython/profile_default/startup
standin:
	$(MAKE) --no-print-directory standin-reference
	$(MAKE) --no-print-directory standin-run

standin-reference:
	test -d $(CACHE)/claims/mnist5k || (echo "no CPU records: run make nbval first" && false)
	rm -rf $(STANDIN_REF) && cp -r $(CACHE)/claims $(STANDIN_REF)

standin-run: $(STAMP)
	sleep $(STAGGER)
	rm -rf $(STANDIN_CACHE) && mkdir -p $(STANDIN_IPY)
	ln -s $(CACHE)/models $(STANDIN_CACHE)/models
	ln -s $(CACHE)/data $(STANDIN_CACHE)/data
	printf 'import sys\nsys.path.insert(0, "%s/tests")\nimport standin\n' "$(CURDIR)" \
		> $(STANDIN_IPY)/00-standin.py
	env -u AEBOOK_DATA OMP_NUM_THREADS=1 IPYTHONDIR=$(STANDIN_CACHE)/ipython \
		AEBOOK_CACHE=$(STANDIN_CACHE) AEBOOK_DEVICE=standin \
		$(BIN)/python -m pytest --nbval-lax --nbval-current-env \
		$(filter-out chapters/$(STANDIN_SKIP).ipynb,$(wildcard chapters/*.ipynb))
	$(BIN)/python scripts/compare_claims.py $(STANDIN_REF) $(STANDIN_CACHE)/claims --exact \
		--skip $(STANDIN_SKIP)

# After both notebook passes: the book build (digits, CPU) and the stand-in pass side by
# side, one thread each; both load the models the digits pass trained.
after-notebooks: $(STAMP)
	$(MAKE) --no-print-directory standin-reference
	OMP_NUM_THREADS=1 $(MAKE) --no-print-directory -j2 -O book-build standin-run STAGGER=10

test: lint unit
	$(MAKE) --no-print-directory notebooks
	$(MAKE) --no-print-directory after-notebooks
	$(MAKE) --no-print-directory browser

# On a machine with a CUDA GPU (the device tool lends one to some sessions): torch, CUDA,
# the GPU and its determinism flags; the device tests on CUDA; every chapter cold on the
# digits with AEBOOK_DEVICE=cuda in a fresh cache; their times and claims against the
# CPU records, in benchmarks/gpu-check.md (GPU_CHECK="--chapters 01 02" runs some, to
# keep one call within a lent machine's ten minutes). No GPU has run it yet.
# It uses the machine's own python3 and torch (GPU_PYTHON), with this package on its
# path: a lent GPU machine has no network for make's install.
GPU_PYTHON ?= python3
gpu-check:
	PYTHONPATH=$(CURDIR)/src $(GPU_PYTHON) benchmarks/gpu_check.py $(GPU_CHECK)

# BENCH="--cold-only" times each chapter once, cold, and writes the cost line under its title.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH)

figures: $(STAMP)
	$(BIN)/python scripts/draw_figures.py

clean:
	rm -rf _build .cache
