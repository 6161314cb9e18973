# One command each from a fresh clone: `make test`, `make demo`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel by default (already on disk on the lab machines). GPU users: make setup TORCH_SPEC="torch==2.13.0" TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PYTEST_ARGS ?=

.PHONY: setup test demo bench toolchains clean

setup: $(VENV)/.done

$(VENV)/.done: pyproject.toml
	@command -v bwrap >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get install -y -q bubblewrap >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null); else echo "bubblewrap missing: sudo apt-get install bubblewrap"; exit 1; fi; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

test: setup toolchains
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

demo: setup toolchains
	$(BIN)/python -m crucible.demo

bench: setup toolchains   # each prints its figure and its comparison, measured side by side
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

toolchains: setup
	PIP="$(abspath $(BIN))/python -m pip" bash scripts/install_toolchains.sh

clean:
	rm -rf $(VENV) build *.egg-info
