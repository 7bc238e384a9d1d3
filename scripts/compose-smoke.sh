#!/usr/bin/env bash
# Compose smoke test: the node as docker-compose.yml runs it.
#
#   1. builds the images (local bases first when there is no registry; cached after),
#   2. checks the safe defaults: a plain `config` without NODE_ID, NODE_PASSWORD and
#      NODE_POOL_ADDRESS stops and names them; then `up` with devpool and three executors,
#      and checks that the dashboard port is published on 127.0.0.1 only, Redis on no
#      port and wants its password, /metrics wants the dashboard token, and every
#      container's json-file log is rotated,
#   3. submits 6 tasks through devpool (the submit container) and checks 6 successful
#      results, runs the one-shot submit example, and checks that at least two
#      executors ran tasks (their logs),
#   4. scales the executors to 1 and checks that the others drained and left Redis,
#   5. `down -v`, and checks that no task container is left.
#
# Runs in its own compose project, Redis prefix, data folder and host ports, so it does
# not meet a node or a test already running here. Timeboxed (COMPOSE_SMOKE_TIMEOUT, s).
# Uses Compose v2 (`docker compose`) when the plugin is there, else v1 (`docker-compose`,
# Debian's, installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

TIMEBOX=${COMPOSE_SMOKE_TIMEOUT:-600}
if [ -z "${COMPOSE_SMOKE_TIMEBOXED:-}" ]; then
  COMPOSE_SMOKE_TIMEBOXED=1 exec timeout --kill-after=30 "$TIMEBOX" bash "$0" "$@"
fi

