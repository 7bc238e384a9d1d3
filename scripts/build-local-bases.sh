#!/usr/bin/env bash
# Builds, on a machine that cannot reach an image registry, local stand-ins for the
# public base images the worker's Dockerfile and docker-compose.yml use, under the
# same names, so that `docker-compose build` and `docker-compose up` work unchanged:
#
#   ${NODE_IMAGE}  (default node:20-bookworm-slim): Debian bookworm (debootstrap minbase
#                  + ca-certificates) plus the Node.js 20 runtime installed on this machine
#                  (its node binary and its npm and corepack).
#   ${REDIS_IMAGE} (default redis:7-bookworm): the same Debian base plus Debian's
#                  redis-server, running as the redis user with its data in /data.
#
# Both start from one Debian root filesystem made by debootstrap from Debian's packages
# and imported as ${MINBASE_IMAGE}. CA certificates this machine trusts beyond Debian's
# (/usr/local/share/ca-certificates) are added to the node base, and node is told to use
# the system bundle, so `npm ci` inside a build works behind a TLS-inspecting proxy too.
#
# Idempotent: an image that already exists is kept unless FORCE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_IMAGE=${NODE_IMAGE:-node:20-bookworm-slim}
REDIS_IMAGE=${REDIS_IMAGE:-redis:7-bookworm}
MINBASE_IMAGE=${MINBASE_IMAGE:-hivemind/bookworm-minbase:local}
SUITE=${SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FORCE=${FORCE:-0}

say() { printf '\033[1m[hivemind]\033[0m %s\n' "$*" >&2; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
build() {
  DOCKER_BUILDKIT=0 docker build -q "$@" >"$tmp/build.log" 2>&1 || { tail -n 30 "$tmp/build.log" >&2; return 1; }
}

if [ "$FORCE" != 1 ] && have_image "$NODE_IMAGE" && have_image "$REDIS_IMAGE"; then
  say "local bases $NODE_IMAGE and $REDIS_IMAGE already present"
  exit 0
fi

tmp=$(mktemp -d /tmp/hivemind-bases.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ "$FORCE" = 1 ] || ! have_image "$MINBASE_IMAGE"; then
  command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install -y debootstrap"; exit 1; }
  say "debootstrap $SUITE (minbase + ca-certificates) ..."
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$tmp/rootfs" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 || {
    tail -n 30 "$tmp/debootstrap.log" >&2; exit 1; }
  rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/var/log/*
  tar -C "$tmp/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' - "$MINBASE_IMAGE" >/dev/null
  rm -rf "$tmp/rootfs"
  say "imported $MINBASE_IMAGE"
fi

if [ "$FORCE" = 1 ] || ! have_image "$NODE_IMAGE"; then
  command -v node >/dev/null || { say "node is not installed on this machine"; exit 1; }
  pkg=$(dpkg -S "$(readlink -f "$(command -v node)")" 2>/dev/null | cut -d: -f1 || true)
  [ -n "$pkg" ] || { say "node is not from a Debian package here; install nodejs 20 with apt first"; exit 1; }
  ver=$(node -p 'process.versions.node')
  case "$ver" in 20.*) ;; *) say "this machine's node is $ver; the project uses Node.js 20"; exit 1 ;; esac
  mkdir -p "$tmp/node/certs"
  # The node binary and the npm and corepack trees as installed here (npm may have been
  # updated since the package was installed, so the trees are copied, not the file list).
  tar -C / -cf "$tmp/node/node.tar" usr/bin/node $(cd / && ls -d usr/lib/node_modules/npm usr/lib/node_modules/corepack 2>/dev/null)
  cp /usr/local/share/ca-certificates/*.crt "$tmp/node/certs/" 2>/dev/null || true
  cat >"$tmp/node/Dockerfile" <<EOF
FROM $MINBASE_IMAGE
ADD node.tar /
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null 2>&1 \\
 && ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/bin/npm \\
 && ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/bin/npx \\
 && ln -sf ../lib/node_modules/corepack/dist/corepack.js /usr/bin/corepack \\
 && node --version && npm --version
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
EOF
  build -t "$NODE_IMAGE" "$tmp/node"
  say "built $NODE_IMAGE (Node.js $ver from the $pkg package)"
fi

if [ "$FORCE" = 1 ] || ! have_image "$REDIS_IMAGE"; then
  mkdir -p "$tmp/redis"
  cat >"$tmp/redis/Dockerfile" <<EOF
FROM $MINBASE_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \\
 && mkdir -p /data && chown redis:redis /data \\
 && redis-server --version
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]
EOF
  build --network host -t "$REDIS_IMAGE" "$tmp/redis"
  say "built $REDIS_IMAGE (Debian's redis-server)"
fi
