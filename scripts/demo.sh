#!/usr/bin/env bash
# The demo: a local Node Pool (devpool), the worker (gateway, executor, monitor) and
# a sample task from examples/, all on this machine. Prints the task's output and
# where its result landed, then stops everything.
#   npm run demo                 runs examples/hello
#   npm run demo -- examples/X   runs another example folder
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

TASK_DIR=${1:-examples/hello}
# The demo runs its own redis-server, whatever REDIS_URL says.
bash scripts/setup.sh --local-redis
log "building (tsc)"
npm run --silent build

RUN=$(mktemp -d /tmp/hivemind-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_redis "$RUN"
}
trap cleanup EXIT

export REDIS_URL; REDIS_URL=$(start_redis "$RUN")
export DEVPOOL_PORT; DEVPOOL_PORT=$(free_port)
export GRPC_PORT; GRPC_PORT=$(free_port)
export NODE_POOL_ADDRESS=localhost:$DEVPOOL_PORT
export NODE_ID=${NODE_ID:-alice} NODE_PASSWORD=${NODE_PASSWORD:-alice-password}
export WORK_DIR=$RUN/work DEVPOOL_DISPATCH_INTERVAL=${DEVPOOL_DISPATCH_INTERVAL:-2}

log "devpool on :$DEVPOOL_PORT, worker gRPC on :$GRPC_PORT, Redis at $REDIS_URL, logs in $RUN"
node dist/apps/devpool/src/main.js >"$RUN/devpool.log" 2>&1 & pids+=($!)
node dist/apps/monitor/src/main.js >"$RUN/monitor.log" 2>&1 & pids+=($!)
node dist/apps/executor/src/main.js >"$RUN/executor.log" 2>&1 & pids+=($!)
node dist/apps/gateway/src/main.js >"$RUN/gateway.log" 2>&1 & pids+=($!)
wait_ready devpool "$RUN/devpool.log" 'devpool listening'
wait_ready executor "$RUN/executor.log" 'executor ready; consuming tasks'
wait_ready gateway "$RUN/gateway.log" 'worker gRPC server listening'

log "submitting $TASK_DIR"
set +e
node dist/apps/devpool/src/submit.js "$TASK_DIR" --pool "localhost:$DEVPOOL_PORT" --out results --timeout 300
code=$?
set -e
[ $code -eq 0 ] && log "demo finished: the task succeeded" || log "demo finished: submit exited $code (service logs in $RUN)"
exit $code
