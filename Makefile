# The README's two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
ARGS   ?=

.PHONY: demo test lint format install clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("plantwatch needs Python 3.11+") if sys.version_info < (3, 11) else None'
	@echo "make: creating $(VENV) (first run, or pyproject.toml changed)"
	@$(PYTHON) -m venv $(VENV)
	@echo "make: installing plantwatch and its dependencies into $(VENV) (about a minute) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,aws]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)
	@echo "make: $(VENV) ready; the CLI is $(BIN)/plantwatch"

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/plantwatch demo $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(ARGS)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
