#!/usr/bin/env bash
# Prints the commands of the shell blocks under the README's "## Quick start" heading, one per
# line, exactly as written (CI runs them as they stand).
set -euo pipefail
awk '
  /^## / { inside = ($0 ~ /^## Quick start/) }
  inside && /^```(sh|bash)/ { block = 1; next }
  inside && block && /^```/ { block = 0; next }
  inside && block && NF { print }
' "${1:-README.md}"
