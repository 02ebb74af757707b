#!/usr/bin/env bash
# Fails when install/manifests/flashvol.yaml differs from a fresh render of the chart.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
committed="${here}/manifests/flashvol.yaml"
fresh="$(mktemp)"
trap 'rm -f "${fresh}"' EXIT

"${here}/render.sh" "${fresh}" 2>/dev/null
if ! diff -u "${committed}" "${fresh}"; then
    echo "check-rendered: ${committed} is stale; run install/render.sh and commit the result" >&2
    exit 1
fi
echo "check-rendered: install/manifests/flashvol.yaml matches the chart"
