# Blockwork — `make run` starts the app, `make test` runs every test; both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test test-fast lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The optional ONNX extra (requirements-onnx.txt): the tests export every example and run it in onnxruntime.
$(VENV)/.onnx-installed: $(VENV)/.installed requirements-onnx.txt
	$(PY) -m pip install --quiet -r requirements-onnx.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: $(VENV)/.onnx-installed
	$(PY) -m pytest

test-fast: $(VENV)/.onnx-installed  ## everything but the browser tests
	$(PY) -m pytest -m "not browser"

$(VENV)/.bench-installed: $(VENV)/.installed benchmarks/requirements.txt
	$(PY) -m pip install --quiet -r benchmarks/requirements.txt
	touch $@

bench: $(VENV)/.bench-installed  ## full benchmarks; rewrites docs/performance.md
	$(PY) -m benchmarks.run

lint: $(VENV)/.installed  ## ruff on everything, mypy --strict on builder/ (settings in pyproject.toml)
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache
