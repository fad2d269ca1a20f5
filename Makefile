# Two entry points that set themselves up on a fresh machine (Python 3.11 + pip):
#   make demo   build .venv, generate the demo data set, start the engine, open the app
#   make test   build .venv and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: demo test bench screenshots clean-demo

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "need python3.11 (set PYTHON=...)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip setuptools wheel
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/segtriage demo $(DEMO)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python bench/inference.py
	$(VENV)/bin/python bench/triage_quality.py
	$(VENV)/bin/python bench/tui.py
	$(VENV)/bin/python bench/cpu_threads.py

# the README's screenshots are the snapshot tests' pictures (tests/test_readme.py checks it);
# after `pytest tests/tui/test_snapshots.py --snapshot-update`, run this
SNAPS := tests/tui/__snapshots__/test_snapshots
screenshots:
	cp $(SNAPS)/test_main_screen.svg docs/img/main.svg
	cp $(SNAPS)/test_help_screen.svg docs/img/help.svg

clean-demo:
	-$(VENV)/bin/segtriage engine stop $(DEMO)
	rm -rf $(DEMO) $(DEMO)-truth
