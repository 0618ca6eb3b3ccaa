# The two commands of the README: `make run` runs the cluster, `make test` passes the tests.
# Both set up what they need (Debian packages, a virtualenv) and are quick when it is there.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_DIR ?=
PORT ?= 6443
ARGS ?=
# What the node agent's runc runtime and its tests use: runc and conmon run containers, CNI
# plugins network them, busybox-static builds the test images, docker-registry and skopeo
# serve and copy them, nftables and iproute2 program the node, conntrack clears stale UDP flows.
DEBIAN_PACKAGES := runc conmon containernetworking-plugins busybox-static docker-registry skopeo \
	nftables iproute2 conntrack

.PHONY: run test lint deps venv clean bench

deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  need=""; \
	  python3 -c 'import venv, ensurepip' 2>/dev/null || need="$$need python3-venv"; \
	  for pkg in $(DEBIAN_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'install ok installed' || need="$$need $$pkg"; \
	  done; \
	  if [ -n "$$need" ]; then \
	    echo "installing Debian packages:$$need"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	  fi; \
	fi

$(STAMP): pyproject.toml | deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@# Byte-compile once: where PYTHONDONTWRITEBYTECODE is set, every start would compile again.
	$(PY) -m compileall -q $(VENV)/lib >/dev/null 2>&1 || true
	@touch $(STAMP)

venv: deps $(STAMP)

run: venv
	@$(PY) -m compileall -q src >/dev/null
	$(VENV)/bin/pybernetes up --port $(PORT) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(ARGS)

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports --config pyproject.toml

# ruff and the import-linter contract run inside the suite (tests/unit/test_code_quality.py).
test: venv
	$(PY) -m pytest -q -p no:cacheprovider tests

clean:
	rm -rf $(VENV) build src/*.egg-info
