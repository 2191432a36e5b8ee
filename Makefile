# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install unetrt, export the default variant and print parity
#   make test   - create .venv with the dev extras, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
ARCH   ?= milesial
DEMO_ARGS ?=

.PHONY: demo test venv dev clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=23.1"

# Stamp files make the second run fast: reinstall only when the metadata changes.
$(VENV)/.installed-base: $(VENV)/bin/python setup.cfg pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/bin/python setup.cfg pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e '.[dev,rtx]'
	@touch $@ $(VENV)/.installed-base

venv: $(VENV)/.installed-base
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed-base
	$(VENV)/bin/unet-export --arch $(ARCH) -o export/$(ARCH) --force $(DEMO_ARGS)

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) export .pytest_cache .hypothesis
