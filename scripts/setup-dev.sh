#!/usr/bin/env bash
# The development setup (npm test runs it): the runtime setup (scripts/setup.sh), plus
# what the tests and development need, installed without apt's recommended packages:
#
#   docker.io, redis-server  the real Docker daemon and Redis the tests run against
#   bubblewrap               the process runtime's sandbox tests
#   chromium                 the dashboard's browser tests (through playwright-core)
#   debootstrap              the local base images (build-local-bases.sh, build-task-image.sh)
#   protobuf-compiler        npm run proto / proto:check (protoc)
#   wireguard-tools          the VPN join test (wg)
#   openssl                  the tests' certificates
#   docker-compose           the compose smoke test
#
# and the ML task image the image tests use. Safe to run again: each step is skipped
# when already done.
#
#   scripts/setup-dev.sh
#   scripts/setup-dev.sh --print-packages   prints the Debian packages above, one a line
#   scripts/setup-dev.sh --simulate         prints every package apt would install for
#       them on a fresh machine, dependencies included (apt's simulation; changes nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

DEV=(docker.io:dockerd redis-server:redis-server bubblewrap:bwrap chromium:chromium
  debootstrap:debootstrap protobuf-compiler:protoc wireguard-tools:wg openssl:openssl
  docker-compose:docker-compose)

case "${1:-}" in
  '') ;;
  --print-packages) set_packages "${DEV[@]}"; exit 0 ;;
  --simulate) simulate_set "${DEV[@]}"; exit 0 ;;
  *) log "setup-dev.sh: unknown argument '$1' (known: --print-packages, --simulate)"; exit 2 ;;
esac

install_set "development and test" "${DEV[@]}"
# The setup's own test simulates installs with apt, which needs the package lists.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  log "fetching Debian's package lists (apt-get update)"
  as_root apt-get update -qq
fi

# The tests run Docker and a local Redis whatever this shell's settings say.
DOCKER_ENABLED=true bash scripts/setup.sh --local-redis
if [ "${SKIP_DOCKER:-0}" != 1 ]; then
  bash scripts/build-task-image.sh --ml
fi
