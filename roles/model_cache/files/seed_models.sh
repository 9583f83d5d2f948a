#!/bin/sh
# Seeds the Ollama model store on the cache volume before any Ollama pod mounts it: a short-lived
# `ollama serve` on loopback pulls each model (the same code path as the chart's startup pull, but
# in its own pod, so the download neither blocks the server's readiness nor counts against its
# memory limit as page cache), then creates each thread-aligned served model, so that the servers
# mount a finished store read-only.
#
# Environment:
#   OLLAMA_MODELS               the model store on the volume (required)
#   MODEL_CACHE_MODELS          models to pull, separated by spaces, commas or newlines (required)
#   MODEL_CACHE_SERVED_MODELS   served models to create, one line each: <base> <served> <num_thread>
#                               (`ollama create <served>` FROM <base>, one of the models pulled, with
#                               PARAMETER num_thread); the names come computed, never derived here
#   MODEL_CACHE_REMOVE_MODELS   models to remove after the seed, separated like MODEL_CACHE_MODELS:
#                               `ollama rm` deletes each manifest and the blobs no other manifest uses
#   MODEL_CACHE_INSECURE        "true" for a plain-HTTP registry (ollama pull --insecure)
#   OLLAMA_BIN                  the ollama binary (default: ollama from PATH)
#   MODEL_CACHE_PORT            loopback port of the short-lived server (default 11434)
#   MODEL_CACHE_START_TIMEOUT   seconds to wait for the server to answer (default 120)
# Exits 0 when every model is in the store and `ollama show` reads it (a served model with its
# num_thread), non-zero otherwise.
set -u

log() { echo "model-cache: $*"; }
die() { echo "model-cache: ERROR: $*" >&2; exit 1; }

[ -n "${OLLAMA_MODELS:-}" ] || die "OLLAMA_MODELS is not set: point it at the model store on the cache volume"
models=$(printf '%s' "${MODEL_CACHE_MODELS:-}" | tr ',\n\t' '   ')
# split the list on blanks only, never expanding a name as a pathname pattern
set -f
# shellcheck disable=SC2086 # the split is the point
set -- $models
set +f
[ "$#" -gt 0 ] || die "MODEL_CACHE_MODELS is empty: name at least one model, e.g. qwen2.5:72b"
ollama="${OLLAMA_BIN:-ollama}"
command -v "$ollama" >/dev/null 2>&1 || die "no ollama binary at '$ollama': set OLLAMA_BIN"
insecure=""
[ "${MODEL_CACHE_INSECURE:-false}" = true ] && insecure="--insecure"
start_timeout="${MODEL_CACHE_START_TIMEOUT:-120}"

# A model to remove must not be one this run seeds: both lists come from the role, checked here too.
removals=$(printf '%s' "${MODEL_CACHE_REMOVE_MODELS:-}" | tr ',\n\t' '   ')
set -f
for name in $removals; do
  case "$name" in
    *[!A-Za-z0-9_.:/-]*) die "MODEL_CACHE_REMOVE_MODELS: '$name' is not a model name" ;;
  esac
  case " $* " in
    *" $name "*) die "MODEL_CACHE_REMOVE_MODELS names $name, which MODEL_CACHE_MODELS seeds" ;;
  esac
done
set +f

# Every served line is checked before the server starts. The names reach ollama as quoted arguments
# and a Modelfile's FROM line, never the text of a script.
pulled=" $* "
served_models="${MODEL_CACHE_SERVED_MODELS:-}"
served_count=0
while read -r base served threads extra; do
  [ -n "$base" ] || continue
  line="'$base${served:+ $served}${threads:+ $threads}${extra:+ $extra}'"
  if [ -z "$threads" ] || [ -n "$extra" ]; then
    die "MODEL_CACHE_SERVED_MODELS line $line is not '<base> <served> <num_thread>'"
  fi
  for name in "$base" "$served"; do
    case "$name" in
      *[!A-Za-z0-9_.:/-]*) die "MODEL_CACHE_SERVED_MODELS line $line: '$name' is not a model name" ;;
    esac
  done
  case "$threads" in
    *[!0-9]*|0*) die "MODEL_CACHE_SERVED_MODELS line $line: num_thread '$threads' is not a whole number of at least 1" ;;
  esac
  [ "$served" != "$base" ] ||
    die "MODEL_CACHE_SERVED_MODELS line $line: the served model would overwrite its base"
  case "$pulled" in
    *" $base "*) ;;
    *) die "MODEL_CACHE_SERVED_MODELS line $line: its base '$base' is not in MODEL_CACHE_MODELS, so it is not seeded" ;;
  esac
  served_count=$((served_count + 1))
done <<EOF
$served_models
EOF

export OLLAMA_HOST="127.0.0.1:${MODEL_CACHE_PORT:-11434}"
# keep -partial files so a rerun resumes, and never prune a store another server may use
export OLLAMA_NOPRUNE=1
mkdir -p "$OLLAMA_MODELS" || die "cannot create $OLLAMA_MODELS: is the volume mounted and writable?"
work=$(mktemp -d) || die "cannot create a temporary directory"
"$ollama" serve >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
trap 'exit 143' TERM INT

