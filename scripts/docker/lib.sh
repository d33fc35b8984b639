# shellcheck shell=bash
# Shared settings for scripts/docker/*.sh (sourced, never run).
# Everything the private Docker engine uses lives under one state folder, so
# that `engine.sh stop` can remove it in one go and nothing of the system's
# own Docker configuration (if any) is touched.
HURD_DOCKER_STATE="${HURD_DOCKER_STATE:-/tmp/hurdmesh-docker}"
export HURD_DOCKER_STATE
# The engine listens on a private socket, never /var/run/docker.sock.
HURD_DOCKER_SOCK="$HURD_DOCKER_STATE/docker.sock"
export DOCKER_HOST="${DOCKER_HOST:-unix://$HURD_DOCKER_SOCK}"
export DOCKER_CONFIG="${DOCKER_CONFIG:-$HURD_DOCKER_STATE/config}"

log() { printf '[docker/%s] %s\n' "${HURD_DOCKER_TAG:-$(basename "$0" .sh)}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    die "must run as root (it installs packages with apt-get and starts dockerd, which needs root); run it with sudo or as root"
  fi
}

# apt-get install, non-interactive; one `apt-get update` and a retry when the
# package lists are missing or stale.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local opts=(-y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if ! apt-get install "${opts[@]}" "$@" >/dev/null; then
    log "apt-get install $* failed; running apt-get update and retrying"
    apt-get update -qq
    apt-get install "${opts[@]}" "$@" >/dev/null
  fi
}

# Seconds since the epoch with a fraction, for phase timings.
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
