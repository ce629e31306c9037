# fashionlab: every command sets itself up from nothing (a fresh clone needs only python3 >= 3.10 and make).
#   make lab         set up, then open the notebooks in JupyterLab
#   make test        set up, run the unit tests, execute every notebook in quick mode, grade-check (what CI runs)
#   make test-full   the heavy tests: the full-mode one-step runs of every experiment but the triplet baseline (minutes)
#   make student     the student edition of the notebooks (nbgrader) in course/release/
#   make grade SUBMITTED=DIR   autograde DIR/<student>/<notebook>/<notebook>.ipynb into course/grades.csv
#   make reproduce   set up, run every registered experiment in default mode into results/
#   make notebooks   re-execute the notebooks in default mode, in place (the outputs that get committed)
#   make gpu-check   on a CUDA machine: the GPU tests, one short full-mode experiment per paper, images/s per model
#   make book        the course website in _build/book from the committed notebooks (never executed), README, docs/
#   make browser-check  Chromium (apt-get installs Debian's when missing) checks the built site and notebook 04's
#                    widget in JupyterLab (quick mode); screenshots in _build/browser-check (docs/book.md)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fashionlab-installed
MODE   ?= default
BOOK   := _build/book

.PHONY: setup lab test test-full unit nbtest grade-check student grade reproduce notebooks bench gpu-check clean-data \
        book browser-check

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,book,browser]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab notebooks/

unit: setup
	$(BIN)/python -m pytest -q -m "not heavy" tests

# the heavy tests: every experiment's full-mode code path end to end for one step (about 10-20 min of CPU)
test-full: setup
	$(BIN)/python -m pytest -q -m heavy tests

nbtest: setup
	FASHIONLAB_MODE=quick FASHIONLAB_STRICT_EXERCISES=1 $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env notebooks/

grade-check: setup
	$(BIN)/python -m fashionlab.course grade-check

test: unit nbtest grade-check

student: setup
	$(BIN)/python -m fashionlab.course student

grade: setup
	@test -n "$(SUBMITTED)" || { echo "usage: make grade SUBMITTED=folder/of/<student>/<notebook>/<notebook>.ipynb"; exit 2; }
	$(BIN)/python -m fashionlab.course grade "$(SUBMITTED)"

reproduce: setup
	$(BIN)/fashionlab reproduce all --mode $(MODE)

notebooks: setup
	FASHIONLAB_MODE=default $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=3600 notebooks/*.ipynb
	$(BIN)/python -m fashionlab.nbtools notebooks/*.ipynb

bench: setup
	$(BIN)/python benchmarks/bench_map.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_streaming.py

gpu-check: setup
	$(BIN)/python benchmarks/gpu_check.py

# Sphinx + MyST-NB over README.md, docs/, data/README.md and the notebooks (book/conf.py, fashionlab/book.py); any
# warning (a broken cross-reference, a missing image) fails it, then every link of the built site is checked
book: setup
	rm -rf $(BOOK) _build/book-doctrees
	$(BIN)/sphinx-build -b html -c book -d _build/book-doctrees -W --keep-going -q . $(BOOK)
	$(BIN)/python -m fashionlab.book check $(BOOK)
	@echo "the course website: $(BOOK)/index.html (python -m http.server -d $(BOOK) to read it)"

# BROWSER_CHECK_FLAGS=--skip-if-no-chromium: print why and pass when Chromium cannot be had (what CI uses)
browser-check: book
	$(BIN)/python tools/browser_check.py --site $(BOOK) --out _build/browser-check $(BROWSER_CHECK_FLAGS)

clean-data:
	rm -rf data/synth data/checkpoints
