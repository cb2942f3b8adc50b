# Two commands for a fresh machine:  make serve   |   make test   (make demo: no provider key needed)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/gateway-*)
STAMP := $(VENV)/.installed

$(STAMP): setup.cfg constraints.txt $(wildcard plugins/*/setup.cfg)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]' $(addprefix -e ,$(PLUGINS))
	touch $(STAMP)

.PHONY: install serve demo test bench fuzz
install: $(STAMP)

serve: $(STAMP)
	$(BIN)/gateway serve $(ARGS)

demo: $(STAMP)
	$(BIN)/gateway demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

fuzz: $(STAMP)
	$(BIN)/python bench/fuzz.py $(ARGS)
