#!/usr/bin/env bash
# Local stand-ins for the two registry images hurdmesh needs, for machines that
# cannot pull (CI here). Built with `docker import` from files of this host in
# a few seconds; `docker build FROM` a local image never contacts a registry.
#
#   scripts/docker/base-images.sh [--force] [node|nats ...]
#
#   hurdmesh-base/node:24   busybox (Debian's busybox-static) + Node 24 from the
#                           npm registry (scripts/node-from-npm.sh, the version
#                           in .node-version, as CI) and the libraries ldd lists
#                           + the host's npm/npx,
#                           /etc/passwd with root and node (1000), /tmp 1777,
#                           the host's CA bundle (also as NODE_EXTRA_CA_CERTS so
#                           npm trusts this network's TLS proxy), CMD ["node"].
#   hurdmesh-base/nats:2.9  Debian's nats-server 2.9 (needs only libc) + busybox
#                           (wget for health checks), with an entrypoint like
#                           the official image's: a first argument starting
#                           with '-' runs `nats-server <args>`; default config
#                           listens on 4222 with monitoring on 8222.
#
# The tags are the project's own, so that a stand-in never shadows a real
# registry image of the same name (change them with HURD_NODE_BASE /
# HURD_NATS_BASE; HURD_NODE_VERSION picks another Node). An image that already
# exists is skipped unless --force. Needs a running engine (engine.sh start)
# and root when packages must be installed.
set -euo pipefail
HURD_DOCKER_TAG=base-images
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

NODE_TAG="${HURD_NODE_BASE:-hurdmesh-base/node:24}"
NATS_TAG="${HURD_NATS_BASE:-hurdmesh-base/nats:2.9}"
NODE_VERSION="${HURD_NODE_VERSION:-$(cat "$(dirname "$0")/../../.node-version")}"
FORCE=0
WANT=()
for a in "$@"; do
  case "$a" in
    --force|-f) FORCE=1 ;;
    node|nats) WANT+=("$a") ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) die "unknown argument '$a' (use: [--force] [node|nats ...])" ;;
  esac
done
[ "${#WANT[@]}" -gt 0 ] || WANT=(node nats)

timeout 10 docker info >/dev/null 2>&1 || die "no Docker engine answers on ${DOCKER_HOST}; run scripts/docker/engine.sh start first"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hurdmesh-base.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

exists() { docker image inspect "$1" >/dev/null 2>&1; }

busybox_bin() {
  local b
  for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && file_is_static "$b"; then echo "$b"; return; fi
  done
  log "installing busybox-static with apt-get"
  need_root
  apt_install busybox-static
  echo /bin/busybox
}
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }

