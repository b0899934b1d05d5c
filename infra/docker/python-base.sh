#!/usr/bin/env bash
# Stand-in for python:3.11-slim when that image cannot be pulled (no registry reachable): a
# Debian bookworm minbase root filesystem with the distribution's Python 3.11, pip and venv,
# imported as localhost/python:3.11-slim. Only Debian's package mirror is needed.
#
#   infra/docker/python-base.sh [IMAGE]    (as root; needs debootstrap, and podman or DOCKER=docker)
#
# The Dockerfiles take it through their PYTHON_IMAGE build argument; `make image-*` builds it
# once, when neither it nor python:3.11-slim is available, and records which base was used.
# Same Python minor as the lockfiles (3.11); python is /usr/bin/python, not /usr/local/bin.
set -euo pipefail

IMAGE=${1:-localhost/python:3.11-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3.11,python3.11-venv,python3-pip,python-is-python3,ca-certificates

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/python-base.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT  # the logs beside it stay only when a step failed

echo "python-base: debootstrap bookworm ($PACKAGES) from $MIRROR" >&2
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
  tail -n 20 "$rootfs.log" >&2
  echo "python-base: debootstrap failed (full log: $rootfs.log)" >&2
  exit 1
}
rm -f "$rootfs.log"

# As python:3.11-slim: pip may install into the system interpreter (the Dockerfiles' builder
# stage bootstraps uv with it), and no package caches or docs ride along.
rm -f "$rootfs"/usr/lib/python3.11/EXTERNALLY-MANAGED
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log

engine=${DOCKER:-podman}
tar --numeric-owner -C "$rootfs" -c . | "$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'LABEL org.opencontainers.image.description="stand-in for python:3.11-slim (infra/docker/python-base.sh)"' \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >"$rootfs.log" 2>&1 || {
  tail -n 20 "$rootfs.log" >&2
  echo "python-base: $engine import failed" >&2
  exit 1
}
rm -f "$rootfs.log"
echo "python-base: built $IMAGE" >&2
