# Self-Attention, Answered: every task of the course is a target here. `make help` lists them.
# Two commands set everything up on a fresh machine: `make book` and `make test`.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Optional exact torch requirement installed before requirements.txt, e.g. the CPU build:
#   make book TORCH=torch==2.13.0        (CI does this; see .ci/run)
TORCH  ?=
PORT   ?= 8000
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
LEARNER := _build/learner
# Your own copy of the learner edition: `make lab` fills it once and never overwrites a file in it.
WORK   ?= my-notebooks
# The Chinese edition: catalogs in locale/zh_CN, the site in _build/html-zh, published under zh/
# (scripts/translations.py; _config.yml's course_editions names each edition's folder).
ZH      := zh_CN
HTML_ZH := _build/html-zh
# `make stress`: the test command, run STRESS_RUNS times while two busy processes load two cores
# (scripts/stress_check.sh), e.g. make stress STRESS_RUNS=1 STRESS_CMD="$(BIN)/pytest $(NBVAL) notebooks"
STRESS_RUNS ?= 3
STRESS_CMD  ?= $(MAKE) test

.DEFAULT_GOAL := help
.PHONY: help install book book-zh translations test stress lint notebooks learner learner-zh student lab serve clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || { \
	  echo "error: '$(PYTHON)' is missing or older than Python 3.10."; \
	  echo "Install Python >= 3.10 (python.org, your package manager or pyenv), then run"; \
	  echo "  make book PYTHON=/path/to/python3"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "error: could not create $(VENV). On Debian/Ubuntu: sudo apt install python3-venv"; exit 1; }
	@if [ -n "$(TORCH)" ]; then $(BIN)/pip install "$(TORCH)" || { \
	  echo "error: pip could not install $(TORCH)."; exit 1; }; fi
	@$(BIN)/pip install -r requirements.txt && $(BIN)/pip install --no-deps -e . || { \
	  echo "error: installing requirements.txt failed (see pip's message above)."; \
	  echo "Check your network connection, then run 'make clean' and try again."; exit 1; }
	@touch $(STAMP)

install: $(STAMP)  ## create .venv with the pinned toolchain and the attention package (editable)

book: $(STAMP)  ## build the website from the committed outputs into _build/html
	$(BIN)/jupyter-book build -W -n --keep-going .
	@echo; echo "The website is built: open file://$(CURDIR)/_build/html/index.html (or run 'make serve')"

book-zh: $(STAMP)  ## build the Chinese website (same notebooks, locale/zh_CN) into _build/html-zh
	$(BIN)/python scripts/translations.py build $(ZH) --out $(HTML_ZH) --strict
	@# The published layout, locally: the English site's zh/ is the Chinese site (EN ⇄ 中文 links).
	@mkdir -p _build/html && ln -sfn ../html-zh _build/html/zh
	@echo; echo "The Chinese website is built: open file://$(CURDIR)/_build/html/zh/index.html"

translations: $(STAMP)  ## regenerate the catalogs from the sources, update locale/*/LC_MESSAGES/*.po
	$(BIN)/python scripts/translations.py update

test: $(STAMP)  ## lint, build both sites (-W: English, Chinese), unit tests, nbval, browser tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/jupyter-book build -W -n --keep-going .
	$(BIN)/python scripts/translations.py build $(ZH) --out $(HTML_ZH) --strict
	$(BIN)/pytest $(NBVAL) tests notebooks

stress: $(STAMP)  ## run `make test` (or STRESS_CMD) STRESS_RUNS times while two busy processes load the CPU
	scripts/stress_check.sh -n $(STRESS_RUNS) -b 2 -- $(STRESS_CMD)

lint: $(STAMP)  ## ruff check and format check of the package, tests and notebooks
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

notebooks: $(STAMP)  ## re-execute every notebook in place and store its outputs (no timestamps)
	@for nb in $(NOTEBOOKS); do echo "executing $$nb"; \
	  ATTENTION_DEVICE=cpu $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.record_timing=False --ExecutePreprocessor.timeout=300 "$$nb" || exit 1; \
	done

learner: $(STAMP)  ## the learner edition (plain Jupyter/Colab, no solutions): _build/learner/ and a zip
	$(BIN)/python scripts/learner_edition.py --out $(LEARNER)

learner-zh: $(STAMP)  ## the learner edition in Chinese (prose from locale/zh_CN): _build/learner-zh/
	$(BIN)/python scripts/learner_edition.py --language $(ZH) --out _build/learner-zh

student: learner  ## the former name of `make learner`

lab: learner  ## JupyterLab on your copy of the learner edition in my-notebooks/ (kept across runs)
	@mkdir -p $(WORK)
	@for nb in $(LEARNER)/notebooks/*.ipynb; do \
	  test -e "$(WORK)/$${nb##*/}" || { cp "$$nb" "$(WORK)/" && echo "copied $(WORK)/$${nb##*/}"; }; \
	done
	@echo "Your notebooks: $(CURDIR)/$(WORK)/ (never overwritten; delete one to get a fresh copy)."
	$(BIN)/jupyter lab --notebook-dir=. --LabApp.default_url=/lab/tree/$(WORK) \
	  $(if $(filter 0,$(shell id -u)),--allow-root,)

serve:  ## serve the built website on http://127.0.0.1:$(PORT)
	@test -f _build/html/index.html || { echo "error: no website yet; run 'make book' first"; exit 1; }
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

clean:  ## remove the build, caches and .venv
	rm -rf _build $(VENV) .pytest_cache .hypothesis .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
