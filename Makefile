# Two commands set everything up from a fresh clone:  make lab  |  make test
PY       ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.stamp-install
# Triton is an extra for Linux x86-64 only (its marker in pyproject.toml keeps it off elsewhere).
EXTRAS   := lab,test,triton
NBVAL    := --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=180 -p no:cacheprovider
HOST     ?= 127.0.0.1
PORT     ?= 8888
LAB_ARGS ?=
INLINE   := module://matplotlib_inline.backend_inline
# Jupyter refuses to run as root without --allow-root (containers, CI); a normal user never needs it.
ROOT_ARG := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: install lab test lint test-unit test-notebooks test-exercises test-browser sync exercises bench-cpu clean

$(STAMP): pyproject.toml constraints.txt tools/lab_overrides.json Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	# The course kernel takes the name the notebooks carry (python3, which Colab knows too): every lesson opens in
	# this venv's Python with no kernel to choose.
	# Its figures are drawn inline whatever the shell exports (servers, Docker and CI often set MPLBACKEND=Agg).
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python (saattn-edu)" \
	    --env MPLBACKEND $(INLINE) >/dev/null
	# No news toast, no kernel dialog: JupyterLab opens straight onto the course.
	mkdir -p $(VENV)/share/jupyter/lab/settings && cp tools/lab_overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

install: $(STAMP)

# A clean plotting environment for the server and the kernels it starts: no MPLBACKEND from the caller's shell.
lab: install
	env -u MPLBACKEND $(BIN)/jupyter lab --ip=$(HOST) --port=$(PORT) --ServerApp.root_dir=. \
	    --LabApp.default_url=/lab/tree/notebooks \
	    --MappingKernelManager.default_kernel_name=python3 $(ROOT_ARG) $(LAB_ARGS)

# pytest exits 5 when a folder holds nothing to collect: that is not a failure of the course.
test: install lint test-unit test-notebooks test-exercises
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory test-browser; \
	else echo "Chromium not found: browser tests not run (apt-get install chromium, then make test-browser)"; fi

# The package, tests, benchmarks, tools and the notebooks' text sources (settings in pyproject.toml).
lint: install
	$(BIN)/ruff check .

test-unit: install
	$(BIN)/python -m pytest -p no:nbval -q tests --ignore=tests/browser || [ $$? -eq 5 ]

# Every lesson and solution in JupyterLab, a lesson, an exercise and the explorer in Notebook 7, in headless
# Chromium (screenshots in tests/browser/screenshots/); the explorer and two lessons once more under MPLBACKEND=Agg.
test-browser: install
	$(BIN)/python -m pytest -p no:nbval -q tests/browser || [ $$? -eq 5 ]

test-notebooks: install
	$(BIN)/python -m pytest -q --nbval $(NBVAL) notebooks solutions || [ $$? -eq 5 ]

test-exercises: install
	$(BIN)/python -m pytest -q --nbval-lax $(NBVAL) exercises || [ $$? -eq 5 ]

# Every lesson and solution notebook in line with its text source (NN_name.py beside it); re-executes what changed.
sync: install
	$(BIN)/python tools/sync_notebooks.py

# Solutions first brought in line with their text sources, then exercises/ generated from them.
exercises: install
	$(BIN)/python tools/sync_notebooks.py solutions/[0-9][0-9]_*.py
	$(BIN)/saattn build-exercises

bench-cpu: install
	$(BIN)/python benchmarks/cpu_reference.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
