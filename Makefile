# mailyard — the two commands a fresh machine needs:
#   make demo   set up a virtualenv, install, and start the server on ./var (loopback ports)
#   make test   set up and run the whole test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test setup lint bench compare drills fuzz clean

$(BIN)/mailyard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/mailyard

demo: setup
	$(BIN)/mailyard --state ./var demo

lint: setup
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python bench/disk_ceiling.py
	$(BIN)/python bench/smtp_ingest.py
	$(BIN)/python bench/remote.py
	$(BIN)/python bench/store_large.py
	$(BIN)/python bench/imap_large.py
	$(BIN)/python bench/imap_idle.py

# mailyard against Postfix + Dovecot on loopback (installs them from Debian; root).
compare: setup
	bench/reference/install.sh
	$(BIN)/python bench/compare.py --write-results

# The reliability drills at full size (the short form runs with `make test`).
drills: setup
	MAILYARD_DRILLS=long $(BIN)/pytest -s -m drill tests/drills

# The seeded fuzzers for the SMTP, IMAP, POP3 and MIME parsers (FUZZ_SECONDS each).
fuzz: setup
	$(BIN)/python -m fuzz.run --seconds $${FUZZ_SECONDS:-60}

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
