# Helpers sourced by the project's scripts.

log() { printf '\033[1m[hivemind]\033[0m %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Whether a true/false setting is on, read as the worker reads it: is_on VALUE DEFAULT.
is_on() {
  local v; v=$(printf '%s' "${1:-$2}" | tr '[:upper:]' '[:lower:]' | tr -d '[:space:]')
  case "$v" in 1|true|yes|on) return 0 ;; *) return 1 ;; esac
}

# The project's scripts install Debian packages this way only: never apt's recommended
# packages (wireguard-tools, for one, recommends a kernel image).
APT_INSTALL=(apt-get install -y --no-install-recommends)

# A package set is a list of PACKAGE:COMMAND entries; the command shows the package (or
# something that does its job, e.g. Docker CE for docker.io) is already here.
set_packages() { local e; for e in "$@"; do echo "${e%%:*}"; done; }

# install_set LABEL ENTRY...: installs the packages of a set whose command is missing,
# saying which set and which packages first (apt is silent for minutes otherwise).
install_set() {
  local label=$1 e need=(); shift
  for e in "$@"; do command -v "${e#*:}" >/dev/null 2>&1 || need+=("${e%%:*}"); done
  [ ${#need[@]} -gt 0 ] || return 0
  log "installing the $label packages: ${need[*]} (apt-get update, then install without recommended packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive "${APT_INSTALL[@]}" -qq "${need[@]}" >/dev/null
  log "installed ${need[*]}"
}

# simulate_set ENTRY...: the packages the install above would put on a fresh Debian
# machine (apt's simulation against an empty package database: every dependency
# counts, none is taken as already installed), one a line. Changes nothing; needs the
# package lists (apt-get update).
simulate_set() {
  local out
  out=$("${APT_INSTALL[@]}" -s -o Dir::State::status=/dev/null $(set_packages "$@") 2>&1) || {
    printf '%s\n' "$out" >&2; return 1; }
  printf '%s\n' "$out" | awk '$1 == "Inst" { print $2 }'
}

# A TCP port nobody listens on.
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

docker_up() { docker info >/dev/null 2>&1; }

# Starts dockerd in the background when no daemon answers (machines without systemd).
ensure_docker() {
  docker_up && return 0
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    as_root systemctl start docker || true
  fi
  if ! docker_up; then
    log "starting dockerd"
    as_root sh -c 'nohup dockerd >/var/log/hivemind-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker_up && return 0; sleep 1; done
  log "the Docker daemon did not come up; see /var/log/hivemind-dockerd.log"
  return 1
}

# Starts a throwaway redis-server on a free port; prints its URL. PID file in $1.
start_redis() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" >/dev/null
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "redis://127.0.0.1:$port"
}

stop_redis() { [ -f "$1/redis.pid" ] && kill "$(cat "$1/redis.pid")" 2>/dev/null || true; }

# Waits until a service's log shows its ready line: wait_ready NAME LOGFILE PATTERN [SECONDS]
wait_ready() {
  local name=$1 file=$2 pattern=$3 secs=${4:-60}
  for _ in $(seq 1 $((secs * 10))); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  log "$name did not become ready in ${secs}s; its log:"; tail -n 20 "$file" >&2
  return 1
}
