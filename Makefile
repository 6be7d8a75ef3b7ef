# provisioner — `make run` and `make test` do all the set-up (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ROOT   ?= /vms

.PHONY: run test test-e2e deps test-deps bench bench-e2e clean

run: deps example.test/data.tar.gz
	bin/provision --root $(ROOT) example.test

test: test-deps example.test/data.tar.gz
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Only the e2e tier (also part of `make test`): a real Debian guest under TCG,
# built by tests/e2e/build-guest-image (docs/e2e.md).
test-e2e: test-deps
	$(PY) -m pytest -q -m e2e tests/e2e $(PYTEST_ARGS)

deps: $(VENV)/.installed
	@bin/install-deps

test-deps: $(VENV)/.installed-test
	@bin/install-deps --test

$(VENV)/.installed: pyproject.toml
	@bin/install-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	@bin/install-deps --test
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The example site archive, rebuilt byte-identically from its source.
example.test/data.tar.gz: $(wildcard example.test/site/*)
	tar --sort=name --mtime='2000-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
	    --mode='u+rwX,go+rX,go-w' -C example.test/site -cf - . | gzip -9n > $@.tmp
	mv $@.tmp $@

bench: deps
	$(PY) bench/render.py

bench-e2e: test-deps
	$(PY) bench/e2e.py

clean:
	rm -rf $(VENV) .pytest_cache
