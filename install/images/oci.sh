# shellcheck shell=bash
# Writes an OCI image layout tarball from a root file system directory, without a Docker daemon:
# one reproducible gzip layer made with tar, the layout written by hand (the same files give the
# same digests), plus Docker's manifest.json so `docker load` and `podman load` take it too.
# Used by install/images/build.sh (the flashvol image) and tests/node/images/build.sh (the test
# node's pause and test images). Sourced, never executed.
#
#   oci_archive ROOTFS IMAGE_NAME TAG CONFIG_JSON CREATED_BY OUT
#     ROOTFS       directory whose content becomes the image's only layer (owners 0:0, mtime 0)
#     IMAGE_NAME   reference without tag, e.g. ghcr.io/flashvol/flashvol
#     TAG          tag, written as the ref.name annotation and into io.containerd.image.name
#     CONFIG_JSON  the image config's "config" object (Cmd, Env, Labels, ...)
#     CREATED_BY   the history entry of the layer
#     OUT          the tarball to write (replaced atomically)
# Prints "<image name>:<tag> sha256:<manifest digest>".

# oci_tar DIR OUT: a tar of DIR's content with fixed order, owners and times, and no
# atime/ctime pax records, so equal content gives equal bytes.
oci_tar() {
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' --format=posix \
        --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
        -C "$1" -cf "$2" .
}

# oci_blob FILE LAYOUT: moves FILE into LAYOUT's blob store; prints "<sha256 hex> <size>".
oci_blob() {
    local digest size
    digest="$(sha256sum "$1" | cut -d' ' -f1)"
    size="$(stat -c %s "$1")"
    mv "$1" "$2/blobs/sha256/${digest}"
    echo "${digest} ${size}"
}

oci_archive() {
    local rootfs="$1" name="$2" tag="$3" config="$4" created_by="$5" out="$6"
    # Next to the output (no trap of ours to clean up a temp dir elsewhere): removed at the end,
    # and a leftover of an interrupted run at the next start.
    local work="${out}.work"
    rm -rf "${work}"
    mkdir -p "${work}/layout/blobs/sha256"

    oci_tar "${rootfs}" "${work}/layer.tar"
    local diff_id
    diff_id="$(sha256sum "${work}/layer.tar" | cut -d' ' -f1)"
    gzip -n -9 "${work}/layer.tar"

    local layer_digest layer_size config_digest config_size manifest_digest manifest_size
    read -r layer_digest layer_size < <(oci_blob "${work}/layer.tar.gz" "${work}/layout")

    cat >"${work}/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":${config},"rootfs":{"type":"layers","diff_ids":["sha256:${diff_id}"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"${created_by}"}]}
JSON
    read -r config_digest config_size < <(oci_blob "${work}/config.json" "${work}/layout")

    cat >"${work}/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:${config_digest}","size":${config_size}},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:${layer_digest}","size":${layer_size}}]}
JSON
    read -r manifest_digest manifest_size < <(oci_blob "${work}/manifest.json" "${work}/layout")

    printf '{"imageLayoutVersion":"1.0.0"}\n' >"${work}/layout/oci-layout"
    cat >"${work}/layout/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:${manifest_digest}","size":${manifest_size},"annotations":{"org.opencontainers.image.ref.name":"${tag}","io.containerd.image.name":"${name}:${tag}"}}]}
JSON
    # docker load reads this file; OCI tools ignore it.
    cat >"${work}/layout/manifest.json" <<JSON
[{"Config":"blobs/sha256/${config_digest}","RepoTags":["${name}:${tag}"],"Layers":["blobs/sha256/${layer_digest}"]}]
JSON

    mkdir -p "$(dirname "${out}")"
    oci_tar "${work}/layout" "${out}.tmp"
    mv "${out}.tmp" "${out}"
    rm -rf "${work}"
    echo "${name}:${tag} sha256:${manifest_digest}"
}
