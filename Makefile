# One command each from a fresh clone: `make test`, `make demo`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every package `make setup` installs, at the version CI tested (pip and torch included). `make lock` rewrites it.
LOCK := requirements.lock
# The extras `make setup` installs and the lock covers. A new extra: add it to pyproject.toml and here, `make lock`.
EXTRAS ?= dev
# torch: the locked CPU wheel (on disk on the lab machines). GPU users override both (the lock's other pins still
# apply): make setup TORCH_SPEC="torch==2.13.0" TORCH_INDEX=https://download.pytorch.org/whl/cu128
LOCKED_TORCH := $(shell grep -m1 '^torch==' $(LOCK) 2>/dev/null)
TORCH_SPEC ?= $(or $(LOCKED_TORCH),torch)
TORCH_INDEX ?=
# Only with the locked torch must the venv hold exactly the lock (a CUDA torch brings packages of its own).
TORCH_AS_LOCKED := $(if $(TORCH_INDEX),,$(filter $(LOCKED_TORCH),$(TORCH_SPEC)))
PYTEST_ARGS ?=
# `make test-latest`: the tests that exercise the unpinned third-party APIs (transformers, peft, tokenizers, hub).
LATEST_TESTS ?= tests/test_hf_interop.py tests/test_backends.py tests/test_serve.py tests/test_chat_render.py \
	tests/test_tokenizer.py

.PHONY: setup test demo tour bench toolchains lock test-latest clean

setup: $(VENV)/.done

# $(call install,VENV,PIP-ARGS): pip, torch, then this package with EXTRAS into VENV, PIP-ARGS (constraints) each time.
# torch from TORCH_INDEX takes no constraints: that index need not carry the lock's versions of torch's dependencies.
define install
	$(1)/bin/pip install -q --upgrade $(2) pip setuptools wheel
	$(1)/bin/pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),$(2))
	$(1)/bin/pip install -q --no-build-isolation $(2) -e ".[$(EXTRAS)]"
endef

$(VENV)/.done: pyproject.toml $(LOCK)
	@# System packages: bubblewrap (the sandbox) and CPython's own tests (crucible swe's default source).
	@missing="$$(command -v bwrap >/dev/null || echo bubblewrap) $$(test -f /usr/lib/python3.11/test/test_textwrap.py || echo libpython3.11-testsuite)"; \
	if [ -n "$$(echo $$missing)" ]; then if [ "$$(id -u)" = 0 ]; then apt-get install -y -q $$missing >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null); else echo "missing: sudo apt-get install $$missing"; exit 1; fi; fi
	test -x $(BIN)/python || { $(PY) -m venv $(VENV) && touch $(VENV)/.new; }
	grep -v '^torch==' $(LOCK) > $(VENV)/constraints.txt
	$(call install,$(VENV),-c $(VENV)/constraints.txt)
	@# Anything installed but not locked is a dependency added without `make lock` (fatal in a new venv) or a
	@# leftover in an old one (reported only).
	@unlocked=$$($(BIN)/pip freeze --all --exclude-editable | grep -v '^torch==' | grep -vxF -f $(LOCK)); \
	if [ -n "$(TORCH_AS_LOCKED)" ] && [ -n "$$unlocked" ]; then \
	  echo "$(VENV) holds packages not in $(LOCK) (new dependency: make lock; left over: make clean setup):"; \
	  echo "$$unlocked"; test ! -e $(VENV)/.new; fi
	rm -f $(VENV)/.new
	touch $@

test: setup toolchains
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

demo: setup   # the world tasks need only Python and bubblewrap
	$(BIN)/python -m crucible.demo

tour: setup toolchains
	$(BIN)/python -m crucible.tour

bench: setup toolchains   # each prints its figure and its comparison, measured side by side
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

toolchains: setup
	PIP="$(abspath $(BIN))/python -m pip" bash scripts/install_toolchains.sh

# Re-resolve the lock in a throw-away venv: keeps every locked version pyproject.toml still allows and adds what
# it newly needs; UPGRADE=1 takes the newest release of everything (torch stays TORCH_SPEC). Then `make test`.
KEEP := $(if $(UPGRADE),,$(wildcard $(LOCK)))
lock:
	rm -rf .venv-lock && $(PY) -m venv .venv-lock
	$(if $(KEEP),grep -v '^torch==' $(LOCK) > .venv-lock/constraints.txt)
	$(call install,.venv-lock,$(if $(KEEP),-c .venv-lock/constraints.txt))
	{ echo "# Written by \`make lock\` (EXTRAS=$(EXTRAS), $$(.venv-lock/bin/python -V), $$(uname -sm)): don't edit."; \
	  echo "# pip constraints for \`make setup\`; its torch line is TORCH_SPEC's default (see the Makefile)."; \
	  .venv-lock/bin/pip freeze --all --exclude-editable; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK) && rm -rf .venv-lock

# The newest release of every dependency but torch (the locked wheel) against the interop tests: run it before
# every lock update. A throw-away venv; prints what differs from the lock. Not part of `make test`.
test-latest: toolchains
	rm -rf .venv-latest && $(PY) -m venv .venv-latest
	$(call install,.venv-latest,)
	@echo "== tested releases that differ from $(LOCK) (the rest as locked):"; \
	  .venv-latest/bin/pip freeze --all --exclude-editable | grep -vxF -f $(LOCK) || echo "(none)"
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) $(LATEST_TESTS)

clean:
	rm -rf $(VENV) .venv-lock .venv-latest build *.egg-info
