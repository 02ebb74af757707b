#!/usr/bin/env bash
# Runs Helm 3, building it once from the Go module proxy into a per-user cache.
#
#   install/tools/helm.sh <helm arguments...>
#
# The binary lives in ${XDG_CACHE_HOME:-$HOME/.cache}/flashvol/helm/<version>/helm, so CI and
# developers share one build per version. HELM_VERSION overrides the pinned version.
set -euo pipefail

version="${HELM_VERSION:-v3.22.0}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/flashvol/helm/${version}"
helm="${cache}/helm"

if [[ ! -x "${helm}" ]]; then
    command -v go >/dev/null || { echo "helm.sh: Go is needed to build helm ${version}" >&2; exit 1; }
    mkdir -p "${cache}"
    # Build into a temporary dir and move into place, so an interrupted build never leaves a
    # broken binary behind that later runs would trust.
    tmp="$(mktemp -d "${cache}/.build.XXXXXX")"
    trap 'rm -rf "${tmp}"' EXIT
    echo "helm.sh: building helm ${version} (once; cached in ${cache})" >&2
    GOBIN="${tmp}" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
        go install "helm.sh/helm/v3/cmd/helm@${version}" >&2
    mv "${tmp}/helm" "${helm}"
fi

# Keep helm's own state (repositories, plugins) out of the user's real helm config.
export HELM_CACHE_HOME="${HELM_CACHE_HOME:-${cache}/state/cache}"
export HELM_CONFIG_HOME="${HELM_CONFIG_HOME:-${cache}/state/config}"
export HELM_DATA_HOME="${HELM_DATA_HOME:-${cache}/state/data}"
exec "${helm}" "$@"
