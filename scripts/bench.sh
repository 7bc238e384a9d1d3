#!/usr/bin/env bash
# Runs the benchmarks in bench/ and rewrites bench/README.md with their figures.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# What a benchmark left on the host (each removes its own stacks; this catches what a
# crash or kill left): worker containers of benchmark stacks, mounts and loop devices
# under the benchmarks' folders. Listed loudly, then removed.
leftovers() {
  local tmp=${TMPDIR:-/tmp} found=0 id m dev
  for id in $(docker ps -aq --filter label=io.hivemind.managed=true 2>/dev/null); do
    case "$(docker inspect -f '{{index .Config.Labels "io.hivemind.instance"}}' "$id" 2>/dev/null)" in
      hmtest-bench-*) log "LEFTOVER container $(docker inspect -f '{{.Name}}' "$id")"; docker rm -f -v "$id" >/dev/null || true; found=1 ;;
    esac
  done
  for m in $(awk -v p="$tmp/hm-bench-" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    log "LEFTOVER mount $m"; umount "$m" 2>/dev/null || umount -l "$m" || true; found=1
  done
  for dev in /sys/block/loop*/loop/backing_file; do
    [ -f "$dev" ] || continue
    case "$(cat "$dev")" in
      "$tmp"/hm-bench-*) d=/dev/$(basename "$(dirname "$(dirname "$dev")")"); log "LEFTOVER loop device $d"; losetup -d "$d" || true; found=1 ;;
    esac
  done
  for m in "$tmp"/hm-bench-*-??????; do
    [ -e "$m" ] || continue
    log "LEFTOVER folder $m"; rm -rf "$m" || true; found=1
  done
  [ "$found" = 0 ] || log "the benchmarks left the things above behind (removed now)"
}

bash scripts/setup.sh
npm run --silent build
RUN=$(mktemp -d /tmp/hivemind-bench.XXXXXX)
trap 'stop_redis "$RUN"; rm -rf "$RUN"; leftovers' EXIT
export TEST_REDIS_URL; TEST_REDIS_URL=$(start_redis "$RUN")
for b in dist/bench/*.bench.js; do
  log "benchmark $(basename "$b" .bench.js)"
  node "$b"
done
