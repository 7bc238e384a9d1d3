#!/usr/bin/env bash
# Starts the worker (gateway, executor, monitor) against an existing Node Pool.
#   NODE_ID=you NODE_POOL_ADDRESS=pool.example:50051 \
#   ADVERTISE_HOST=<address the pool can dial> npm run worker
# (the first interactive run asks for the password and stores it; see npm run login)
# Uses REDIS_URL when set; otherwise starts a local redis-server for the worker.
# Stops all three on Ctrl-C or when one of them exits.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bash scripts/setup.sh
log "building (tsc)"
npm run --silent build

# The password comes from NODE_PASSWORD, NODE_PASSWORD_FILE, or the credential file
# that `npm run login` stores (asked for here on the first interactive run).
CREDENTIALS_FILE=${CREDENTIALS_FILE:-./.data/credentials.json}
if [ -z "${NODE_PASSWORD:-}" ] && [ -z "${NODE_PASSWORD_FILE:-}" ] && [ ! -f "$CREDENTIALS_FILE" ]; then
  if [ -t 0 ]; then
    CREDENTIALS_FILE=$CREDENTIALS_FILE node dist/apps/gateway/src/login.js
  else
    log "no password: set NODE_PASSWORD or NODE_PASSWORD_FILE, or run npm run login once"; exit 2
  fi
fi
export CREDENTIALS_FILE

RUN=${WORKER_RUN_DIR:-.data/run}
mkdir -p "$RUN"
if [ -z "${REDIS_URL:-}" ]; then
  export REDIS_URL; REDIS_URL=$(start_redis "$(realpath "$RUN")")
fi
log "worker for $NODE_ID against ${NODE_POOL_ADDRESS:-localhost:50051}; Redis at $REDIS_URL"
pids=()
stop_all() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait || true; }
trap 'stop_all; stop_redis "$(realpath "$RUN")"' EXIT INT TERM
node dist/apps/monitor/src/main.js & pids+=($!)
node dist/apps/executor/src/main.js & pids+=($!)
node dist/apps/gateway/src/main.js & pids+=($!)
wait -n