# A minimal merged-/usr rootfs with busybox and its applet links.
new_rootfs() {
  local r="$1" bb applet
  mkdir -p "$r"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,etc,root,home,tmp,var/tmp,proc,sys,dev,run}
  ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
  chmod 1777 "$r/tmp" "$r/var/tmp"; chmod 700 "$r/root"
  bb="$(busybox_bin)"
  cp "$bb" "$r/usr/bin/busybox"
  "$bb" --list-full | while IFS= read -r applet; do
    applet="${applet#/}"
    case "$applet" in bin/*) applet="usr/$applet" ;; sbin/*) applet="usr/$applet" ;; esac
    [ -e "$r/$applet" ] || [ -L "$r/$applet" ] || ln -s /usr/bin/busybox "$r/$applet"
  done
  cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
  cat >"$r/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
  printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' >"$r/etc/shadow"
  chmod 640 "$r/etc/shadow"
  echo 'hosts: files dns' >"$r/etc/nsswitch.conf"
  if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$r/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
  fi
}

# Copy a binary to $2 inside rootfs $1 with every library ldd lists and the loader.
copy_with_libs() {
  local r="$1" bin="$2" dest="$3" lib
  mkdir -p "$r/$(dirname "$dest")"
  cp -L "$bin" "$r/$dest"
  ldd "$bin" | awk '/=> \// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' | sort -u | while IFS= read -r lib; do
    mkdir -p "$r/usr/lib/x86_64-linux-gnu"
    # keep the library's own path (under merged /usr) and the loader's well-known name
    case "$lib" in
      /lib64/*|/usr/lib64/*) cp -L "$lib" "$r/usr/lib64/$(basename "$lib")" ;;
      /lib/*) mkdir -p "$r/usr$(dirname "$lib")"; cp -L "$lib" "$r/usr$lib" ;;
      /usr/*) mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib" ;;
    esac
  done
}

# The whole C/C++ runtime (glibc's libraries, libstdc++, libgcc_s), as an
# official Debian-based node image has it: native addons need more of glibc
# than node itself (dprint-node wants librt, say). gconv modules are left out.
copy_runtime_libs() {
  local r="$1" f
  command -v dpkg >/dev/null 2>&1 || { log "no dpkg: only the libraries ldd lists are in the image"; return 0; }
  dpkg -L libc6 libstdc++6 libgcc-s1 2>/dev/null | grep -E '^/(usr/)?lib(64)?/[^ ]*\.so[.0-9]*$' | grep -v gconv |
    while IFS= read -r f; do
      [ -e "$f" ] || continue
      case "$f" in /usr/*) ;; *) f2="/usr$f" ;; esac
      mkdir -p "$r$(dirname "${f2:-$f}")"
      cp -L "$f" "$r${f2:-$f}"
      unset f2
    done
}

import() { # rootfs tag change...
  local r="$1" tag="$2"; shift 2
  local changes=() c
  for c in "$@"; do changes+=(--change "$c"); done
  tar --numeric-owner -C "$r" -cf - . | docker import "${changes[@]}" \
    --message "hurdmesh local stand-in built by scripts/docker/base-images.sh" - "$tag" >/dev/null
}

build_node() {
  local r="$WORK/node" node npmdir major t0
  t0="$(now)"
  # Not the host's node (Node 20 here): the same npm package CI runs on.
  node="$("$(dirname "$0")/../node-from-npm.sh" "$NODE_VERSION")/node" || die "cannot install Node $NODE_VERSION from the npm registry"
  new_rootfs "$r"
  copy_with_libs "$r" "$node" usr/local/bin/node
  copy_runtime_libs "$r"
  echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$r/etc/passwd"
  echo 'node:x:1000:' >>"$r/etc/group"
  echo 'node:!:19000:0:99999:7:::' >>"$r/etc/shadow"
  mkdir -p "$r/home/node"; chown 1000:1000 "$r/home/node"
  # npm and npx from the host's global npm
  npmdir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  [ -f "$npmdir/package.json" ] || npmdir="$(npm root -g)/npm"
  mkdir -p "$r/usr/local/lib/node_modules" "$r/usr/local/etc"
  cp -a "$npmdir" "$r/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  printf 'update-notifier=false\nfund=false\naudit=false\n' >"$r/usr/local/etc/npmrc"
  local env=(
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    "ENV NODE_VERSION=$("$node" -p 'process.versions.node')"
  )
  [ -f "$r/etc/ssl/certs/ca-certificates.crt" ] && env+=('ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
  import "$r" "$NODE_TAG" "${env[@]}" 'LABEL org.hurdmesh.local-base=true' 'CMD ["node"]'
  docker run --rm --network none "$NODE_TAG" node -e 'process.stdout.write("")' ||
    { docker rmi "$NODE_TAG" >/dev/null 2>&1 || true; die "$NODE_TAG: node does not run inside the image (removed)"; }
  log "$NODE_TAG built in $(since "$t0")s (node $("$node" --version), npm $(npm --version), $(docker image inspect -f '{{.Size}}' "$NODE_TAG" | awk '{ printf "%d MB", $1 / 1e6 }'))"
}

build_nats() {
  local r="$WORK/nats" nats t0
  t0="$(now)"
  if ! nats="$(command -v nats-server)"; then
    log "installing nats-server with apt-get"
    need_root
    apt_install nats-server
    nats="$(command -v nats-server)"
  fi
  new_rootfs "$r"
  copy_with_libs "$r" "$nats" usr/local/bin/nats-server
  mkdir -p "$r/etc/nats" "$r/data"
  cat >"$r/etc/nats/nats-server.conf" <<'EOF'
# like the official image's: clients on 4222, HTTP monitoring on 8222
port: 4222
monitor_port: 8222
EOF
  cat >"$r/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# As in the official nats image: options alone mean "nats-server <options>".
set -e
if [ "${1#-}" != "$1" ]; then
  set -- nats-server "$@"
fi
exec "$@"
EOF
  chmod 755 "$r/usr/local/bin/docker-entrypoint.sh"
  import "$r" "$NATS_TAG" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'LABEL org.hurdmesh.local-base=true' \
    'EXPOSE 4222 6222 8222' \
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["nats-server", "--config", "/etc/nats/nats-server.conf"]'
  docker run --rm --network none "$NATS_TAG" --version >/dev/null ||
    { docker rmi "$NATS_TAG" >/dev/null 2>&1 || true; die "$NATS_TAG: nats-server does not run inside the image (removed)"; }
  log "$NATS_TAG built in $(since "$t0")s ($("$nats" --version))"
}

for w in "${WANT[@]}"; do
  case "$w" in node) tag="$NODE_TAG" ;; nats) tag="$NATS_TAG" ;; esac
  if [ "$FORCE" = 0 ] && exists "$tag"; then
    log "$tag exists, skipped (--force rebuilds it)"
    continue
  fi
  "build_$w"
done
