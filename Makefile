# Two commands do everything on a fresh CPU machine (see README):
#   make course   - run all notebooks headless (cpu profile), executed copies + figures in outputs/
#   make test     - unit tests + every notebook under nbmake in the smoke profile
# and one to work in the notebooks yourself:
#   make lab      - JupyterLab (with the widget front end) on 127.0.0.1, in notebooks/
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Installed first, alone: the CPU wheel on this kind of machine. A loose `torch` would
# pull a multi-GB CUDA build. Elsewhere: make TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
LAB_STAMP     := $(VENV)/.lab-installed
BROWSER_STAMP := $(VENV)/.browser-installed
# Extra `jupyter lab` options, e.g. make lab LAB_ARGS="--port=9999"
LAB_ARGS ?=

.PHONY: setup test lint course unit notebooks check-data benchmarks clean lab lab-setup browser-test

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
	COURSE_HEADLESS=1 TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 COURSE_PROFILE=smoke $(BIN)/python -m pytest -q --nbmake --nbmake-timeout=900 notebooks

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: setup
	COURSE_PROFILE=smoke $(BIN)/python -m pytest -q tests

notebooks: setup
	COURSE_HEADLESS=1 TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 COURSE_PROFILE=smoke $(BIN)/python -m pytest -q --nbmake --nbmake-timeout=900 notebooks

course: setup
	$(BIN)/python scripts/run_course.py --profile $${COURSE_PROFILE:-cpu}

check-data: setup
	$(BIN)/python -m utils.task --check

benchmarks: setup
	$(BIN)/python benchmarks/run_all.py

# JupyterLab + ipywidgets' lab extension (prebuilt, inside jupyterlab_widgets) in the course venv.
lab-setup: $(LAB_STAMP)

$(LAB_STAMP): $(STAMP) requirements-lab.txt
	$(BIN)/python -m pip install -q -r requirements-lab.txt
	touch $(LAB_STAMP)

# Localhost only, with a token; no browser is opened where there is no display (it prints the URL).
# LanguageServerManager.autodetect=False: jupyter_lsp (a JupyterLab dependency) otherwise probes for ~20
# language servers the course never uses and logs them all on one screen-wide "Skipped non-installed
# server(s): ..." line; the course uses no language server.
lab: $(LAB_STAMP)
	@flags=""; \
	if [ "$$(uname)" = Linux ] && [ -z "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ]; then flags="--no-browser"; fi; \
	if [ "$$(id -u)" = 0 ]; then flags="$$flags --allow-root"; fi; \
	echo "JupyterLab in notebooks/ on 127.0.0.1: open the http://127.0.0.1:...?token=... URL printed below. Ctrl-C twice stops it."; \
	exec $(BIN)/python -m jupyterlab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks \
		--LanguageServerManager.autodetect=False $$flags $(LAB_ARGS)

# Notebook 03 in JupyterLab, driven in headless Chromium (Debian's package, installed with apt-get when
# missing): run all cells, use the inspector, check the reward breakdown. Screenshots: outputs/browser/.
$(BROWSER_STAMP): $(LAB_STAMP) requirements-browser.txt
	$(BIN)/python -m pip install -q -r requirements-browser.txt
	touch $(BROWSER_STAMP)

browser-test: $(BROWSER_STAMP)
	@chromium="$$(sh scripts/ensure_chromium.sh)" || exit 1; \
	echo "browser-test: $$($$chromium --version 2>/dev/null), screenshots in outputs/browser/"; \
	CHROMIUM="$$chromium" COURSE_BROWSER_TEST=1 COURSE_PROFILE=smoke $(BIN)/python -m pytest -q -s tests/browser

clean:
	rm -rf outputs .pytest_cache
