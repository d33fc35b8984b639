#!/usr/bin/env bash
# Builds hurdmesh:dev from the repository's Dockerfile.
#
#   scripts/docker/build-images.sh [--deps auto|registry|host] [--no-cache] [-- extra docker build args]
#
#   --deps registry  `npm ci` runs inside `docker build` (the Dockerfile's normal path; the
#                    build's containers need the npm registry)
#   --deps host      `npm ci` runs on the host (skipped when node_modules is already current),
#                    that node_modules is wrapped in a local image hurdmesh-deps:host and the
#                    Dockerfile starts from it (DEPS=host, DEPS_IMAGE=hurdmesh-deps:host)
#   --deps auto      (default) registry when a container on the engine's bridge reaches the
#                    npm registry (`npm ping`, a second or two), host otherwise
#
# Builder: BuildKit, about three times faster here than the legacy builder
# (which commits a ~270 MB layer per step): `docker build` when the buildx
# plugin is there, else a pre-23 docker client (docker.io's /usr/bin/docker,
# which engine.sh installs) with DOCKER_BUILDKIT=1, which drives the engine's
# built-in BuildKit; the legacy builder only when neither exists
# (HURD_DOCKER_BUILDER=legacy forces it).
#
# Env: HURD_IMAGE (default hurdmesh:dev), HURD_NODE_BASE (default hurdmesh-base/node:24,
# base-images.sh's stand-in; passed as BASE_IMAGE), HURD_DOCKER_DEPS (same as --deps).
set -euo pipefail
HURD_DOCKER_TAG=build-images
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

IMAGE="${HURD_IMAGE:-hurdmesh:dev}"
BASE="${HURD_NODE_BASE:-hurdmesh-base/node:24}"
DEPS="${HURD_DOCKER_DEPS:-auto}"
DEPS_IMAGE=hurdmesh-deps:host
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --deps) DEPS="${2:?--deps needs auto, registry or host}"; shift 2 ;;
    --deps=*) DEPS="${1#--deps=}"; shift ;;
    --no-cache) EXTRA+=(--no-cache); shift ;;
    --) shift; EXTRA+=("$@"); break ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
case "$DEPS" in auto|registry|host) ;; *) die "--deps must be auto, registry or host, not '$DEPS'" ;; esac

timeout 10 docker info >/dev/null 2>&1 || die "no Docker engine answers on ${DOCKER_HOST}; run scripts/docker/engine.sh start first"
docker image inspect "$BASE" >/dev/null 2>&1 ||
  log "note: $BASE is not a local image; docker build will try to pull it (scripts/docker/base-images.sh makes one)"

# The Dockerfile copies every workspace manifest by name (for layer caching);
# a workspace added to package.json but not to the Dockerfile would break npm ci.
missing=()
for m in packages/*/package.json services/*/package.json; do
  [ -f "$m" ] || continue
  grep -qE "^COPY ${m//./\\.} " Dockerfile || missing+=("$m")
done
[ "${#missing[@]}" -eq 0 ] ||
  die "the Dockerfile does not copy these workspace manifests: ${missing[*]} (add a 'COPY <dir>/package.json <dir>/' line for each)"

# BUILD: the command that runs `docker build` with BuildKit when possible
pick_builder() {
  local c v
  if [ "${HURD_DOCKER_BUILDER:-}" = legacy ]; then BUILD=(env DOCKER_BUILDKIT=0 docker build); BUILDER=legacy; return; fi
  if docker buildx version >/dev/null 2>&1; then
    BUILD=(env DOCKER_BUILDKIT=1 docker build --progress plain); BUILDER="buildkit (buildx)"; return
  fi
  for c in /usr/bin/docker "$(command -v docker)"; do
    [ -x "$c" ] || continue
    v="$("$c" version -f '{{.Client.Version}}' 2>/dev/null || true)"
    case "$v" in 1[89].*|20.*|22.*)
      BUILD=(env DOCKER_BUILDKIT=1 "$c" build --progress plain); BUILDER="buildkit (engine's, client $c $v)"; return ;;
    esac
  done
  BUILD=(env DOCKER_BUILDKIT=0 docker build); BUILDER=legacy
}
pick_builder

if [ "$DEPS" = auto ]; then
  t0="$(now)"
  if timeout 30 docker run --rm "$BASE" sh -c 'npm ping --fetch-timeout=10000 --fetch-retries=0' >/dev/null 2>&1; then
    DEPS=registry
  else
    DEPS=host
  fi
  log "deps: $DEPS (a container reaches the npm registry: $([ "$DEPS" = registry ] && echo yes || echo no); probe $(since "$t0")s)"
fi

args=(--build-arg "BASE_IMAGE=$BASE" -t "$IMAGE")
if [ "$DEPS" = host ]; then
  t0="$(now)"
  # node_modules must match package-lock.json: npm keeps its own copy of the
  # lock in node_modules/.package-lock.json, newer than package-lock.json after an install.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
    [ ! -d packages/proto/gen ]; then
    log "running npm ci on the host"
    npm ci --no-audit --no-fund >/dev/null
  else
    log "the host's node_modules is current; reused"
  fi
  ctx="$(mktemp -d "${TMPDIR:-/tmp}/hurdmesh-deps.XXXXXX")"
  trap 'rm -rf "$ctx"' EXIT
  # hard links when on the same file system: no copy of ~270 MB
  cp -al node_modules "$ctx/node_modules" 2>/dev/null || cp -a node_modules "$ctx/node_modules"
  # workspaces link into the tree by relative symlinks that only resolve in
  # the final image; nothing else in node_modules is allowed to point outside it
  printf 'FROM %s\nWORKDIR /opt/hurdmesh\nCOPY node_modules node_modules\n' "$BASE" |
    "${BUILD[@]}" -t "$DEPS_IMAGE" -f - "$ctx" >"$ctx.log" 2>&1 ||
    { tail -n 30 "$ctx.log" >&2; rm -rf "$ctx" "$ctx.log"; die "building $DEPS_IMAGE failed"; }
  rm -f "$ctx.log"
  rm -rf "$ctx"; trap - EXIT
  log "$DEPS_IMAGE made from the host's node_modules in $(since "$t0")s"
  args+=(--build-arg DEPS=host --build-arg "DEPS_IMAGE=$DEPS_IMAGE")
fi

t0="$(now)"
log "docker build -t $IMAGE (deps $DEPS, $BUILDER)"
buildlog="$(mktemp "${TMPDIR:-/tmp}/hurdmesh-build.XXXXXX.log")"
if ! "${BUILD[@]}" "${args[@]}" "${EXTRA[@]}" . >"$buildlog" 2>&1; then
  tail -n 40 "$buildlog" >&2
  die "docker build failed (whole log: $buildlog)"
fi
rm -f "$buildlog"
log "$IMAGE built in $(since "$t0")s ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }'), deps $DEPS)"
