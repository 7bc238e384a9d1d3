#!/usr/bin/env bash
# A long fuzz of the gateway's ExecuteTask (the test suite runs a short one).
#   npm run fuzz              20,000 requests
#   npm run fuzz -- 100000    as many as you say; FUZZ_SEED=N repeats a run
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent build
FUZZ_COUNT=${1:-20000} npx jest --selectProjects integration --runTestsByPath test/e2e/fuzz.test.ts --testTimeout=3600000
