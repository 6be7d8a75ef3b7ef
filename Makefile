# provisioner — `make run` and `make test` do all the set-up (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ANSIBLE_VENV := .venv-ansible
TEMPEST_VENV := .venv-tempest
ROOT   ?= /vms
PORT   ?= 5000

.PHONY: run test test-e2e test-conformance deps test-deps bench bench-e2e bench-conformance clean install

# Provision example.test, then serve the OpenStack API in the foreground until Ctrl-C
# (the first serve creates the API user admin; it prints the openrc settings).
run: deps example.test/data.tar.gz
	bin/provision --root $(ROOT) example.test
	bin/provision --root $(ROOT) serve --port $(PORT)

# Write and enable the systemd units: the API socket-activated on PORT, the post-boot worker, the
# image sync timer (docs/service.md). Running it again changes nothing.
install: deps
	bin/provision install-service --root $(ROOT) --port $(PORT)

test: test-deps example.test/data.tar.gz
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Only the e2e tier (also part of `make test`): a real Debian guest under TCG,
# built by tests/e2e/build-guest-image (docs/e2e.md).
test-e2e: test-deps
	$(PY) -m pytest -q -m e2e tests/e2e $(PYTEST_ARGS)

# Only the conformance tier (also part of `make test`): Tempest against `provision serve`
# on 127.0.0.1 (docs/conformance.md).
test-conformance: test-deps
	$(PY) -m pytest -q -m conformance tests/conformance $(PYTEST_ARGS)

deps: $(VENV)/.installed
	@bin/install-deps

test-deps: $(VENV)/.installed-test $(ANSIBLE_VENV)/.installed $(TEMPEST_VENV)/.installed
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

# Ansible's openstack.cloud 2.5.0 for tests/api/test_ansible.py, in its own venv
# (tests/api/ansible-requirements.txt says why). Only the collection is taken
# from the 52 MB `ansible` wheel (no ansible-galaxy: it would reach beyond PyPI).
ANSIBLE_WHEEL := 12.3.0
$(ANSIBLE_VENV)/.installed: tests/api/ansible-requirements.txt
	rm -rf $(ANSIBLE_VENV)
	$(PYTHON) -m venv $(ANSIBLE_VENV)
	$(ANSIBLE_VENV)/bin/pip install -q -r tests/api/ansible-requirements.txt
	$(ANSIBLE_VENV)/bin/pip download -q --no-deps --only-binary :all: -d $(ANSIBLE_VENV)/wheel \
	    'ansible==$(ANSIBLE_WHEEL)'
	$(ANSIBLE_VENV)/bin/python -c 'import sys, zipfile; w = zipfile.ZipFile(sys.argv[1]); \
	    w.extractall(sys.argv[2], [n for n in w.namelist() if n.startswith("ansible_collections/openstack/cloud/")])' \
	    $(ANSIBLE_VENV)/wheel/ansible-$(ANSIBLE_WHEEL)-*.whl $(ANSIBLE_VENV)/collections
	rm -rf $(ANSIBLE_VENV)/wheel
	touch $@

# Tempest 47.0.0 for the conformance tier (tests/conformance/), in its own venv, pinned by
# tests/conformance/tempest-requirements.txt (rebuilt when that file changes).
$(TEMPEST_VENV)/.installed: tests/conformance/tempest-requirements.txt
	rm -rf $(TEMPEST_VENV)
	$(PYTHON) -m venv $(TEMPEST_VENV)
	$(TEMPEST_VENV)/bin/pip install -q -r tests/conformance/tempest-requirements.txt
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

bench-conformance: test-deps
	$(PY) bench/conformance.py

clean:
	rm -rf $(VENV) $(ANSIBLE_VENV) $(TEMPEST_VENV) .pytest_cache