ensure_docker
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  command -v docker-compose >/dev/null || {
    log "installing docker-compose (Debian's)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  }
  COMPOSE=(docker-compose)
fi
bash scripts/build-local-bases.sh
bash scripts/build-task-image.sh

id=$$
export COMPOSE_PROJECT_NAME=hmsmoke$id
export REDIS_PREFIX=hmsmoke$id
export HIVEMIND_DATA_DIR=/tmp/hm-compose-smoke-$id
# The node joins the local pool as its demo user (what scripts/compose-demo.sh sets), explicitly.
export NODE_ID=alice NODE_PASSWORD=alice-password NODE_POOL_ADDRESS=devpool:50051 ADVERTISE_HOST=gateway
export HTTP_PUBLISH_ADDR=127.0.0.1 METRICS_AUTH=auto LOG_MAX_SIZE=10m LOG_MAX_FILE=5
export GATEWAY_GRPC_PUBLISH GATEWAY_HTTP_PUBLISH DEVPOOL_PUBLISH
GATEWAY_GRPC_PUBLISH=$(free_port); GATEWAY_HTTP_PUBLISH=$(free_port); DEVPOOL_PUBLISH=$(free_port)
# One task per executor at a time, and room for at least two at once on the node: two
# tasks admitted together must then run on two executors.
export EXECUTOR_CONCURRENCY=1 MAX_CONCURRENT_TASKS=4 DEVPOOL_DISPATCH_INTERVAL=1
export DRAIN_TIMEOUT=20 EXECUTOR_STOP_GRACE=40s
export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
DC=("${COMPOSE[@]}" --profile devpool)
logs=/tmp/hm-compose-smoke-$id.log

cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    "${DC[@]}" logs --no-color --tail=80 >"$logs" 2>&1 || true
    log "compose smoke test FAILED (exit $rc); the services' last log lines:"; tail -n 120 "$logs" >&2
  fi
  "${DC[@]}" down -v --remove-orphans -t 30 >/dev/null 2>&1 || true
  rm -rf "$HIVEMIND_DATA_DIR" "$HIVEMIND_DATA_DIR.env"
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
log "compose smoke: ${COMPOSE[*]}; a plain config without the pool settings stops and names them"
# An empty env file: a .env here must not supply them (v1 wants a regular file).
: >"$HIVEMIND_DATA_DIR.env"
missing=$(env -u NODE_ID -u NODE_PASSWORD -u NODE_POOL_ADDRESS "${COMPOSE[@]}" --env-file "$HIVEMIND_DATA_DIR.env" config 2>&1 >/dev/null) \
  && fail "config without NODE_ID, NODE_PASSWORD and NODE_POOL_ADDRESS succeeded"
for v in NODE_ID NODE_PASSWORD NODE_POOL_ADDRESS; do
  grep -q "set $v" <<<"$missing" || fail "config without the pool settings does not name $v: $missing"
done
log "compose smoke: building the images"
"${DC[@]}" build -q
log "compose smoke: up (devpool, three executors) after $(( $(date +%s) - start )) s"
"${DC[@]}" up -d --scale executor=3 redis gateway executor monitor devpool
wait_healthy 150 redis gateway executor monitor devpool || fail "services did not become healthy"
[ "$("${DC[@]}" ps -q executor | wc -l)" = 3 ] || fail "expected 3 executors"

# Redis as the services reach it: with the generated password (never published).
rcli() { "${DC[@]}" exec -T redis sh -c 'REDISCLI_AUTH="$(cat /secret/password)" redis-cli "$@"' redis-cli "$@" | tr -d '\r'; }

log "compose smoke: checking what is exposed"
gw=$("${DC[@]}" ps -q gateway); rd=$("${DC[@]}" ps -q redis)
[ "$(docker port "$gw" 5001/tcp)" = "127.0.0.1:$GATEWAY_HTTP_PUBLISH" ] || fail "the dashboard port is published as '$(docker port "$gw" 5001/tcp)', not 127.0.0.1:$GATEWAY_HTTP_PUBLISH only"
docker port "$gw" 50053/tcp | grep -q ":$GATEWAY_GRPC_PUBLISH$" || fail "the gateway's gRPC port is not published on $GATEWAY_GRPC_PUBLISH"
[ -z "$(docker port "$rd")" ] || fail "Redis publishes ports: $(docker port "$rd")"
noauth=$("${DC[@]}" exec -T redis redis-cli ping | tr -d '\r')
grep -q NOAUTH <<<"$noauth" || fail "Redis answered '$noauth' to a client without the password"
[ "$(rcli ping)" = PONG ] || fail "Redis does not answer with the generated password"
[ "$(rcli config get protected-mode | tail -n 1)" = yes ] || fail "Redis runs without protected mode"
status=$(node -e 'fetch(process.argv[1]).then((r) => console.log(r.status), () => console.log("unreachable"))' "http://127.0.0.1:$GATEWAY_HTTP_PUBLISH/metrics")
[ "$status" = 401 ] || fail "/metrics without the dashboard token answered $status, not 401"
for c in $("${DC[@]}" ps -q); do
  lc=$(docker inspect -f '{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config "max-size"}} {{index .HostConfig.LogConfig.Config "max-file"}}' "$c")
  [ "$lc" = "json-file 10m 5" ] || fail "container ${c:0:12} logs with '$lc', not a rotated json-file"
done
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
beats=$(rcli hlen "$REDIS_PREFIX:executors")
[ "$beats" = 1 ] || fail "Redis lists $beats executors after scaling to 1 (stopped ones should leave)"
wait_healthy 30 executor || fail "the last executor is not healthy"

log "compose smoke: down -v"
"${DC[@]}" down -v --remove-orphans -t 30 >/dev/null 2>&1
left=$(docker ps -aq --filter "label=io.hivemind.instance=$REDIS_PREFIX" | wc -l)
[ "$left" = 0 ] || fail "$left task container(s) left behind"
for v in redis-data redis-secret; do
  docker volume inspect "${COMPOSE_PROJECT_NAME}_$v" >/dev/null 2>&1 && fail "the volume $v survived down -v"
done
log "compose smoke: passed in $(( $(date +%s) - start )) s (6 tasks and the example, $ran executors ran them)"
