#!/usr/bin/env bash
# Tests the image tarball from build.sh the way a runtime would use it: every blob matches its
# digest and size, the layer unpacks with plain tar, and the binaries run from the unpacked root
# file system alone (chroot: no host libraries), `flashvol-flex init` answering Success.
#
#   install/images/test.sh [IMAGE_TAR]    (default: the one build.sh writes)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "${root}/Cargo.toml" | head -n1)"
image="${1:-${root}/target/images/flashvol-${version}.oci.tar}"
[[ -f "${image}" ]] || { echo "test.sh: ${image} not found; run install/images/build.sh" >&2; exit 1; }
command -v jq >/dev/null || { echo "test.sh: jq is required" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

mkdir "${work}/layout" "${work}/rootfs"
tar -xf "${image}" -C "${work}/layout"
layout="${work}/layout"

jq -e '.imageLayoutVersion == "1.0.0"' "${layout}/oci-layout" >/dev/null || fail "oci-layout"
check_blob() { # "sha256:<hex>" size -> path of the verified blob
    local hex="${1#sha256:}" path="${layout}/blobs/sha256/${1#sha256:}"
    [[ -f "${path}" ]] || fail "blob $1 is missing"
    [[ "$(sha256sum "${path}" | cut -d' ' -f1)" == "${hex}" ]] || fail "blob $1 does not match its digest"
    [[ "$(stat -c %s "${path}")" == "$2" ]] || fail "blob $1 is not $2 bytes"
    echo "${path}"
}
read -r m_digest m_size < <(jq -r '.manifests[0] | "\(.digest) \(.size)"' "${layout}/index.json")
manifest="$(check_blob "${m_digest}" "${m_size}")"
jq -e '.schemaVersion == 2 and .mediaType == "application/vnd.oci.image.manifest.v1+json"' "${manifest}" >/dev/null ||
    fail "manifest media type"
read -r c_digest c_size < <(jq -r '.config | "\(.digest) \(.size)"' "${manifest}")
config="$(check_blob "${c_digest}" "${c_size}")"
jq -e '.os == "linux" and .architecture == "amd64"' "${config}" >/dev/null || fail "config platform"
n=0
while read -r l_digest l_size; do
    layer="$(check_blob "${l_digest}" "${l_size}")"
    diff_id="$(jq -r ".rootfs.diff_ids[${n}]" "${config}")"
    [[ "sha256:$(gzip -dc "${layer}" | sha256sum | cut -d' ' -f1)" == "${diff_id}" ]] ||
        fail "layer ${n}: uncompressed digest is not the config's diff_id ${diff_id}"
    tar -xzf "${layer}" -C "${work}/rootfs"
    n=$((n + 1))
done < <(jq -r '.layers[] | "\(.digest) \(.size)"' "${manifest}")
[[ "${n}" -ge 1 ]] || fail "the manifest has no layers"
docker_cfg="$(jq -r '.[0].Config' "${layout}/manifest.json")"
[[ "${docker_cfg}" == "blobs/sha256/${c_digest#sha256:}" ]] || fail "docker manifest.json names another config"
pass "layout: index -> manifest -> config and ${n} layer(s), all digests and sizes verified"

if command -v umoci >/dev/null; then
    umoci unpack --rootless --image "${layout}:${version}" "${work}/bundle" >/dev/null ||
        fail "umoci cannot unpack the image"
    cmp -s "${work}/bundle/rootfs/flashvol-flex" "${work}/rootfs/flashvol-flex" ||
        fail "umoci and tar unpack different files"
    pass "umoci unpacks the same root file system"
fi

for bin in flashvol-flex flashvol-provisioner snapshot; do
    [[ -x "${work}/rootfs/${bin}" ]] || fail "/${bin} is not in the image"
done
# chroot into the image root: if either binary needed a library or a loader, it could not start.
run_in_image() { chroot "${work}/rootfs" "$@"; }
if [[ "$(id -u)" -ne 0 ]]; then
    echo "test.sh: not root, running the binaries without chroot" >&2
    run_in_image() { local bin="$1"; shift; env -i "${work}/rootfs${bin}" "$@"; }
fi

init_out="$(run_in_image /flashvol-flex init)" || fail "flashvol-flex init exited $?: ${init_out}"
echo "${init_out}" | jq -e '.status == "Success" and .capabilities.attach == false' >/dev/null ||
    fail "flashvol-flex init printed ${init_out}"
pass "flashvol-flex init from the image: ${init_out}"

help_out="$(run_in_image /flashvol-provisioner --help 2>&1)" || fail "flashvol-provisioner --help exited $?: ${help_out}"
grep -q -- "--provisioner-name" <<<"${help_out}" || fail "flashvol-provisioner --help does not list --provisioner-name: ${help_out}"
pass "flashvol-provisioner --help from the image"

# PSO's snapshot CLI: /snapshot on PATH=/ is the provisioner binary started under that name.
[[ "$(stat -c %i "${work}/rootfs/snapshot")" == "$(stat -c %i "${work}/rootfs/flashvol-provisioner")" ]] ||
    fail "/snapshot is not a hard link to /flashvol-provisioner"
snap_out="$(run_in_image /snapshot --help 2>&1)" || fail "snapshot --help exited $?: ${snap_out}"
grep -q "Exit status" <<<"${snap_out}" && grep -q "create" <<<"${snap_out}" ||
    fail "snapshot --help from the image is not the snapshot CLI: ${snap_out}"
set +e
run_in_image /snapshot create >/dev/null 2>&1
status=$?
set -e
[[ "${status}" -eq 2 ]] || fail "snapshot create without a claim exited ${status}, expected 2 (usage)"
pass "/snapshot from the image is the snapshot CLI (--help, usage errors exit 2)"
