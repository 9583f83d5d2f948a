#!/usr/bin/env bash
# The reference of every module, plugin and role, generated rather than written by hand: antsibull-docs
# (requirements-dev.txt), as the community collections use it, on this work tree.
#  1. lint-collection-docs --plugin-docs: the plugins' documentation and the roles' argument specs
#     validate against Ansible's schemas, and every reference in them (M(), P(), O(), ...) resolves;
#  2. collection: the pages, one per module, plugin and role plus the collection's index, written in
#     simplified RST to build/docs/rst (--fail-on-error: a page that cannot be built fails the run);
#  3. sphinx-build -W: the same pages as HTML in build/docs/html (open index.html), warnings as errors.
# Fails on any finding. `make docs` runs it; `make check` and `make test` do too, so it cannot drift.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PROJECT_ROOT"

out="$PROJECT_ROOT/build/docs"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
# antsibull-docs finds collections through ANSIBLE_COLLECTIONS_PATH: this work tree as aiplatform.ollama
# (the dependencies come with the pinned `ansible` package)
mkdir -p "$tree/ansible_collections/aiplatform"
ln -s "$PROJECT_ROOT" "$tree/ansible_collections/aiplatform/ollama"
export ANSIBLE_COLLECTIONS_PATH="$tree"

echo "==> antsibull-docs lint-collection-docs --plugin-docs"
# its findings are reported, and the pages built all the same so that one run shows every problem
lint=0
(cd "$tree/ansible_collections/aiplatform/ollama" && antsibull-docs lint-collection-docs --plugin-docs .) || lint=$?

echo "==> antsibull-docs collection -> build/docs/rst"
rm -rf "$out/rst" "$out/html"
# antsibull-docs writes only into a directory that it alone may write to
mkdir -p "$out" && mkdir -m 700 "$out/rst"
antsibull-docs collection --use-current --squash-hierarchy --output-format simplified-rst --fail-on-error \
  --no-add-antsibull-docs-version --cleanup everything --dest-dir "$out/rst" aiplatform.ollama > "$out/antsibull-docs.log"

echo "==> sphinx-build -W -> build/docs/html"
sphinx-build -q -W --keep-going -b html -c tools/sphinx "$out/rst" "$out/html"
echo "the reference: build/docs/html/index.html ($(ls "$out/rst" | wc -l) pages)"
if [ "$lint" -ne 0 ]; then echo "lint-collection-docs reports the problems above" >&2; exit "$lint"; fi
