#!/usr/bin/env bash
# Makes a fresh Debian 12 machine ready to build, test and run HiveMind Worker:
# system packages, npm dependencies, a running Docker daemon and the local task image.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v openssl >/dev/null || need+=(openssl)
command -v wg >/dev/null || need+=(wireguard-tools)
# The dashboard's browser test drives Debian's Chromium through playwright-core.
command -v chromium >/dev/null || need+=(chromium)
# The process runtime (no Docker) sandboxes tasks with bubblewrap when it is installed.
command -v bwrap >/dev/null || need+=(bubblewrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies"
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
fi

if [ "${SKIP_DOCKER:-0}" != 1 ]; then
  ensure_docker
  bash scripts/build-task-image.sh
fi
