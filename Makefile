# `make run` serves the demo portal; `make test` runs the whole suite. Both install first.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 5000
FLASK = $(VENV)/bin/flask --app portal

.PHONY: install browser messages run test test-sqlite test-postgres bench load clean

CATALOGUES = portal/translations/ja/LC_MESSAGES/messages.mo

install: $(VENV)/.installed $(CATALOGUES)

# Reinstall whenever the declared or pinned dependencies change.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $@

# The page tests drive Debian's Chromium (Playwright's own download does not work here) and need
# Japanese fonts to draw Japanese text. Installing them needs root and the Debian mirror.
browser:
	@if command -v chromium >/dev/null && fc-list :lang=ja | grep -q .; then echo "Chromium and CJK fonts present"; \
	else apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver fonts-noto-cjk; fi

# Message catalogues are compiled at install; the .po files are the source.
%.mo: %.po $(VENV)/.installed
	$(VENV)/bin/pybabel compile -i $< -o $@

# After changing interface strings: extract them and merge them into the catalogues to translate.
messages: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F portal/translations/babel.cfg -k _l -o portal/translations/messages.pot --no-location --sort-output .
	$(VENV)/bin/pybabel update -i portal/translations/messages.pot -d portal/translations --no-fuzzy-matching --no-wrap

run: install
	$(FLASK) init
	$(FLASK) demo
	@echo "Serving on http://127.0.0.1:$(PORT)"
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

# Both databases at once, in two processes: the suite on SQLite here, and on a throw-away
# PostgreSQL server (.ci/with-postgres) logged to .pytest-postgres.log and summarised at the end.
test: install
	@.ci/with-postgres $(VENV)/bin/pytest -q -rfE -p no:cacheprovider >.pytest-postgres.log 2>&1 & postgres=$$!; \
	$(VENV)/bin/pytest -p no:cacheprovider; sqlite=$$?; \
	wait $$postgres; pg=$$?; \
	echo "--- the same suite on PostgreSQL (full log: .pytest-postgres.log) ---"; \
	tail -n 40 .pytest-postgres.log; \
	test $$sqlite -eq 0 && test $$pg -eq 0

test-sqlite: install
	$(VENV)/bin/pytest

test-postgres: install
	.ci/with-postgres $(VENV)/bin/pytest

bench: install
	$(VENV)/bin/python bench/pages.py

load: install
	$(VENV)/bin/python bench/load.py

clean:
	rm -rf $(VENV) instance .pytest_cache .pytest-postgres.log
