# Two commands on a fresh machine: `make demo` (fetches the x2 weights when missing, upscales a
# sample image, exports ONNX, evaluates Set5 when present, quick bench) and `make test`. Both create .venv
# and install the pinned dependencies (constraints/ci.txt) when they are missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED ?= ../shared

.PHONY: demo test lint venv clean

# Browser tests (the web export, the service's page) drive Debian's Chromium through Playwright;
# Playwright's own browser download cannot run here, so the system package is installed once.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium

$(STAMP): pyproject.toml constraints/ci.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints/ci.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/overnet demo --shared $(SHARED)
	$(VENV)/bin/overnet bench --shared $(SHARED)

test: $(STAMP) $(CHROMIUM)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
