# shellcheck shell=bash
# Podman on a Debian 12 machine without a Docker engine or an image registry (see
# deploy/OPERATIONS.md, "Containers without a registry"). Source it; idempotent.
#   rssp_podman_setup          installs podman and friends, points CONTAINERS_CONF at a
#                              configuration that uses runc and cgroupfs
#   rssp_base_image [NAME]     makes NAME (default localhost/debian:bookworm-slim) with
#                              debootstrap unless it exists
#   rssp_build_images [TAG]    builds localhost/rssp-engine:TAG and localhost/rssp-gateway:TAG
RSSP_PODMAN_PACKAGES=(podman buildah runc catatonit debootstrap uidmap slirp4netns fuse-overlayfs
  golang-github-containernetworking-plugin-dnsname)  # dnsname: pods find each other by name
RSSP_BASE_IMAGE=${RSSP_BASE_IMAGE:-localhost/debian:bookworm-slim}
_RSSP_CONTAINERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

rssp_podman_setup() {
  rssp_install_packages "${RSSP_PODMAN_PACKAGES[@]}"
  # crun fails here ("cgroups in hybrid mode not supported"); runc works. A private
  # configuration file leaves the machine's /etc/containers alone.
  local conf=${RSSP_CONTAINERS_CONF:-/var/tmp/rssp-containers.conf} hard
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] && hard=1048576
  cat > "$conf.tmp" <<CONF
[containers]
default_ulimits = ["nofile=$hard:$hard", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  mv -f "$conf.tmp" "$conf"
  export CONTAINERS_CONF=$conf
}

# The Debian mirror apt uses on this machine.
_rssp_mirror() {
  local m
  m=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
      grep -oE 'https?://[^ ]+' | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}

rssp_base_image() {
  local name=${1:-$RSSP_BASE_IMAGE} rootfs
  podman image exists "$name" && return 0
  echo "== base image $name (debootstrap)" >&2
  rootfs=$(mktemp -d /var/tmp/rssp-rootfs.XXXXXX)
  debootstrap --variant=minbase bookworm "$rootfs" "$(_rssp_mirror)" >/dev/null
  # Trimmed like the registry's slim image: no docs, no recommends, no .deb cache in layers.
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/rssp-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  cat > "$rootfs/etc/apt/apt.conf.d/99rssp-slim" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
CFG
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
         "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$name" >/dev/null
  rm -rf "$rootfs"
}

rssp_build_images() {
  local tag=${1:-latest} root
  root=$(cd "$_RSSP_CONTAINERS_DIR/../.." && pwd)
  rssp_base_image
  local c
  for c in engine gateway postgres; do
    echo "== image localhost/rssp-$c:$tag" >&2
    podman build -q --layers --build-arg BASE="$RSSP_BASE_IMAGE" \
      -f "$root/deploy/containers/$c.Containerfile" -t "localhost/rssp-$c:$tag" "$root" >/dev/null
  done
}
