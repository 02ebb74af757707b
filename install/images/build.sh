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
mkdir -p "${work}/rootfs" "${work}/layout/blobs/sha256"
install -m 0755 "${bin_dir}/flashvol-flex" "${bin_dir}/flashvol-provisioner" "${work}/rootfs/"
# The provisioner runs with a read-only root file system; /tmp is an empty mount point.
install -d -m 1777 "${work}/rootfs/tmp"

# Reproducible layer: fixed order, owners and times, no atime/ctime pax records.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' --format=posix \
    --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
    -C "${work}/rootfs" -cf "${work}/layer.tar" .
diff_id="$(sha256sum "${work}/layer.tar" | cut -d' ' -f1)"
gzip -n -9 "${work}/layer.tar"

blob() { # file -> prints "digest size" and moves the file into the blob store
    local digest size
    digest="$(sha256sum "$1" | cut -d' ' -f1)"
    size="$(stat -c %s "$1")"
    mv "$1" "${work}/layout/blobs/sha256/${digest}"
    echo "${digest} ${size}"
}
read -r layer_digest layer_size < <(blob "${work}/layer.tar.gz")

cat > "${work}/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Cmd":["/flashvol-provisioner"],"Env":["PATH=/"],"Labels":{"org.opencontainers.image.title":"flashvol","org.opencontainers.image.version":"${version}","org.opencontainers.image.source":"https://github.com/flashvol/flashvol","org.opencontainers.image.licenses":"Apache-2.0"}},"rootfs":{"type":"layers","diff_ids":["sha256:${diff_id}"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"install/images/build.sh: COPY flashvol-flex flashvol-provisioner /"}]}
JSON
read -r config_digest config_size < <(blob "${work}/config.json")

cat > "${work}/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:${config_digest}","size":${config_size}},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:${layer_digest}","size":${layer_size}}]}
JSON
read -r manifest_digest manifest_size < <(blob "${work}/manifest.json")

printf '{"imageLayoutVersion":"1.0.0"}\n' > "${work}/layout/oci-layout"
cat > "${work}/layout/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:${manifest_digest}","size":${manifest_size},"annotations":{"org.opencontainers.image.ref.name":"${version}","io.containerd.image.name":"${image_name}:${version}"}}]}
JSON
# docker load reads this file; OCI tools ignore it.
cat > "${work}/layout/manifest.json" <<JSON
[{"Config":"blobs/sha256/${config_digest}","RepoTags":["${image_name}:${version}"],"Layers":["blobs/sha256/${layer_digest}"]}]
JSON

mkdir -p "${out_dir}"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' --format=posix \
    --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
    -C "${work}/layout" -cf "${out}.tmp" .
mv "${out}.tmp" "${out}"
echo "build.sh: ${out} (${image_name}:${version}, manifest sha256:${manifest_digest})"
