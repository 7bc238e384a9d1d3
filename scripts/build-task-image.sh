#!/usr/bin/env bash
# Builds the default task image (docker/task-runtime/Dockerfile) on a machine that
# cannot reach an image registry.
#
# 1. A Debian bookworm root filesystem with python3 and pip is made by debootstrap
#    from Debian's packages and imported as ${BASE_TAG}.
# 2. The same Dockerfile real deployments use is built FROM that base, under the
#    usual tag ${TASK_IMAGE}.
#
# Idempotent: each image carries a hash of what it was built from (label
# io.hivemind.build-hash); one whose hash matches is kept unless FORCE=1, one built
# from older inputs is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_TAG=${BASE_TAG:-hivemind/debian-python:bookworm}
TASK_IMAGE=${TASK_IMAGE:-hivemind/task-runtime:latest}
SUITE=${SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FORCE=${FORCE:-0}
# pip: the executor's install step runs `python3 -m pip install --target` in this image.
INCLUDE=python3,python3-pip

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
label_of() { docker image inspect -f "{{ index .Config.Labels \"io.hivemind.build-hash\" }}" "$1" 2>/dev/null || true; }

base_hash=$(printf '%s\n' "$SUITE" "$INCLUDE" | sha256sum | cut -c1-16)
task_hash=$(cat docker/task-runtime/Dockerfile <(echo "$base_hash") | sha256sum | cut -c1-16)

if [ "$FORCE" != 1 ] && [ "$(label_of "$TASK_IMAGE")" = "$task_hash" ]; then
  echo "task image $TASK_IMAGE already present (build $task_hash)"
  exit 0
fi

if [ "$FORCE" = 1 ] || [ "$(label_of "$BASE_TAG")" != "$base_hash" ]; then
  command -v debootstrap >/dev/null || {
    echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
  rootfs=$(mktemp -d /tmp/hivemind-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "debootstrap $SUITE (minbase + $INCLUDE) into $rootfs ..."
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs" "$MIRROR" >/tmp/hivemind-debootstrap.log 2>&1 || {
    tail -n 30 /tmp/hivemind-debootstrap.log >&2; exit 1; }
  # Drop caches and logs that only make the image bigger.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL io.hivemind.build-hash=$base_hash" \
    --change 'CMD ["/bin/bash"]' - "$BASE_TAG" >/dev/null
  echo "imported base $BASE_TAG (build $base_hash)"
fi

DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_TAG" --label "io.hivemind.build-hash=$task_hash" \
  -t "$TASK_IMAGE" docker/task-runtime >/dev/null
echo "built $TASK_IMAGE from $BASE_TAG (build $task_hash)"
