#!/usr/bin/env bash
# Runs the benchmarks in bench/ and rewrites bench/README.md with their figures.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bash scripts/setup.sh
npm run --silent build
RUN=$(mktemp -d /tmp/hivemind-bench.XXXXXX)
trap 'stop_redis "$RUN"' EXIT
export TEST_REDIS_URL; TEST_REDIS_URL=$(start_redis "$RUN")
for b in dist/bench/*.bench.js; do
  log "benchmark $(basename "$b" .bench.js)"
  node "$b"
done
