#!/usr/bin/env bash
# Builds the task images from their Dockerfiles, on a machine with or without an
# image registry:
#
#   ${TASK_IMAGE} (hivemind/task-runtime:latest)  docker/task-runtime: the default
#       image (Debian's python3 with requests, numpy, pandas, matplotlib, pip, bash, git).
#   ${ML_IMAGE} (hivemind/task-ml:latest)  docker/task-ml, only with --ml (or
#       TASK_ML_IMAGE=1): the default image plus scikit-learn and PyTorch (CPU).
#
# The default image is built FROM ${BASE_IMAGE} (debian:bookworm-slim). When no image
# of that name is here (no registry to pull it from), a Debian bookworm root filesystem
# is made by debootstrap from Debian's packages and imported under that name first; an
# image of that name that was pulled is used as it is. The Dockerfiles install
# everything else with apt from Debian's mirror, the same either way.
#
# Idempotent: each image carries a hash of what it was built from (label
# io.hivemind.build-hash: its Dockerfile and the id of the image it is built FROM); one
# whose hash matches is kept unless FORCE=1, one built from older inputs is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
TASK_IMAGE=${TASK_IMAGE:-hivemind/task-runtime:latest}
ML_IMAGE=${ML_IMAGE:-hivemind/task-ml:latest}
SUITE=${SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FORCE=${FORCE:-0}
WITH_ML=${TASK_ML_IMAGE:-0}
for arg in "$@"; do
  case "$arg" in
    --ml) WITH_ML=1 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (usage: build-task-image.sh [--ml])" >&2; exit 2 ;;
  esac
done

say() { printf '[hivemind] %s\n' "$*"; }
label_of() { docker image inspect -f '{{ index .Config.Labels "io.hivemind.build-hash" }}' "$1" 2>/dev/null || true; }
id_of() { docker image inspect -f '{{ .Id }}' "$1" 2>/dev/null || true; }

tmp=$(mktemp -d /tmp/hivemind-task-image.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The base: a pulled one is kept; a local one (ours carries the label) is remade with FORCE=1.
base_hash=$(printf '%s\n' "$SUITE" minbase | sha256sum | cut -c1-16)
if [ -z "$(id_of "$BASE_IMAGE")" ] || { [ "$FORCE" = 1 ] && [ -n "$(label_of "$BASE_IMAGE")" ]; }; then
  command -v debootstrap >/dev/null || {
    echo "$BASE_IMAGE is not here and cannot be pulled; debootstrap is missing to make it: apt-get install -y debootstrap" >&2; exit 1; }
  say "making the base $BASE_IMAGE: debootstrap $SUITE (minbase) from $MIRROR ..."
  debootstrap --variant=minbase "$SUITE" "$tmp/rootfs" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 || {
    tail -n 30 "$tmp/debootstrap.log" >&2; exit 1; }
  # Drop caches and logs that only make the image bigger.
  rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/var/log/*
  tar -C "$tmp/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL io.hivemind.build-hash=$base_hash" \
    --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$tmp/rootfs"
  say "imported the base $BASE_IMAGE (debootstrap $SUITE)"
fi

# build IMAGE DIR FROM WHAT: builds DIR/Dockerfile FROM the image FROM unless IMAGE is up to date.
build() {
  local image=$1 dir=$2 from=$3 what=$4 hash
  hash=$(cat "$dir/Dockerfile" <(id_of "$from") | sha256sum | cut -c1-16)
  if [ "$FORCE" != 1 ] && [ "$(label_of "$image")" = "$hash" ]; then
    say "task image $image already present (build $hash)"
    return 0
  fi
  say "building $image ($what) FROM $from; apt downloads take a few minutes the first time ..."
  # Host network: apt in the build reaches the mirror the way this machine does.
  DOCKER_BUILDKIT=0 docker build -q --network host --build-arg "BASE_IMAGE=$from" \
    --label "io.hivemind.build-hash=$hash" -t "$image" "$dir" >"$tmp/build.log" 2>&1 || {
    tail -n 30 "$tmp/build.log" >&2; echo "building $image failed" >&2; exit 1; }
  say "built $image (build $hash, $(docker image inspect -f '{{ .Size }}' "$image" | awk '{ printf "%d MB", $1 / 1048576 }'))"
}

build "$TASK_IMAGE" docker/task-runtime "$BASE_IMAGE" 'python3, requests, numpy, pandas, matplotlib, pip, bash, git'
if [ "$WITH_ML" = 1 ]; then
  build "$ML_IMAGE" docker/task-ml "$TASK_IMAGE" 'the default image plus scikit-learn and PyTorch CPU'
fi
