#!/usr/bin/env bash
# Builds the default task image (docker/task-runtime/Dockerfile) on a machine that
# cannot reach an image registry.
#
# 1. A Debian bookworm root filesystem with python3 is made by debootstrap from
#    Debian's packages and imported as ${BASE_TAG}.
# 2. The same Dockerfile real deployments use is built FROM that base, under the
#    usual tag ${TASK_IMAGE}.
#
# Idempotent: an image that already exists is kept unless FORCE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_TAG=${BASE_TAG:-hivemind/debian-python:bookworm}
TASK_IMAGE=${TASK_IMAGE:-hivemind/task-runtime:latest}
SUITE=${SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FORCE=${FORCE:-0}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if [ "$FORCE" != 1 ] && have_image "$TASK_IMAGE"; then
  echo "task image $TASK_IMAGE already present"
  exit 0
fi

if [ "$FORCE" = 1 ] || ! have_image "$BASE_TAG"; then
  command -v debootstrap >/dev/null || {
    echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
  rootfs=$(mktemp -d /tmp/hivemind-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "debootstrap $SUITE (minbase + python3) into $rootfs ..."
  debootstrap --variant=minbase --include=python3 "$SUITE" "$rootfs" "$MIRROR" >/tmp/hivemind-debootstrap.log 2>&1 || {
    tail -n 30 /tmp/hivemind-debootstrap.log >&2; exit 1; }
  # Drop caches and logs that only make the image bigger.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$BASE_TAG" >/dev/null
  echo "imported base $BASE_TAG"
fi

DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_TAG" -t "$TASK_IMAGE" docker/task-runtime >/dev/null
echo "built $TASK_IMAGE from $BASE_TAG"
