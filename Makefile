# Quick start: `make demo` runs the main job on the embedded synthetic data; `make test` runs the suite.
# Both create the virtual environment $(VENV) and install the package into it first.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_run

.PHONY: install demo test test-fast clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m keras_frcnn.cli.demo --output $(DEMO_DIR)

# Two pytest workers (pytest-xdist): many tests wait on subprocesses or trace graphs on one
# thread, so two processes share the 2 cores the suite is sized for. WORKERS=0 runs it serially.
WORKERS ?= 2

test: install
	$(PY) -m pytest -q -n $(WORKERS)

test-fast: install
	$(PY) -m pytest -q -n $(WORKERS) -m "not slow"

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache build *.egg-info
