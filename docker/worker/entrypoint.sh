#!/bin/sh
# Entry point of the worker images.
#
# Started as root (as docker-compose.yml does for the gateway and the executor): makes
# sure WORK_DIR and LOG_DIR exist and belong to the hivemind user (they are host folders
# bind-mounted at the same path, which Docker creates root-owned), adds the group that
# owns the Docker socket when one is mounted, drops every capability and runs the
# service as hivemind. Started as any other user: runs the service as is.
set -eu

if [ "$(id -u)" != 0 ]; then
  exec "$@"
fi

uid=$(id -u hivemind)
gid=$(id -g hivemind)
for dir in "${WORK_DIR:-}" "${LOG_DIR:-}"; do
  [ -n "$dir" ] || continue
  mkdir -p "$dir"
  chown "$uid:$gid" "$dir"
done
groups=$gid
sock=${DOCKER_SOCKET:-/var/run/docker.sock}
if [ -S "$sock" ]; then
  sock_gid=$(stat -c %g "$sock")
  [ "$sock_gid" = "$gid" ] || groups="$groups,$sock_gid"
fi
exec setpriv --reuid="$uid" --regid="$gid" --groups="$groups" --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
