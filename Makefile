# Two commands do everything on a fresh CPU machine (see README):
#   make course   - run all notebooks headless (cpu profile), executed copies + figures in outputs/
#   make test     - unit tests + every notebook under nbmake in the smoke profile
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Installed first, alone: the CPU wheel on this kind of machine. A loose `torch` would
# pull a multi-GB CUDA build. Elsewhere: make TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup test lint course unit notebooks check-data benchmarks clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-embedded.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-embedded.txt
	touch $(STAMP)

test: setup lint
	COURSE_PROFILE=smoke $(BIN)/python -m pytest -q tests
	COURSE_PROFILE=smoke $(BIN)/python -m pytest -q --nbmake --nbmake-timeout=900 notebooks

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: setup
	COURSE_PROFILE=smoke $(BIN)/python -m pytest -q tests

notebooks: setup
	COURSE_PROFILE=smoke $(BIN)/python -m pytest -q --nbmake --nbmake-timeout=900 notebooks

course: setup
	$(BIN)/python scripts/run_course.py --profile $${COURSE_PROFILE:-cpu}

check-data: setup
	$(BIN)/python -m utils.task --check

benchmarks: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf outputs .pytest_cache
