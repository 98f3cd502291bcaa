# Two commands for a newcomer: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: run test install bench lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first: without a GPU take the CPU build (a local wheel if pip is configured with one,
	# else PyTorch's CPU index); the default GPU build is several GB.
	if command -v nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install -q "torch==$(TORCH_VERSION)"; \
	else \
		$(PY) -m pip install -q --no-index --no-deps "torch==$(TORCH_VERSION)" 2>/dev/null \
		|| $(PY) -m pip install -q "torch==$(TORCH_VERSION)" --index-url $(TORCH_CPU_INDEX) \
			--extra-index-url https://pypi.org/simple; \
	fi
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/profilekit serve --demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) -m bench.engine

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check platform workers tests bench

clean:
	rm -rf $(VENV) .pytest_cache
