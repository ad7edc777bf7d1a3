# The two commands: `make run` serves, `make test` tests. Both set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test fuzz bench lint clean vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.run-deps $@

run: $(VENV)/.run-deps
	./bin/serve

# ruff first: a lint or format finding fails the run before any test starts. Two pytest-xdist workers by default
# (most of the run waits on servers and browsers, so both cores stay busy); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=$(CURDIR) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Longer fuzzing than the bounded run inside `make test`: schemathesis, every role, a random seed (printed).
fuzz: $(VENV)/.dev-deps
	FUZZ_SECONDS=$${FUZZ_SECONDS:-120} FUZZ_CLASSES_SECONDS=$${FUZZ_CLASSES_SECONDS:-300} \
		FUZZ_SEED=$${FUZZ_SEED:-random} PYTHONPATH=$(CURDIR) \
		$(BIN)/python -m pytest tests/security/test_fuzz.py tests/security/test_fuzz_classes.py $(PYTEST_ARGS)

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -r config core casevac telemed realtime web wsgi.py -c .bandit.yml --severity-level medium

clean:
	rm -rf $(VENV) instance/*.db

# Front-end libraries (web/static/vendor, committed) rebuilt from the pinned lockfile; needs Node.js and npm,
# which nothing else (run, test) does.
vendor:
	cd web/vendor-src && npm ci --ignore-scripts --no-audit --no-fund && node build.mjs
