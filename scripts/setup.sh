#!/usr/bin/env bash
# The runtime setup (npm run worker and npm run demo run it): makes a fresh Debian 12
# machine with Node.js 20 ready to run HiveMind Worker, and installs nothing else.
#
#   Debian packages, without apt's recommended packages:
#     docker.io     the task runtime (unless DOCKER_ENABLED=false)
#     bubblewrap    the process runtime's sandbox (with ALLOW_PROCESS_RUNTIME=true, or
#                   DOCKER_ENABLED=false)
#     redis-server  when Redis runs on this machine (REDIS_URL unset, or --local-redis)
#   npm dependencies, a running Docker daemon, and the task image.
#
# The task image is built FROM its base image (BASE_IMAGE, debian:bookworm-slim), pulled
# when missing. Only where that base is missing and no registry gives it does this
# setup also install debootstrap (a shell script and wget), with which
# scripts/build-task-image.sh makes the base from Debian's packages.
#
# What tests and development need beyond this is scripts/setup-dev.sh's (npm test).
# Safe to run again: each step is skipped when already done.
#
#   scripts/setup.sh [--local-redis]
#   scripts/setup.sh --print-packages [--local-redis] [--no-registry]
#       prints the Debian packages this setup installs on a fresh machine, one a line
#       (--no-registry: one that cannot pull the task image's base), and exits
#   scripts/setup.sh --simulate [--local-redis] [--no-registry]
#       prints every package apt would install for them on a fresh machine,
#       dependencies included (apt's simulation; changes nothing), and exits
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mode=setup local_redis=0 registry=1
for arg in "$@"; do
  case "$arg" in
    --local-redis) local_redis=1 ;;
    --print-packages) mode=print ;;
    --simulate) mode=simulate ;;
    --no-registry) registry=0 ;;
    *) log "setup.sh: unknown argument '$arg' (known: --local-redis, --print-packages, --simulate, --no-registry)"; exit 2 ;;
  esac
done
[ $registry = 1 ] || [ $mode != setup ] || { log "setup.sh: --no-registry goes with --print-packages or --simulate"; exit 2; }
[ -n "${REDIS_URL:-}" ] || local_redis=1

docker=0; is_on "${DOCKER_ENABLED:-}" true && docker=1
RUNTIME=()
[ $docker = 1 ] && RUNTIME+=(docker.io:dockerd)
if [ $docker = 0 ] || is_on "${ALLOW_PROCESS_RUNTIME:-}" false; then RUNTIME+=(bubblewrap:bwrap); fi
[ $local_redis = 1 ] && RUNTIME+=(redis-server:redis-server)
# Only to make the task image's base where no registry gives it (see above).
BASE_BUILD=(debootstrap:debootstrap)

case $mode in
  print) set_packages "${RUNTIME[@]}"; [ $registry = 1 ] || [ $docker = 0 ] || set_packages "${BASE_BUILD[@]}"; exit 0 ;;
  simulate) if [ $registry = 1 ] || [ $docker = 0 ]; then simulate_set "${RUNTIME[@]}"; else simulate_set "${RUNTIME[@]}" "${BASE_BUILD[@]}"; fi; exit 0 ;;
esac

install_set runtime "${RUNTIME[@]}"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (npm ci; a few minutes the first time)"
  # npm ci refuses a lock file without every platform's optional binaries, and a
  # registry mirror may not carry some of them (npm/cli#4828, #8320). npm install
  # still installs the locked versions; it only tolerates the absent optional ones.
  if ! npm ci --no-audit --no-fund --loglevel=error 2>/tmp/hivemind-npm-ci.log; then
    if grep -q 'Missing: .* from lock file' /tmp/hivemind-npm-ci.log; then
      log "npm ci: the lock lacks other platforms' optional binaries; using npm install with the lock"
      npm install --no-audit --no-fund --loglevel=error
    else
      cat /tmp/hivemind-npm-ci.log >&2; exit 1
    fi
  fi
  log "npm dependencies installed"
fi

if [ $docker = 1 ] && [ "${SKIP_DOCKER:-0}" != 1 ]; then
  ensure_docker
  base=${BASE_IMAGE:-debian:bookworm-slim}
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    log "pulling $base, the task image's base"
    if ! docker pull -q "$base" >/dev/null 2>/tmp/hivemind-pull.log; then
      log "no registry gives $base ($(tail -n 1 /tmp/hivemind-pull.log)); it is made from Debian's packages with debootstrap"
      install_set "task image base (no registry)" "${BASE_BUILD[@]}"
    fi
  fi
  bash scripts/build-task-image.sh
fi
