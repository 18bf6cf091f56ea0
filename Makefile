# The two commands of the README: `make demo` and `make test`. Each creates the
# virtualenv and installs the project on first use; nothing else to install.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: demo test bench bench-bulk clean kafka

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/clvstream demo $(ARGS)

# The pinned Apache Kafka broker (deploy/kafka/pom.xml) the tests and the bench run on:
# fetched once with Maven into var/kafka/<version>/lib; a no-op when already there.
kafka: $(STAMP)
	$(VENV)/bin/python -m streams.kafka.install

# Exit code 5 (no tests collected) is a failure too.
test: $(STAMP) kafka
	$(VENV)/bin/pytest $(ARGS)

bench: $(STAMP) kafka
	$(VENV)/bin/python bench/run.py $(ARGS)

# The bulk rebuild of 1M customers, then the restore from the changelog it wrote, on one Kafka node
# it starts (~7 min on 2 cores, 2026-12-08); ARGS="--customers 100000 --events 220000" for a short run.
bench-bulk: $(STAMP) kafka
	$(VENV)/bin/python bench/bulk.py --restore $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
