# The project's entry points. `make demo` and `make test` each set up what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := source tools/env.sh &&
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := build/aiplatform-ollama-$(VERSION).tar.gz
INSTALLED := .collections/ansible_collections/aiplatform/ollama/MANIFEST.json
COLLECTION_SOURCES := $(wildcard galaxy.yml meta/runtime.yml README.md $(shell git ls-files --cached --others --exclude-standard plugins roles playbooks 2>/dev/null))
MOLECULE_SCENARIOS := $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
# scenarios that run against the test cluster (tests/services/cluster.py), started around them
CLUSTER_SCENARIOS := flux_apply

.PHONY: setup test demo bench lint sanity unit integration molecule collection clean help

help:
	@echo "make setup   install the toolchain (idempotent)"
	@echo "make demo    run playbooks/site.yml on inventories/local"
	@echo "make test    everything CI runs: lint, sanity, unit, integration, molecule"
	@echo "make bench   benchmarks, one name=value line per figure"
	@echo "make lint    ansible-lint (production profile) and ruff"

setup:
	@tools/setup.sh
	@$(MAKE) --no-print-directory collection

collection: $(INSTALLED)

$(TARBALL): $(COLLECTION_SOURCES)
	@mkdir -p build
	$(ENV) ansible-galaxy collection build --force --output-path build >/dev/null
	@echo "built $@"

$(INSTALLED): $(TARBALL)
	$(ENV) ansible-galaxy collection install --force --offline --no-deps -p .collections $(TARBALL) >/dev/null
	@touch $@
	@echo "installed aiplatform.ollama $(VERSION) into .collections"

test: setup
	@$(MAKE) --no-print-directory lint sanity unit integration molecule

lint:
	$(ENV) ruff check plugins tests benchmarks
	$(ENV) ansible-lint --profile production

sanity:
	$(ENV) tools/sanity.sh

unit:
	$(ENV) pytest -q tests/unit

integration:
	$(ENV) pytest -q tests/integration

molecule:
	@for s in $(MOLECULE_SCENARIOS); do \
	  echo "==> molecule test -s $$s"; \
	  if [[ " $(CLUSTER_SCENARIOS) " == *" $$s "* ]]; then \
	    $(ENV) python -m tests.services.cluster run -- molecule test -s $$s || exit 1; \
	  else \
	    $(ENV) molecule test -s $$s || exit 1; \
	  fi; \
	done

demo: setup
	$(ENV) tools/demo.sh

bench: setup
	$(ENV) python -m benchmarks

clean:
	rm -rf build .collections tests/output
