# Two commands on a fresh machine with python3 and make:
#   make book   - install, execute every chapter with papermill, build the HTML book
#   make test   - install, run the test suite
# Maintainers: make timings [PRESET=...] copies the chapter times of the last `make book`
# (runs/$(PRESET)/book_timings.json) into the committed book/timings.json and README table;
# make publish packs the networks of a `make book TRAIN=1` run (runs/default) as the reference networks.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= default
SEED   ?= 0
# TRAIN=1: train every network with its recipe instead of installing the published reference networks
TRAIN  ?= 0
STAMP  := $(VENV)/.indi4d-installed

.PHONY: book test install benchmarks clean-book timings publish

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[book,test]"
	@touch $@

book: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m indi4d.book --preset $(PRESET) --seed $(SEED) $(if $(filter 1,$(TRAIN)),--train)

timings: $(STAMP)
	$(PY) -m indi4d.book.timings --run-dir runs/$(PRESET)

publish: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m indi4d.publish runs/default

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest

benchmarks: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) benchmarks/speed.py
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) benchmarks/quality.py

clean-book:
	rm -rf book/_build book/chapters
