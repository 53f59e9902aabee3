# Two commands for a fresh clone: `make book` and `make test`. Both create the
# virtual environment from python3 and install requirements.txt when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help book test unit nbval build-book clean bench figures

help:
	@echo "make book   build the HTML book into _build/html (executes every chapter)"
	@echo "make test   unit tests, every notebook under nbval, then the book build with -W"
	@echo "make bench  notebook times and memory, data-load and fit-loop timings"
	@echo "make clean  drop the build output and the model cache"

# Reinstall when the requirements change; the stamp records a finished install.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@test -f _build/html/index.html && echo "book: _build/html/index.html"

unit: $(STAMP)
	$(BIN)/python -m pytest tests

nbval: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env chapters

test: unit nbval book

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

figures: $(STAMP)
	$(BIN)/python scripts/draw_figures.py

clean:
	rm -rf _build .cache
