# Two commands for a newcomer: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# Empty: pip installs torch from the index it is configured with. Set it to a wheel index of CPU-only
# builds (PyTorch publishes one) to avoid the several-GB GPU build on a machine without a GPU.
TORCH_INDEX_URL ?=
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test reliability cluster install bench load lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first: a local wheel when pip is configured with one, else from TORCH_INDEX_URL when
	# set, else from pip's own index.
	$(PY) -m pip install -q --no-index --no-deps "torch==$(TORCH_VERSION)" 2>/dev/null \
	|| $(PY) -m pip install -q "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/profilekit serve --demo --host $(HOST) --port $(PORT)

test: $(VENV)/.installed
	$(PY) -m pytest -q

# the scenarios of tests/reliability/ in their full form (make test runs them short); -s prints their figures
reliability: $(VENV)/.installed
	PROFILEKIT_RELIABILITY_FULL=1 $(PY) -m pytest -q -s -m reliability tests/reliability

# tests/cluster/ in its full form: two API replicas behind HAProxy and two workers, one replica killed under
# longer load (needs PostgreSQL, Redis and haproxy: PROFILEKIT_TEST_DATABASE_URL, PROFILEKIT_TEST_REDIS_URL)
cluster: $(VENV)/.installed
	PROFILEKIT_CLUSTER_FULL=1 $(PY) -m pytest -q -s -m cluster tests/cluster

bench: $(VENV)/.installed
	$(PY) -m bench.engine

# latency under load (#15): locust headless, 64 clients posting 1-8 rows for 60 s, against a fresh embedded
# instance, or against URL with KEY (`make load URL=http://host:8000 KEY=pk_...`)
load: $(VENV)/.installed
	PYTHONPATH=platform:. $(PY) -m bench.load $(if $(URL),--url $(URL) $(if $(KEY),--key $(KEY)))

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check platform workers tests bench

clean:
	rm -rf $(VENV) .pytest_cache

