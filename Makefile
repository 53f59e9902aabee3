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

.PHONY: help book book-build test notebooks unit nbval fashion browser clean bench figures lint lock

help:
	@echo "make book   build the HTML book into _build/html, running every chapter on digits, while"
	@echo "            the same chapters run on clothes beside it (the claims page comes from both runs)"
	@echo "make test   unit tests, every notebook under nbval on digits and on clothes (both at once), the book with -W,"
	@echo "            then a browser over it"
	@echo "make lint   actionlint over the workflows; ruff format --check and ruff check over the code and notebooks"
	@echo "make bench  notebook times and memory, data-load and fit-loop timings"
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
notebooks: $(STAMP) $(FASHION)
	OMP_NUM_THREADS=1 $(MAKE) --no-print-directory -j2 -O nbval fashion

test: lint unit
	$(MAKE) --no-print-directory notebooks
	$(MAKE) --no-print-directory book-build browser

# BENCH="--cold-only" times each chapter once, cold, and writes the cost line under its title.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH)

figures: $(STAMP)
	$(BIN)/python scripts/draw_figures.py

clean:
	rm -rf _build .cache
