#!/usr/bin/env bash
# The test command (npm test; .ci/run calls it): sets up what the tests need
# (scripts/setup-dev.sh), checks the generated protocol code, lints, builds, then runs
# every jest test: unit tests, integration tests against real Redis and a real Docker
# daemon, and the end-to-end test with devpool, gateway, executor and monitor as
# separate processes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bash scripts/setup-dev.sh
log "checking generated protocol code"
npm run --silent proto:check
log "lint and type check"
npm run --silent lint
npm run --silent typecheck
log "build"
npm run --silent build

log "jest"
npx jest --ci "$@"

# --- compose smoke test (issue 6) ---------------------------------------------------
# The node as docker-compose.yml runs it: images, devpool, three executors, 6 tasks,
# scale to 1, down -v (scripts/compose-smoke.sh; timeboxed by COMPOSE_SMOKE_TIMEOUT).
# Only on a full run (no jest arguments); SKIP_COMPOSE_SMOKE=1 leaves it out.
if [ $# -eq 0 ] && [ "${SKIP_COMPOSE_SMOKE:-0}" != 1 ]; then
  log "compose smoke test"
  bash scripts/compose-smoke.sh
fi
