#!/usr/bin/env bash
# Validates the bot's Kubernetes manifests (deploy/kubernetes/*.yaml, but not kustomization.yaml,
# which is kustomize's own format) against the Kubernetes 1.33 schemas, offline (the schemas ship
# with kubernetes-validate, from PyPI) and strict: an unknown or misspelt field fails, as does a
# wrong type or a missing required field.
# kubernetes-validate itself only warns, and exits 0, when it has no schema for a document (a
# misspelt kind or apiVersion) or when a file has no document; here both fail: every document of
# every file must pass.
# Usage: tests/scripts/validate-manifests.sh [FILE...]   (default: deploy/kubernetes/*.yaml)
# Exits 1 naming each file that does not validate.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=1.33.0

command -v kubernetes-validate >/dev/null 2>&1 || {
  echo "validate-manifests: kubernetes-validate is missing (python3 -m pip install kubernetes-validate)" >&2
  exit 2
}

[ "$#" -gt 0 ] || set -- deploy/kubernetes/*.yaml
files=()
for f in "$@"; do
  [ "$(basename "$f")" = kustomization.yaml ] || files+=("$f")
done
[ "${#files[@]}" -gt 0 ] || { echo "validate-manifests: no manifests found" >&2; exit 1; }

failed=0
for f in "${files[@]}"; do
  # One top-level `kind:` per document.
  documents=$(grep -c '^kind:' "$f" || true)
  status=0
  out=$(kubernetes-validate --kubernetes-version "$version" --strict "$f" 2>&1) || status=$?
  passed=$(grep -c ' passed for resource ' <<<"$out" || true)
  if [ "$status" -ne 0 ] || grep -qE '^(WARN|ERROR)' <<<"$out" || [ "$documents" -eq 0 ] \
    || [ "$passed" -ne "$documents" ]; then
    echo "validate-manifests: $f does not validate against Kubernetes $version ($passed of $documents documents passed):" >&2
    echo "$out" >&2
    failed=1
  else
    echo "validate-manifests: $f: $passed document(s) valid for Kubernetes $version"
  fi
done
exit "$failed"
