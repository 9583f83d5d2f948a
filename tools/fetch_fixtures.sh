#!/usr/bin/env bash
# The pinned artefacts the tests read: the otwld `ollama` chart 1.53.0 and the Flux CRDs. Where the
# shared fixtures exist they are used as they are; a clone without them gets the same artefacts from
# their upstream sources (online, once) into the cache, which tools/env.sh then points the tests at.
# Nothing is copied into the repository. Fails, never skips, when they cannot be had.
set -euo pipefail
source "$(dirname "$0")/env.sh"

CHART_VERSION=1.53.0
CHART_REPO=https://helm.otwld.com/
chart="$AIPLATFORM_FIXTURES_DIR/charts/ollama-$CHART_VERSION"
crds="$AIPLATFORM_FIXTURES_DIR/flux-crds"

if [ -f "$chart/Chart.yaml" ] && [ -d "$crds" ]; then exit 0; fi
if [ "$AIPLATFORM_FIXTURES_DIR" != "$AIPLATFORM_OLLAMA_CACHE/fixtures" ]; then
  echo "error: AIPLATFORM_FIXTURES_DIR=$AIPLATFORM_FIXTURES_DIR lacks charts/ollama-$CHART_VERSION or flux-crds;" \
       "point it at a complete copy of the fixtures, or unset it to fetch them into the cache" >&2
  exit 1
fi

echo "==> fetching the ollama chart $CHART_VERSION and the Flux CRDs into $AIPLATFORM_FIXTURES_DIR"
if [ ! -f "$chart/Chart.yaml" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  HELM_CACHE_HOME="$tmp/helm" HELM_CONFIG_HOME="$tmp/helm" HELM_DATA_HOME="$tmp/helm" \
    "$HELM_BIN" pull ollama --repo "$CHART_REPO" --version "$CHART_VERSION" --untar --untardir "$tmp/chart" || {
      echo "error: cannot download the ollama chart $CHART_VERSION from $CHART_REPO (offline?);" \
           "set AIPLATFORM_FIXTURES_DIR to a directory holding charts/ollama-$CHART_VERSION and flux-crds" >&2
      exit 1
    }
  mkdir -p "$(dirname "$chart")"
  rm -rf "$chart"
  mv "$tmp/chart/ollama" "$chart"
fi
# the CRDs of the Flux controllers tools/build_cluster.sh built, at their pinned versions
mkdir -p "$crds"
cp "$CLUSTER_ASSETS_DIR"/flux-crds/*.yaml "$crds/"
