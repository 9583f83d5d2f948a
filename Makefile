# The project's entry points. `make demo` and `make test` each set up what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := source tools/env.sh &&
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := build/aiplatform-ollama-$(VERSION).tar.gz
INSTALLED := .collections/ansible_collections/aiplatform/ollama/MANIFEST.json
COLLECTION_SOURCES := $(wildcard galaxy.yml meta/runtime.yml README.md CHANGELOG.md $(shell git ls-files --cached --others --exclude-standard plugins roles playbooks docs 2>/dev/null))
MOLECULE_SCENARIOS := $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
# scenarios that run against the test cluster (tests/services/cluster.py), started around them
CLUSTER_SCENARIOS := flux_apply
# scenarios that install from the release archives and registry tests/services/service_release.py serves
SERVICE_SCENARIOS := service

.PHONY: setup setup-demo test check demo bench lint sanity docs galaxy unit integration integration-local \
  integration-cluster oldest molecule collection clean help

help:
	@echo "make setup   install the toolchain (idempotent)"
	@echo "make demo    run playbooks/site.yml on inventories/local"
	@echo "make test    everything CI runs: lint, sanity, docs, galaxy, unit, oldest, integration, molecule"
	@echo "make bench   benchmarks, one name=value line per figure"
	@echo "make check   the quick tier for developers: lint, sanity, docs, unit (needs .venv: make setup-demo)"
	@echo "make lint    ansible-lint (production profile) and ruff"
	@echo "make docs    the generated reference (antsibull-docs): lint, then build/docs/html/index.html"
	@echo "make galaxy  galaxy-importer on the built tarball: the checks Galaxy runs on an upload"
	@echo "make oldest  sanity and unit tests on the oldest ansible-core claimed (.venv-oldest)"

setup:
	@tools/setup.sh
	@$(MAKE) --no-print-directory collection

# only what the demo runs: no cluster, no podman image, no oldest-core venv
setup-demo:
	@tools/setup.sh demo
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

# The cluster session (the tests on the test cluster and its real node, which mostly wait on controllers
# and pods) starts first and runs beside everything else, which mostly computes. molecule's containers
# share the host's network or have none, so the real node's teardown check of the host sees nothing of
# them but their mounts in podman's storage, which it leaves out (tests/services/host_state.py).
# Every step runs even when an earlier one fails; the summary names the ones that failed.
test: setup
	@mkdir -p build
	@{ $(ENV) pytest -q $(PYTEST_INTEGRATION) $(CLUSTER_TESTS) > build/integration-cluster.log 2>&1; } & cluster=$$!; \
	  failed=""; \
	  for step in lint sanity docs galaxy unit oldest integration-local molecule; do \
	    $(MAKE) --no-print-directory $$step || failed="$$failed $$step"; done; \
	  wait $$cluster || failed="$$failed integration-cluster"; \
	  echo "==> pytest -q $(CLUSTER_TESTS)"; cat build/integration-cluster.log; \
	  if [ -n "$$failed" ]; then echo "make test: failed:$$failed"; exit 1; fi; echo "make test: all passed"

# the quick tier: what a developer runs before pushing
check:
	@test -x .venv/bin/ansible-lint || { echo ".venv is missing: run make setup-demo (or make setup)"; exit 1; }
	@$(MAKE) --no-print-directory lint sanity docs unit

lint:
	$(ENV) ruff check plugins tests benchmarks
	$(ENV) ansible-lint --profile production

sanity:
	$(ENV) tools/sanity.sh

# The module, plugin and role reference, generated from the plugins' documentation and the roles' argument
# specs with antsibull-docs (tools/docs.sh): lint-collection-docs --plugin-docs, then the pages in
# build/docs/rst and their HTML in build/docs/html. Not committed: built from the source each time, it
# cannot be stale; any finding fails.
docs:
	$(ENV) tools/docs.sh

