#!/usr/bin/env bash
# Compose smoke test: the node as docker-compose.yml runs it.
#
#   1. builds the images (local bases first when there is no registry; cached after),
#   2. `up` with devpool and three executors,
#   3. submits 6 tasks through devpool (the submit container) and checks 6 successful
#      results, runs the one-shot submit example, and checks that at least two
#      executors ran tasks (their logs),
#   4. scales the executors to 1 and checks that the others drained and left Redis,
#   5. `down -v`, and checks that no task container is left.
#
# Runs in its own compose project, Redis prefix, data folder and host ports, so it does
# not meet a node or a test already running here. Timeboxed (COMPOSE_SMOKE_TIMEOUT, s).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

TIMEBOX=${COMPOSE_SMOKE_TIMEOUT:-600}
if [ -z "${COMPOSE_SMOKE_TIMEBOXED:-}" ]; then
  COMPOSE_SMOKE_TIMEBOXED=1 exec timeout --kill-after=30 "$TIMEBOX" bash "$0" "$@"
fi

command -v docker-compose >/dev/null || {
  log "installing docker-compose (Debian's)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
}
ensure_docker
bash scripts/build-local-bases.sh
bash scripts/build-task-image.sh

id=$$
export COMPOSE_PROJECT_NAME=hmsmoke$id
export REDIS_PREFIX=hmsmoke$id
export HIVEMIND_DATA_DIR=/tmp/hm-compose-smoke-$id
export GATEWAY_GRPC_PUBLISH GATEWAY_HTTP_PUBLISH DEVPOOL_PUBLISH
GATEWAY_GRPC_PUBLISH=$(free_port); GATEWAY_HTTP_PUBLISH=$(free_port); DEVPOOL_PUBLISH=$(free_port)
# One task per executor at a time, and room for at least two at once on the node: two
# tasks admitted together must then run on two executors.
export EXECUTOR_CONCURRENCY=1 MAX_CONCURRENT_TASKS=4 DEVPOOL_DISPATCH_INTERVAL=1
export DRAIN_TIMEOUT=20 EXECUTOR_STOP_GRACE=40s
export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
DC=(docker-compose --profile devpool)
logs=/tmp/hm-compose-smoke-$id.log

cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    "${DC[@]}" logs --no-color --tail=80 >"$logs" 2>&1 || true
    log "compose smoke test FAILED (exit $rc); the services' last log lines:"; tail -n 120 "$logs" >&2
  fi
  "${DC[@]}" down -v --remove-orphans -t 30 >/dev/null 2>&1 || true
  rm -rf "$HIVEMIND_DATA_DIR"
}
trap cleanup EXIT

fail() { log "compose smoke: $*"; exit 1; }

# Health state of every container of a service ("healthy" each when all are).
health_of() {
  local ids; ids=$("${DC[@]}" ps -q "$1")
  [ -n "$ids" ] || { echo none; return; }
  # shellcheck disable=SC2086
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' $ids | sort -u | tr '\n' ' '
}

wait_healthy() {
  local secs=$1; shift
  for _ in $(seq 1 "$secs"); do
    local all=1
    for s in "$@"; do [ "$(health_of "$s")" = "healthy " ] || all=0; done
    [ $all = 1 ] && return 0
    sleep 1
  done
  for s in "$@"; do log "$s: $(health_of "$s")"; done
  return 1
}

start=$(date +%s)
log "compose smoke: building the images"
"${DC[@]}" build -q
log "compose smoke: up (devpool, three executors) after $(( $(date +%s) - start )) s"
"${DC[@]}" up -d --scale executor=3 redis gateway executor monitor devpool
wait_healthy 150 redis gateway executor monitor devpool || fail "services did not become healthy"
[ "$("${DC[@]}" ps -q executor | wc -l)" = 3 ] || fail "expected 3 executors"
log "compose smoke: healthy after $(( $(date +%s) - start )) s; submitting 6 tasks"

# Six submits at once from the submit container; each prints its task's status line.
"${DC[@]}" run --rm -T -v "$PWD/test/compose:/smoke:ro" --entrypoint sh submit -c '
  pids=""
  for i in 1 2 3 4 5 6; do
    node dist/apps/devpool/src/submit.js /smoke/slow-task --pool devpool:50051 --user bob --password bob-password \
      --task-id "smoke-$i" --out /tmp/results --timeout 240 --quiet >"/tmp/submit-$i.log" 2>&1 &
    pids="$pids $!"
  done
  rc=0; for p in $pids; do wait "$p" || rc=1; done
  for i in 1 2 3 4 5 6; do
    f=/tmp/results/smoke-$i/execution_log.txt
    if [ -f "$f" ] && grep -q "Status: Success" "$f" && [ -f /tmp/results/smoke-$i/result/done.json ]; then echo "smoke-$i: Success"
    else echo "smoke-$i: NO SUCCESSFUL RESULT"; cat "/tmp/submit-$i.log"; rc=1; fi
  done
  exit $rc' || fail "not every task came back successful"

# The one-shot example as `--profile devpool up` runs it (examples/hello).
"${DC[@]}" run --rm -T submit >/tmp/hm-compose-smoke-$id-submit.log 2>&1 || { cat /tmp/hm-compose-smoke-$id-submit.log >&2; fail "the submit example failed"; }
grep -q 'Success; unpacked in' /tmp/hm-compose-smoke-$id-submit.log || fail "the submit example did not report a successful result"
rm -f /tmp/hm-compose-smoke-$id-submit.log

ran=0; total=0
for c in $("${DC[@]}" ps -q executor); do
  n=$(docker logs "$c" 2>&1 | grep -c '"msg":"task finished"' || true)
  log "executor ${c:0:12} ran $n task(s)"
  total=$((total + n)); [ "$n" -gt 0 ] && ran=$((ran + 1))
done
[ "$total" = 7 ] || fail "the executors' logs show $total finished tasks, not 7 (6 + the example)"
[ "$ran" -ge 2 ] || fail "only $ran executor ran tasks; expected at least 2"

log "compose smoke: scaling the executors to 1"
"${DC[@]}" up -d --no-deps --scale executor=1 executor
[ "$("${DC[@]}" ps -q executor | wc -l)" = 1 ] || fail "expected 1 executor after scaling down"
beats=$("${DC[@]}" exec -T redis redis-cli hlen "$REDIS_PREFIX:executors" | tr -d '\r')
[ "$beats" = 1 ] || fail "Redis lists $beats executors after scaling to 1 (stopped ones should leave)"
wait_healthy 30 executor || fail "the last executor is not healthy"

log "compose smoke: down -v"
"${DC[@]}" down -v --remove-orphans -t 30 >/dev/null 2>&1
left=$(docker ps -aq --filter "label=io.hivemind.instance=$REDIS_PREFIX" | wc -l)
[ "$left" = 0 ] || fail "$left task container(s) left behind"
docker volume inspect "${COMPOSE_PROJECT_NAME}_redis-data" >/dev/null 2>&1 && fail "the Redis volume survived down -v"
log "compose smoke: passed in $(( $(date +%s) - start )) s (6 tasks and the example, $ran executors ran them)"
