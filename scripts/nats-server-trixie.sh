#!/usr/bin/env bash
# Makes a nats-server that takes `sync_interval` available, for the places
# that claim JetStream durability (restart in place: auth's handles).
#
#   scripts/nats-server-trixie.sh      prints the nats-server binary's path on stdout
#
# Debian bookworm's nats-server 2.9.10 rejects `sync_interval` ("unknown
# field"), so JetStream acknowledges writes before they are fsynced (every
# 2 minutes by default): Jepsen's NATS 2.12.1 analysis shows a power loss
# then loses acknowledged writes. Debian trixie's 2.10.27 accepts
# `sync_interval: always`. This downloads trixie's nats-server package the
# way scripts/docker/compose.sh downloads trixie's docker-compose: apt-get
# with a PRIVATE sources list, state and cache (the machine's own Debian
# mirror and keyring; nothing of the system's apt configuration or state
# changes), then dpkg-deb -x. Nothing is installed system-wide. The .deb
# and the unpacked binary are kept in $HURD_NATS_CACHE (default
# /var/tmp/hurdmesh-nats-cache) for next time.
set -euo pipefail
HURD_DOCKER_TAG=nats-server
# shellcheck source=docker/lib.sh
. "$(dirname "$0")/docker/lib.sh"

CACHE="${HURD_NATS_CACHE:-/var/tmp/hurdmesh-nats-cache}"
SUITE="${HURD_NATS_SUITE:-trixie}"
BIN="$CACHE/bin/nats-server"

takes_sync_interval() {
  local d rc=0
  d="$(mktemp -d "${TMPDIR:-/tmp}/hurdmesh-nats-check.XXXXXX")"
  printf 'jetstream { store_dir: "%s", sync_interval: always }\n' "$d" >"$d/c.conf"
  "$1" -t -c "$d/c.conf" >/dev/null 2>&1 || rc=1
  rm -rf "$d"
  return "$rc"
}

if [ -x "$BIN" ] && takes_sync_interval "$BIN"; then
  log "$("$BIN" --version) already in $BIN"
  echo "$BIN"
  exit 0
fi

# The machine's own Debian mirror and keyring (as compose.sh finds them).
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
deb="$(ls -t "$CACHE"/nats-server_*_amd64.deb 2>/dev/null | head -n 1 || true)"
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
  log "downloading $SUITE's nats-server from $URI (private apt state in $A)"
  apt-get "${apt_opts[@]}" -qq update >/dev/null || die "apt-get update for $SUITE failed"
  (cd "$CACHE" && apt-get "${apt_opts[@]}" -qq download nats-server >/dev/null) || die "apt-get download nats-server ($SUITE) failed"
  # the index is ~10 MB and only needed for this one download
  rm -rf "$A"
  deb="$(ls -t "$CACHE"/nats-server_*_amd64.deb | head -n 1)"
fi
x="$(mktemp -d "${TMPDIR:-/tmp}/hurdmesh-nats.XXXXXX")"
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"
src=""
for c in usr/sbin/nats-server usr/bin/nats-server; do
  if [ -f "$x/$c" ]; then src="$x/$c"; break; fi
done
[ -n "$src" ] || die "no nats-server binary in $(basename "$deb")"
mkdir -p "$(dirname "$BIN")"
install -m 0755 "$src" "$BIN"
takes_sync_interval "$BIN" || die "$BIN ($("$BIN" --version 2>&1)) rejects sync_interval: always"
log "$("$BIN" --version) in $BIN from $(basename "$deb") in $(since "$t0")s"
echo "$BIN"
