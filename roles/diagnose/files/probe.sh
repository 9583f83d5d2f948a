#!/bin/sh
# The diagnosis' inference probe, run inside the cluster from a short-lived pod the NetworkPolicy
# admits, so it reaches Ollama the way kagent's agents do (roles/diagnose, diagnose_probe_from: cluster).
#
#   sh -c "$(cat probe.sh)" probe URL MODEL TIMEOUT [VALIDATE_CERTS [CA_PEM]]
#
# Asks URL for /api/version, then /api/show for MODEL, then a four-token /api/generate, and stops at
# the first step that fails. Per step it prints "@@step NAME CURL_EXIT HTTP_STATUS" and then at most
# 2000 bytes of the answer (or of curl's error). The filter aiplatform.ollama.exec_probe_result reads it.
# MODEL and URL are validated before they get here (model_ref); they are used quoted all the same.
# TLS as the controller's probes do it: certificates are verified unless VALIDATE_CERTS is "false"
# (diagnose_validate_certs), against CA_PEM when given (the content of diagnose_ca_path, which the
# pod cannot read from the controller), else against the image's CA bundle.
set -u
url=$1 model=$2 timeout=$3 validate_certs=${4:-true} ca=${5:-}
work=$(mktemp -d) || exit 90
trap 'rm -rf "$work"' EXIT
if [ "$validate_certs" != false ] && [ -n "$ca" ]; then
  printf '%s\n' "$ca" >"$work/ca.pem" || exit 90
fi

step() {
  name=$1
  shift
  if [ "$validate_certs" = false ]; then
    set -- -k "$@"
  elif [ -s "$work/ca.pem" ]; then
    set -- --cacert "$work/ca.pem" "$@"
  fi
  code=$(curl -sS -m "$timeout" -o "$work/body" -w '%{http_code}' "$@" 2>"$work/err")
  rc=$?
  echo "@@step $name $rc ${code:-000}"
  if [ "$rc" -ne 0 ]; then head -c 2000 "$work/err"; else head -c 2000 "$work/body"; fi
  echo
  [ "$rc" -eq 0 ] && [ "${code:-000}" -ge 200 ] && [ "${code:-000}" -lt 300 ]
}

step version "$url/api/version" &&
  step model -H 'Content-Type: application/json' -d "{\"model\":\"$model\"}" "$url/api/show" &&
  step generate -H 'Content-Type: application/json' \
    -d "{\"model\":\"$model\",\"prompt\":\"Say ok\",\"stream\":false,\"options\":{\"num_predict\":4,\"temperature\":0,\"seed\":0}}" \
    "$url/api/generate"
exit 0