# The checks Galaxy runs when the collection is uploaded: galaxy-importer (requirements-dev.txt) on the
# built tarball, with its ansible-doc and ansible-lint steps and tools/galaxy-importer.cfg's settings
# (no ansible-test, no container, no network). Everything it writes stays in build/galaxy-importer:
# its extracted copy and temp files (tmp/), ansible's and ansible-lint's caches, importer_result.json,
# importer.log. Fails on an import error and on any warning or error it logs, ansible-lint's included.
GALAXY_DIR := build/galaxy-importer
galaxy: $(TARBALL)
	@$(ENV) python -c 'import galaxy_importer' 2>/dev/null || { echo "galaxy-importer is missing: run make setup"; exit 1; }
	@rm -rf $(GALAXY_DIR) && mkdir -p $(GALAXY_DIR)/tmp
	@echo "==> galaxy-importer $(TARBALL)"
	@$(ENV) cd $(GALAXY_DIR) && export GALAXY_IMPORTER_CONFIG="$(CURDIR)/tools/galaxy-importer.cfg" \
	    GALAXY_IMPORTER_TMP_ROOT_DIR="$$PWD/tmp" GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="$$PWD/tmp/ansible" \
	    TMPDIR="$$PWD/tmp" ANSIBLE_HOME="$$PWD/tmp/ansible-home" XDG_CACHE_HOME="$$PWD/tmp/cache" && \
	  rc=0; python -m galaxy_importer.main "$(CURDIR)/$(TARBALL)" > importer.log 2>&1 || rc=$$?; \
	  grep -v '^Loading ' importer.log || true; \
	  if [ $$rc -ne 0 ] || grep -qE '^(WARNING|ERROR|CRITICAL):|Traceback' importer.log; then \
	    echo "galaxy-importer reports the problems above (full log: $(GALAXY_DIR)/importer.log)"; exit 1; fi

unit:
	$(ENV) pytest -q tests/unit

# Two pytest sessions side by side: the tests on the test cluster (and its real node; one per machine)
# mostly wait on controllers and pods while the others mostly compute. The cluster's output follows.
CLUSTER_TESTS := tests/integration/cluster tests/integration/real_node tests/integration/services/test_cluster_exec.py
# the slowest tests of a session are listed at its end
PYTEST_INTEGRATION := --durations=12
integration:
	@mkdir -p build
	@{ $(ENV) pytest -q $(PYTEST_INTEGRATION) $(CLUSTER_TESTS) > build/integration-cluster.log 2>&1; } & cluster=$$!; \
	  rc=0; $(MAKE) --no-print-directory integration-local || rc=$$?; \
	  cluster_rc=0; wait $$cluster || cluster_rc=$$?; \
	  echo "==> pytest -q $(CLUSTER_TESTS) (exit $$cluster_rc)"; cat build/integration-cluster.log; \
	  exit $$(( rc || cluster_rc ))

integration-local:
	$(ENV) pytest -q $(PYTEST_INTEGRATION) $(addprefix --ignore=,$(CLUSTER_TESTS)) tests/integration

integration-cluster:
	$(ENV) pytest -q $(PYTEST_INTEGRATION) $(CLUSTER_TESTS)

# The sanity and unit tests again on the oldest ansible-core meta/runtime.yml claims, in .venv-oldest
# (requirements-oldest.txt, installed by `make setup`); tests/oldest_core.py stands in for the test
# helpers new in ansible-core 2.19. Fails when the claim and the version tested there differ.
OLDEST_ENV := export AIPLATFORM_VENV="$(CURDIR)/.venv-oldest" && $(ENV)
oldest:
	@test -x .venv-oldest/bin/ansible-test || { echo ".venv-oldest is missing: run make setup"; exit 1; }
	@$(OLDEST_ENV) claim=$$(python -c 'import yaml; print(yaml.safe_load(open("meta/runtime.yml"))["requires_ansible"])'); \
	  tested=$$(python -c 'from ansible.release import __version__; print(__version__)'); \
	  [ "$${claim// /}" = ">=$$tested" ] || { echo "meta/runtime.yml requires_ansible '$$claim' but .venv-oldest has" \
	    "ansible-core $$tested: pin the oldest version claimed in requirements-oldest.txt, then make setup"; exit 1; }; \
	  echo "==> ansible-core $$tested, the oldest meta/runtime.yml claims ($$claim)"
	$(OLDEST_ENV) tools/sanity.sh
	$(OLDEST_ENV) python -m pytest -q -p tests.oldest_core tests/unit

molecule:
	@for s in $(MOLECULE_SCENARIOS); do \
	  echo "==> molecule test -s $$s"; \
	  if [[ " $(CLUSTER_SCENARIOS) " == *" $$s "* ]]; then \
	    $(ENV) python -m tests.services.cluster run -- molecule test -s $$s || exit 1; \
	  elif [[ " $(SERVICE_SCENARIOS) " == *" $$s "* ]]; then \
	    $(ENV) python -m tests.services.service_release run -- molecule test -s $$s || exit 1; \
	  else \
	    $(ENV) molecule test -s $$s || exit 1; \
	  fi; \
	done

demo: setup-demo
	$(ENV) tools/demo.sh

bench: setup
	$(ENV) python -m benchmarks

clean:
	rm -rf build .collections tests/output
