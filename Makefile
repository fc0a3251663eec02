# The two commands of the README: `make test` and `make demo`. Each creates .venv when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lipgan-installed

.PHONY: test demo lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m ruff format --check src tests benchmarks scripts
	$(PY) -m pytest -q -n 2

demo: $(STAMP)
	$(VENV)/bin/lipgan train

lint: $(STAMP)
	$(PY) -m ruff check --fix src tests benchmarks scripts
	$(PY) -m ruff format src tests benchmarks scripts

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
