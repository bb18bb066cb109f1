# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint venv clean demo run

venv: $(STAMP)

# Reinstall whenever a requirements file changes; works on a fresh machine with only Python 3.11+.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

# The whole stack on this machine (embedded PostgreSQL, sandbox upstreams, devhost): generates two
# sample modules, shows progress and the lessons, then stops everything. State stays in .devhost/.
demo: $(STAMP)
	$(PY) -m demo $(DEMO_ARGS)

# The same stack, left running on port 7071 until Ctrl-C (prints the URLs and settings to use).
run: $(STAMP)
	$(PY) -m demo run $(DEMO_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
