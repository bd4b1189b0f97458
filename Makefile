# Task2Sim study. Quick start (fresh Debian/Ubuntu, Python 3.11):
#   make demo   # installs everything, reproduces the study at the cpu profile into runs/cpu/ (figures/ untouched)
#   make test   # installs everything, runs the test suite and the notebook check (nbval)
# Long runs take BUDGET=<minutes>: they stop cleanly (exit 3) when the next unit would not finish in time, every
# finished unit kept in the results ledger; the same command continues. Maintainers measure into the committed
# ledger (results/<profile>/) with `make record ONLY="03" BUDGET=40`, then commit results/.
# Then, optionally:
#   make table256     # the 256-setting table and the paper's controller on it (notebook 09, ~2 h on 2 cores after make demo)
#   make study-full   # table256, then the supplementary's scaling studies at the cpu profile (notebook 07, ~3 h on 2 cores)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROFILE ?= cpu
PYTEST_ARGS ?=
BUDGET ?=
ONLY ?=
BUDGET_FLAG = $(if $(BUDGET),--budget-minutes $(BUDGET),)

.PHONY: record figures figures-check demo table256 study-full test install system-deps assets assets-objects test-objects data study test-fast benchmarks clean help

help:
	@echo "make demo | record | figures | figures-check | table256 | study-full | test | install | assets | assets-objects | test-objects | data | study PROFILE=smoke|cpu|paper | benchmarks | clean"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: system-deps $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

assets: install
	$(BIN)/t2s assets fetch

# The combined 111-class object library (7 Debian packages, 2.5 GB download, ~8 min once); not needed by CI.
assets-objects: install
	$(BIN)/t2s assets fetch --library objects

test-objects: assets assets-objects
	$(BIN)/python -m pytest -ra tests/test_object_library.py tests/test_assets.py --run-objects $(PYTEST_ARGS)

data: install
	$(BIN)/t2s data fetch

study: assets data
	$(BIN)/t2s study --profile $(PROFILE)

# the study at the cpu profile without the scaling studies (notebook 07; see study-full), then the index
demo: assets data
	$(BIN)/t2s study --profile cpu --only 01 02 03 04 05 06 08 $(BUDGET_FLAG)
	$(BIN)/t2s reproduce --profile cpu

# measure into the committed results ledger (results/$(PROFILE)/), in budgeted slices; commit results/ after each
record: assets data
	$(BIN)/t2s study --profile $(PROFILE) --record $(if $(ONLY),--only $(ONLY),) $(BUDGET_FLAG)

# the 256-setting table (notebook 09: the resv64 fraction measured, the rest predicted and validated; the paper's
# controller trained on it), after `make demo` (it reuses notebook 03's cells and 02's vectors), then the index again
table256: assets data
	$(BIN)/t2s study --profile cpu --only 09 08 $(BUDGET_FLAG)

# the scaling studies (supplementary Figures 2-7, 9-11) after the 256-setting table (Task2Sim there is its controller),
# then the index again
study-full: table256
	$(BIN)/t2s study --profile cpu --only 07 08 $(BUDGET_FLAG)

# figures/ from the committed results ledger (results/cpu/) alone, by the notebooks at HEAD: nothing rendered for a
# reward cell, trained or evaluated; a notebook whose records the ledger lacks is listed in figures/INDEX.md
figures: assets data
	$(BIN)/t2s figures --profile cpu

# the committed figures/ are exactly what the code at HEAD makes of the committed ledger (run by make test)
figures-check: assets data
	$(BIN)/t2s figures --profile cpu --check

# the tests, the notebooks (nbval), then the figures check. pytest exit 5 ("no tests collected") is not a failure.
test: assets data
	set +e; $(BIN)/python -m pytest -ra --nbval-lax --nbval-cell-timeout=900 tests notebooks $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc
	$(BIN)/t2s figures --profile cpu --check

test-fast: install
	$(BIN)/python -m pytest -ra -x tests $(PYTEST_ARGS)

benchmarks: assets data
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf runs .pytest_cache
