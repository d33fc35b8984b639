#!/usr/bin/env bash
# Docker for CI in one call: start a private engine, make `docker compose` v2
# available, build the local base images and hurdmesh:dev, run the command
# given as arguments with the environment the e2e tests need, and always stop
# the engine and remove what it left, whatever happened.
#
#   scripts/docker/ci.sh npm run test:e2e
#   scripts/docker/ci.sh                    (set up and tear down only)
#
# The command sees: DOCKER_HOST (the private engine's socket), DOCKER_CONFIG
# (holds the compose plugin), TESTCONTAINERS_RYUK_DISABLED=true,
# TESTCONTAINERS_HOST_OVERRIDE=localhost, HURD_E2E=1, HURD_IMAGE (hurdmesh:dev),
# BASE_IMAGE and NATS_IMAGE (the stand-ins, for docker compose), HURD_DOCKER_STATE. Exit status: the command's, or a failed set-up phase's.
# HURD_DOCKER_KEEP=1 leaves the engine running afterwards (for debugging; stop it
# with scripts/docker/engine.sh stop). HURD_DOCKER_DEPS=auto|registry|host is
# passed on to build-images.sh. Root only.
set -euo pipefail
HURD_DOCKER_TAG=ci
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
cd "$HERE/../.."
need_root

PHASES=()
T_ALL="$(now)"
phase() { # name command...
  local name="$1" t rc=0; shift
  t="$(now)"
  log "== $name"
  "$@" || rc=$?
  PHASES+=("$(printf '%-14s %6ss%s' "$name" "$(since "$t")" "$([ "$rc" = 0 ] || echo "  (exit $rc)")")")
  return "$rc"
}

finish() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ "${HURD_DOCKER_KEEP:-0}" = 1 ]; then
    log "HURD_DOCKER_KEEP=1: engine left running ($DOCKER_HOST); stop it with scripts/docker/engine.sh stop"
  else
    phase "engine stop" "$HERE/engine.sh" stop
  fi
  log "== timings"
  printf '[docker/ci]   %s\n' "${PHASES[@]}" >&2
  log "   total          $(since "$T_ALL")s, exit $rc"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

envfile="$(mktemp)"
phase "engine start" bash -c '"$1" start >"$2"' _ "$HERE/engine.sh" "$envfile"
# shellcheck disable=SC1090
. "$envfile"
phase "compose" bash -c '"$1" >"$2"' _ "$HERE/compose.sh" "$envfile"
# shellcheck disable=SC1090
. "$envfile"; rm -f "$envfile"
phase "base images" "$HERE/base-images.sh"
phase "build images" "$HERE/build-images.sh"

export DOCKER_HOST DOCKER_CONFIG HURD_DOCKER_STATE
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=localhost
export HURD_E2E=1
export HURD_IMAGE="${HURD_IMAGE:-hurdmesh:dev}"
# docker compose takes the local stand-ins (base-images.sh), never a registry's.
export BASE_IMAGE="${HURD_NODE_BASE:-hurdmesh-base/node:24}"
export NATS_IMAGE="${HURD_NATS_BASE:-hurdmesh-base/nats:2.9}"

if [ $# -gt 0 ]; then
  log "running: $* (DOCKER_HOST=$DOCKER_HOST DOCKER_CONFIG=$DOCKER_CONFIG)"
  phase "command" "$@"
fi
