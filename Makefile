# `make run` serves the demo portal; `make test` runs the whole suite. Both install first.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 5000
FLASK = $(VENV)/bin/flask --app portal

.PHONY: install run test bench clean

install: $(VENV)/.installed

# Reinstall whenever the declared or pinned dependencies change.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $@

run: install
	$(FLASK) init
	$(FLASK) demo
	@echo "Serving on http://127.0.0.1:$(PORT)"
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

test: install
	$(VENV)/bin/pytest

bench: install
	$(VENV)/bin/python bench/pages.py

clean:
	rm -rf $(VENV) instance .pytest_cache
