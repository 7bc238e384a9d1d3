#!/usr/bin/env bash
# Runs a Docker Compose command for the demo: the node against a local Node Pool
# (devpool, the compose file's `devpool` profile) as the pool's demo user `alice`,
# whose password is public. For a real pool, set NODE_ID, NODE_PASSWORD and
# NODE_POOL_ADDRESS in .env (cp .env.example .env) and run docker compose itself.
#
#   bash scripts/compose-demo.sh up -d
#   bash scripts/compose-demo.sh logs submit     # the example task's output and result
#   bash scripts/compose-demo.sh down
#
# Uses Compose v2 (`docker compose`) when the plugin is there, else v1 (`docker-compose`).
set -euo pipefail
cd "$(dirname "$0")/.."

export COMPOSE_PROFILES=devpool
export NODE_ID=alice
export NODE_PASSWORD=alice-password
export NODE_POOL_ADDRESS=devpool:50051
export ADVERTISE_HOST=gateway

if [ $# -eq 0 ]; then
  echo "usage: bash scripts/compose-demo.sh <docker compose command> (e.g. up -d, logs submit, down)" >&2
  exit 2
fi
if docker compose version >/dev/null 2>&1; then
  exec docker compose "$@"
elif command -v docker-compose >/dev/null; then
  exec docker-compose "$@"
else
  echo "neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed" >&2
  exit 1
fi
