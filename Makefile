# The two commands of the README:
#   make book   set up everything and build the whole website into _build/html (full mode);
#               VAE_BOOK_REPO_URL=https://github.com/<owner>/<repo> adds the repository and launch buttons
#   make test   set up everything and run all tests (quick mode), including the browser check
# Everything is installed by these targets: Python packages into .venv, the site's JavaScript from
# the npm registry into node_modules/, and (when run as root on Debian) chromium for the browser test.

SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PYTHONHASHSEED := 0

.PHONY: book test setup setup-python setup-system setup-js vendor clean bench

# The data set of the chapters (VAE_BOOK_DATASET, default mnist). Each data set builds into its own
# folder with its own execution cache, because the cache is keyed on the notebooks' code, not the data:
# mnist into _build/html, another data set into _build/<name>/_build/html.
DATASET := $(or $(VAE_BOOK_DATASET),mnist)
BOOK_OUT := $(if $(filter mnist,$(DATASET)),.,_build/$(DATASET))
QUICK_OUT := _build/quick$(if $(filter mnist,$(DATASET)),,-$(DATASET))

# After the build, one line per chapter: seconds executed, data set, budget (book/chapter_times.py);
# printed even when a chapter failed, whose row then says so.
book: setup vendor
	@status=0; \
	$(BIN)/jupyter-book build . --all --warningiserror --keep-going --path-output $(BOOK_OUT) || status=$$?; \
	$(BIN)/python book/chapter_times.py $(BOOK_OUT)/_build || true; \
	if [ $$status = 0 ]; then echo "Built: open $(BOOK_OUT)/_build/html/index.html"; \
	else echo "make book: the build failed (status $$status); the log above names the chapter and cell"; fi; \
	exit $$status

test: setup vendor
	VAE_BOOK_QUICK=1 $(BIN)/jupyter-book build . --all --path-output $(QUICK_OUT) --warningiserror --keep-going
	VAE_BOOK_QUICK=1 SITE_DIR=$(QUICK_OUT)/_build/html $(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider

setup: setup-python setup-system setup-js

setup-python: $(BIN)/.installed
$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# Debian packages: chromium for the browser test, the full Fashion-MNIST for full-size runs.
setup-system:
	@if ! command -v chromium >/dev/null || [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist >/dev/null; \
	  else echo "note: install Debian's 'chromium' (browser test) and 'dataset-fashion-mnist' (full-size data) with apt-get as root"; fi; \
	fi

setup-js: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

vendor: setup-js
	$(BIN)/python book/vendor_js.py

bench: setup
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf _build
