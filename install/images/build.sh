#!/usr/bin/env bash
# Builds the flashvol image as an OCI image tarball without a Docker daemon: static binaries from
# cargo, one gzip layer made with tar, the OCI image layout written by hand (reproducible: the
# same binaries give the same digests).
#
#   install/images/build.sh [--skip-cargo]
#
# Output: target/images/flashvol-<version>.oci.tar, an OCI image layout in a tar that also holds
# Docker's manifest.json, so all of these load it:
#   skopeo copy oci-archive:target/images/flashvol-0.1.0.oci.tar docker://REGISTRY/flashvol:0.1.0
#   podman load -i target/images/flashvol-0.1.0.oci.tar
#   docker load -i target/images/flashvol-0.1.0.oci.tar
# IMAGE_NAME overrides the reference written into it (default ghcr.io/flashvol/flashvol).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
target="x86_64-unknown-linux-gnu"
image_name="${IMAGE_NAME:-ghcr.io/flashvol/flashvol}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "${root}/Cargo.toml" | head -n1)"
[[ -n "${version}" ]] || { echo "build.sh: no version in ${root}/Cargo.toml" >&2; exit 1; }
bin_dir="${root}/target/${target}/release"
out_dir="${root}/target/images"
out="${out_dir}/flashvol-${version}.oci.tar"

if [[ "${1:-}" != "--skip-cargo" ]]; then
    # The explicit --target keeps proc-macros buildable for the host while the binaries are static.
    (cd "${root}" && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
        --target "${target}" -p flashvol-flexdriver -p flashvol-provisioner)
fi
for bin in flashvol-flex flashvol-provisioner; do
    [[ -x "${bin_dir}/${bin}" ]] || { echo "build.sh: ${bin_dir}/${bin} is missing" >&2; exit 1; }
    # The flex binary runs on the host under kubelet, the image is FROM scratch: no libc anywhere.
    if ! LC_ALL=C ldd "${bin_dir}/${bin}" 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then
        echo "build.sh: ${bin} is not statically linked:" >&2
        ldd "${bin_dir}/${bin}" >&2
        exit 1
    fi
done

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
mkdir -p "${work}/rootfs"
install -m 0755 "${bin_dir}/flashvol-flex" "${bin_dir}/flashvol-provisioner" "${work}/rootfs/"
# PSO 2.x's snapshot CLI: the provisioner binary started as /snapshot (on PATH=/) is that command,
# so `kubectl exec <provisioner pod> -- snapshot create ...` works; a hard link costs no space.
ln "${work}/rootfs/flashvol-provisioner" "${work}/rootfs/snapshot"
# The provisioner runs with a read-only root file system; /tmp is an empty mount point.
install -d -m 1777 "${work}/rootfs/tmp"

# shellcheck source=oci.sh
. "${here}/oci.sh"
config='{"Cmd":["/flashvol-provisioner"],"Env":["PATH=/"],"Labels":{"org.opencontainers.image.title":"flashvol","org.opencontainers.image.version":"'"${version}"'","org.opencontainers.image.source":"https://github.com/flashvol/flashvol","org.opencontainers.image.licenses":"Apache-2.0"}}'
read -r ref digest < <(oci_archive "${work}/rootfs" "${image_name}" "${version}" "${config}" \
    "install/images/build.sh: COPY flashvol-flex flashvol-provisioner / (snapshot: a hard link to flashvol-provisioner)" "${out}")
echo "build.sh: ${out} (${ref}, manifest ${digest})"
