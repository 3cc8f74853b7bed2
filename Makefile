# Two commands do all the set-up: `make test` and `make book`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.beafx-installed

.PHONY: venv test book book-clean bench clean debian-music

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,book]"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

book: $(STAMP)
	$(VENV)/bin/jupyter-book build book/

book-clean:
	rm -rf book/_build

bench: $(STAMP)
	$(VENV)/bin/beafx bench

clean:
	rm -rf $(VENV) book/_build .pytest_cache