started=$(date +%s)
until "$ollama" list >/dev/null 2>&1; do
  if ! kill -0 "$server" 2>/dev/null; then
    tail -n 20 "$work/serve.log" >&2
    die "ollama serve exited before answering on $OLLAMA_HOST (its last lines are above)"
  fi
  if [ $(($(date +%s) - started)) -ge "$start_timeout" ]; then
    tail -n 20 "$work/serve.log" >&2
    die "ollama serve did not answer on $OLLAMA_HOST within ${start_timeout}s (its last lines are above)"
  fi
  sleep 1
done
log "$("$ollama" --version 2>&1 | tail -n 1), store $OLLAMA_MODELS"

explain() {
  case "$2" in
    *"file does not exist"*|*"not found"*|*"manifest unknown"*)
      echo "$1 is not in its registry: check the model name and tag (the registry answered: $2)" ;;
    *"no space left"*|*"disk quota"*)
      echo "the volume holding $OLLAMA_MODELS is full while pulling $1 ($2): grow the claim (model_cache_storage_size); the pull resumes" ;;
    *"dial tcp"*|*"no such host"*|*"connection refused"*|*"i/o timeout"*|*"tls:"*|*"x509"*|*"http response to HTTPS"*)
      echo "cannot reach the registry of $1 from this pod ($2): check egress, DNS and the proxy (HTTPS_PROXY in the Job's environment); a plain-HTTP registry needs insecure" ;;
    *)
      echo "pulling $1 failed: $2" ;;
  esac
}


last_line() {
  tr '\r' '\n' <"$1" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | grep -v '^[[:space:]]*$' | tail -n 1
}

failed=0
ready=" "
for model in "$@"; do
  log "pulling $model"
  began=$(date +%s)
  # the progress bars are terminal redraws; only the outcome goes to the log
  if "$ollama" pull ${insecure:+"$insecure"} "$model" >"$work/pull.log" 2>&1 </dev/null; then
    if "$ollama" show "$model" >"$work/show.log" 2>&1 </dev/null; then
      log "$model ready in $(($(date +%s) - began))s: $("$ollama" list | awk -v m="$model" 'NR > 1 && ($1 == m || $1 == m ":latest") {print "id " $2 ", " $3 " " $4}')"
      ready="$ready$model "
      continue
    fi
    reason=$(tail -n 1 "$work/show.log")
    echo "model-cache: ERROR: $model was pulled but ollama show cannot read it: $reason" >&2
  else
    reason=$(last_line "$work/pull.log")
    echo "model-cache: ERROR: $(explain "$model" "${reason#Error: }")" >&2
  fi
  failed=$((failed + 1))
done

# The Modelfile is alone in its directory under a name no model has: ollama create reads a FROM that
# names a file beside the Modelfile as that file.
mkdir -p "$work/served" || die "cannot create a directory in $work"
modelfile="$work/served/.Modelfile"
while read -r base served threads _extra; do
  [ -n "$base" ] || continue
  case "$ready" in
    *" $base "*) ;;
    *) echo "model-cache: ERROR: $served not created: its base $base was not seeded (above)" >&2
       failed=$((failed + 1)); continue ;;
  esac
  log "creating $served from $base with num_thread $threads"
  began=$(date +%s)
  printf 'FROM %s\nPARAMETER num_thread %s\n' "$base" "$threads" >"$modelfile"
  if ! "$ollama" create "$served" -f "$modelfile" >"$work/create.log" 2>&1 </dev/null; then
    echo "model-cache: ERROR: creating $served from $base failed: $(last_line "$work/create.log")" >&2
    failed=$((failed + 1))
    continue
  fi
  if "$ollama" show "$served" --parameters 2>"$work/show.log" </dev/null |
      awk -v n="$threads" '$1 == "num_thread" && $2 == n {found = 1} END {exit !found}'; then
    log "$served ready in $(($(date +%s) - began))s: num_thread $threads"
  else
    echo "model-cache: ERROR: $served was created but ollama show does not report num_thread $threads: $(last_line "$work/show.log")" >&2
    failed=$((failed + 1))
  fi
done <<EOF
$served_models
EOF
# Removals come last, once every model this run seeds is in place, and only when they all are.
if [ -n "$removals" ] && [ "$failed" -eq 0 ]; then
  before=$(du -sk "$OLLAMA_MODELS/blobs" 2>/dev/null | cut -f1)
  set -f
  for name in $removals; do
    if ! "$ollama" show "$name" >/dev/null 2>&1 </dev/null; then
      log "$name is not in the store: nothing to remove"
      continue
    fi
    if "$ollama" rm "$name" >"$work/rm.log" 2>&1 </dev/null; then
      log "removed $name"
    else
      echo "model-cache: ERROR: removing $name failed: $(last_line "$work/rm.log")" >&2
      failed=$((failed + 1))
    fi
  done
  set +f
  after=$(du -sk "$OLLAMA_MODELS/blobs" 2>/dev/null | cut -f1)
  log "removals freed $(( (${before:-0} - ${after:-0}) * 1024 )) bytes of blobs"
fi
total=$(($# + served_count))
[ "$failed" -eq 0 ] || die "$failed of $total model(s) not seeded; the models that failed are named above"
log "all $total model(s) are in $OLLAMA_MODELS"
