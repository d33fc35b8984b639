#!/usr/bin/env bash
# Makes `docker compose` (v2) available.
#
#   scripts/docker/compose.sh        prints `export DOCKER_CONFIG=...` on stdout
#
# When `docker compose version` does not already answer v2, it downloads Debian
# trixie's docker-compose package (2.26; bookworm only has v1) with apt-get
# using a PRIVATE sources list, state and cache: the same mirror and keyring as
# the machine's own Debian source in /etc/apt/sources.list*, nothing of the
# system's apt configuration or state changes. The package is unpacked with
# dpkg-deb -x and its CLI plugin copied to $DOCKER_CONFIG/cli-plugins/
# (DOCKER_CONFIG defaults to $HURD_DOCKER_STATE/config, i.e.
# /tmp/hurdmesh-docker/config). The downloaded .deb is kept in
# $HURD_DOCKER_CACHE (default /var/tmp/hurdmesh-docker-cache) for next time.
set -euo pipefail
HURD_DOCKER_TAG=compose
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

CACHE="${HURD_DOCKER_CACHE:-/var/tmp/hurdmesh-docker-cache}"
SUITE="${HURD_COMPOSE_SUITE:-trixie}"
PLUGIN="$DOCKER_CONFIG/cli-plugins/docker-compose"

compose_v2() {
  local v
  v="$(docker compose version --short 2>/dev/null || true)"
  case "$v" in v2.*|2.*) echo "$v"; return 0 ;; *) return 1 ;; esac
}

if v="$(compose_v2)"; then
  log "docker compose $v already available"
  printf 'export DOCKER_CONFIG=%q\n' "$DOCKER_CONFIG"
  exit 0
fi

# The machine's own Debian mirror and keyring: first deb822 stanza or one-line
# entry that names a plain bookworm-like suite (not -security / -updates).
mirror_and_keyring() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() { if (uri != "" && suites ~ /(^| )[a-z]+( |$)/ && uri ~ /debian\/?$/ && !done) { print uri, key; done = 1 } uri = ""; suites = ""; key = "" }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { $1 = ""; suites = $0 }
      /^Signed-By:/ { key = $2 }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -nE 's/^deb +(\[([^]]*)\] +)?([^ ]*debian\/?) +[a-z]+ .*/\3 \2/p' "$f" |
      sed -E 's/ .*signed-by=([^ ]+).*/ \1/; s/ [^/]*$/ /'
  done
}
read -r URI KEYRING < <(mirror_and_keyring | head -n 1) || true
URI="${HURD_DEBIAN_MIRROR:-${URI:-http://deb.debian.org/debian}}"
KEYRING="${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
[ -f "$KEYRING" ] || die "keyring $KEYRING not found"

t0="$(now)"
mkdir -p "$CACHE"
deb="$(ls -t "$CACHE"/docker-compose_2.*_amd64.deb 2>/dev/null | head -n 1 || true)"
if [ -z "$deb" ]; then
  A="$CACHE/apt-$SUITE"
  mkdir -p "$A/state/lists/partial" "$A/cache/archives/partial" "$A/sources.list.d" "$A/preferences.d"
  echo "deb [signed-by=$KEYRING] $URI $SUITE main" >"$A/sources.list"
  : >"$A/state/status"
  apt_opts=(
    -o "Dir::State=$A/state" -o "Dir::State::status=$A/state/status"
    -o "Dir::Cache=$A/cache"
    -o "Dir::Etc::sourcelist=$A/sources.list" -o "Dir::Etc::sourceparts=$A/sources.list.d"
    -o "Dir::Etc::preferences=$A/preferences" -o "Dir::Etc::preferencesparts=$A/preferences.d"
    -o Acquire::Languages=none -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root
  )
  log "downloading $SUITE's docker-compose from $URI (private apt state in $A)"
  apt-get "${apt_opts[@]}" -qq update >/dev/null || die "apt-get update for $SUITE failed"
  (cd "$CACHE" && apt-get "${apt_opts[@]}" -qq download docker-compose >/dev/null) || die "apt-get download docker-compose ($SUITE) failed"
  # the index is ~10 MB and only needed for this one download
  rm -rf "$A"
  deb="$(ls -t "$CACHE"/docker-compose_*_amd64.deb | head -n 1)"
fi
x="$(mktemp -d "${TMPDIR:-/tmp}/hurdmesh-compose.XXXXXX")"
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"
src=""
for c in usr/libexec/docker/cli-plugins/docker-compose usr/lib/docker/cli-plugins/docker-compose usr/bin/docker-compose; do
  if [ -f "$x/$c" ] && [ ! -L "$x/$c" ]; then src="$x/$c"; break; fi
done
[ -n "$src" ] || die "no docker-compose binary in $(basename "$deb")"
mkdir -p "$(dirname "$PLUGIN")"
install -m 0755 "$src" "$PLUGIN"
v="$(compose_v2)" || die "docker compose does not answer v2 after installing $PLUGIN ($("$PLUGIN" version 2>&1 | head -n 1))"
log "docker compose $v installed as $PLUGIN from $(basename "$deb") in $(since "$t0")s"
printf 'export DOCKER_CONFIG=%q\n' "$DOCKER_CONFIG"
