#!/usr/bin/env bash
# A private Docker engine for CI and for developers without one.
#
#   scripts/docker/engine.sh start    install docker.io if dockerd is missing, start dockerd
#   scripts/docker/engine.sh stop     remove what it started: containers, networks, dockerd,
#                                     its iptables rules, docker0, the state folder
#   scripts/docker/engine.sh status   exit 0 when the engine answers, 3 when not
#   scripts/docker/engine.sh env      print the export lines a caller needs:
#                                       eval "$(scripts/docker/engine.sh env)"
#
# dockerd runs in the background with everything (data root, exec root, socket,
# pidfile, log, daemon.json) under $HURD_DOCKER_STATE (default
# /tmp/hurdmesh-docker); it listens on $HURD_DOCKER_STATE/docker.sock, so
# callers need DOCKER_HOST=unix://$HURD_DOCKER_STATE/docker.sock (`env` prints it).
# Storage driver: overlay2 when an overlay mount works there, else vfs
# (HURD_DOCKER_STORAGE overrides). start and stop are idempotent. Root only.
set -euo pipefail
HURD_DOCKER_TAG=engine
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# always our own engine, whatever DOCKER_HOST the caller had
export DOCKER_HOST="unix://$HURD_DOCKER_SOCK"

PIDFILE="$HURD_DOCKER_STATE/dockerd.pid"
LOGFILE="$HURD_DOCKER_STATE/dockerd.log"
START_TIMEOUT="${HURD_DOCKER_START_TIMEOUT:-60}"

print_env() {
  printf 'export DOCKER_HOST=%q\n' "$DOCKER_HOST"
  printf 'export DOCKER_CONFIG=%q\n' "$DOCKER_CONFIG"
  printf 'export HURD_DOCKER_STATE=%q\n' "$HURD_DOCKER_STATE"
}

our_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
  echo "$pid"
}

answers() { timeout 10 docker info >/dev/null 2>&1; }

# Other dockerd processes (a system engine, say) than ours: if there are, we
# leave docker0, bridges and iptables chains alone, they may be theirs.
other_dockerd() {
  local mine p
  mine="$(our_pid || true)"
  for p in $(pgrep -x dockerd || true); do
    [ "$p" = "$mine" ] || return 0
  done
  return 1
}

pick_storage() {
  if [ -n "${HURD_DOCKER_STORAGE:-}" ]; then echo "$HURD_DOCKER_STORAGE"; return; fi
  local t="$HURD_DOCKER_STATE/ovltest"
  mkdir -p "$t/l" "$t/u" "$t/w" "$t/m"
  if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
    umount "$t/m"; rm -rf "$t"; echo overlay2
  else
    rm -rf "$t"; echo vfs
  fi
}

launch() { # $1 = storage driver; returns 0 when docker info answers
  local drv="$1" pid deadline
  : >"$LOGFILE"
  # setsid + all fds redirected: dockerd must not hold the caller's terminal or pipes.
  setsid dockerd \
    --config-file "$HURD_DOCKER_STATE/daemon.json" \
    --data-root "$HURD_DOCKER_STATE/data" \
    --exec-root "$HURD_DOCKER_STATE/exec" \
    --pidfile "$PIDFILE" \
    --host "unix://$HURD_DOCKER_SOCK" \
    --storage-driver "$drv" \
    </dev/null >>"$LOGFILE" 2>&1 &
  pid=$!
  echo "$drv" >"$HURD_DOCKER_STATE/storage-driver"
  deadline=$((SECONDS + START_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "dockerd ($drv) exited during start-up; last lines of $LOGFILE:"
      tail -n 15 "$LOGFILE" >&2
      return 1
    fi
    if answers; then
      [ -f "$PIDFILE" ] || echo "$pid" >"$PIDFILE"
      return 0
    fi
    sleep 0.3
  done
  log "dockerd ($drv) did not answer within ${START_TIMEOUT}s; last lines of $LOGFILE:"
  tail -n 15 "$LOGFILE" >&2
  kill -TERM "$pid" 2>/dev/null || true
  sleep 2; kill -KILL "$pid" 2>/dev/null || true
  return 1
}

start() {
  need_root
  local pid t0 drv
  if pid="$(our_pid)" && answers; then
    log "already running (pid $pid, $(cat "$HURD_DOCKER_STATE/storage-driver" 2>/dev/null), $DOCKER_HOST)"
    print_env; return 0
  fi
  if [ -d "$HURD_DOCKER_STATE/data" ] || [ -f "$PIDFILE" ]; then
    log "leftovers of an earlier engine in $HURD_DOCKER_STATE: cleaning up first"
    stop
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    t0="$(now)"
    log "dockerd not found: installing docker.io with apt-get"
    apt_install docker.io
    log "docker.io installed in $(since "$t0")s"
  fi
  command -v iptables >/dev/null 2>&1 || apt_install iptables
  mkdir -p "$HURD_DOCKER_STATE" "$DOCKER_CONFIG"
  chmod 711 "$HURD_DOCKER_STATE"
  [ -f "$HURD_DOCKER_STATE/daemon.json" ] || echo '{}' >"$HURD_DOCKER_STATE/daemon.json"
  # What dockerd changes on the host and stop puts back.
  [ -f "$HURD_DOCKER_STATE/orig.ip_forward" ] || cat /proc/sys/net/ipv4/ip_forward >"$HURD_DOCKER_STATE/orig.ip_forward"
  [ -f "$HURD_DOCKER_STATE/orig.forward_policy" ] ||
    { iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3 }' >"$HURD_DOCKER_STATE/orig.forward_policy"; } || true
  # folders dockerd makes outside the state folder (20.10 writes /etc/docker/key.json)
  local d
  for d in /etc/docker /run/docker; do
    [ -e "$d" ] || echo "$d" >>"$HURD_DOCKER_STATE/created.dirs"
  done
  if other_dockerd; then
    log "warning: another dockerd runs on this machine (pids $(pgrep -x dockerd | tr '\n' ' ')); they may fight over docker0"
  fi
  drv="$(pick_storage)"
  log "starting dockerd (storage $drv, state $HURD_DOCKER_STATE)"
  t0="$(now)"
  if ! launch "$drv"; then
    if [ "$drv" = overlay2 ] && [ -z "${HURD_DOCKER_STORAGE:-}" ]; then
      log "retrying with the vfs storage driver"
      cleanup_host
      launch vfs || die "dockerd did not start; see $LOGFILE"
    else
      die "dockerd did not start; see $LOGFILE"
    fi
  fi
  log "dockerd running (pid $(cat "$PIDFILE"), $(cat "$HURD_DOCKER_STATE/storage-driver"), server $(docker version -f '{{.Server.Version}}' 2>/dev/null)) after $(since "$t0")s"
  print_env
}

# Remove docker's iptables rules and chains (v4 and v6, filter/nat/raw/mangle).
clean_iptables() {
  local cmd table rule chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null 2>&1 || continue
    for table in filter nat raw mangle; do
      "$cmd" -t "$table" -S >/dev/null 2>&1 || continue
      # rules in any chain that jump to a DOCKER chain or name a docker bridge
      "$cmd" -t "$table" -S 2>/dev/null | grep -E '^-A ' | grep -E -- '-j DOCKER|docker0|br-[0-9a-f]{12}' |
        while IFS= read -r rule; do
          # shellcheck disable=SC2086
          eval "$cmd -t $table ${rule/-A /-D }" 2>/dev/null || true
        done || true
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ { print $2 }'); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ { print $2 }'); do
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || log "could not delete $cmd -t $table chain $chain"
      done
    done
  done
}

# Host-side leftovers: processes and mounts under the state folder, bridges,
# iptables. Only when no other dockerd runs.
cleanup_host() {
  local p m br pol
  # containerd / shims / docker-proxy started for our engine name our state folder.
  for p in $(grep -lsF "$HURD_DOCKER_STATE/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in
      dockerd|containerd|containerd-shim*|docker-proxy|runc) kill -KILL "$p" 2>/dev/null || true ;;
    esac
  done
  # mounts (overlay layers, netns, shm) below the state folder, deepest first
  findmnt -rn -o TARGET 2>/dev/null | grep -F "$HURD_DOCKER_STATE/" | sort -r | while IFS= read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done || true
  if other_dockerd; then
    log "another dockerd runs: leaving docker0, bridges and iptables as they are"
    return 0
  fi
  for br in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
    case "$br" in docker0|br-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])
      ip link set "$br" down 2>/dev/null || true
      ip link delete "$br" 2>/dev/null && log "removed bridge $br" ;;
    esac
  done
  clean_iptables
  if [ -s "$HURD_DOCKER_STATE/orig.forward_policy" ] && command -v iptables >/dev/null 2>&1; then
    pol="$(cat "$HURD_DOCKER_STATE/orig.forward_policy")"
    iptables -P FORWARD "$pol" 2>/dev/null || true
  elif [ -f "$HURD_DOCKER_STATE/orig.forward_policy" ] && command -v iptables >/dev/null 2>&1; then
    iptables -P FORWARD ACCEPT 2>/dev/null || true # iptables was not there before: kernel default
  fi
  if [ -s "$HURD_DOCKER_STATE/created.dirs" ]; then
    local d
    while IFS= read -r d; do
      case "$d" in /etc/docker|/run/docker) rm -rf "$d" ;; esac
    done <"$HURD_DOCKER_STATE/created.dirs"
  fi
  if [ -s "$HURD_DOCKER_STATE/orig.ip_forward" ]; then
    cat "$HURD_DOCKER_STATE/orig.ip_forward" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
  fi
}

stop() {
  need_root
  local pid i
  if pid="$(our_pid)"; then
    if answers; then
      local ids
      ids="$(timeout 20 docker ps -aq 2>/dev/null || true)"
      if [ -n "$ids" ]; then
        log "removing $(echo "$ids" | wc -l) container(s)"
        # shellcheck disable=SC2086
        timeout 60 docker rm -f -v $ids >/dev/null 2>&1 || log "warning: docker rm -f failed"
      fi
      timeout 30 docker network prune -f >/dev/null 2>&1 || true
    fi
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "dockerd did not stop in 20s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  elif [ -d "$HURD_DOCKER_STATE" ]; then
    log "dockerd not running; cleaning up what it may have left"
  else
    log "not running (no $HURD_DOCKER_STATE)"
  fi
  cleanup_host
  if mountpoint -q "$HURD_DOCKER_STATE" 2>/dev/null; then
    # a state folder the caller mounted (a tmpfs, say): empty it, keep the mount
    find "$HURD_DOCKER_STATE" -mindepth 1 -delete 2>/dev/null || log "warning: could not empty $HURD_DOCKER_STATE"
  elif [ -d "$HURD_DOCKER_STATE" ]; then
    rm -rf "$HURD_DOCKER_STATE" 2>/dev/null || {
      sleep 1; rm -rf "$HURD_DOCKER_STATE" || log "warning: could not remove all of $HURD_DOCKER_STATE"
    }
  fi
  log "stopped; state folder removed"
}

status() {
  local pid
  if pid="$(our_pid)" && answers; then
    echo "running: pid $pid, storage $(cat "$HURD_DOCKER_STATE/storage-driver" 2>/dev/null), server $(docker version -f '{{.Server.Version}}' 2>/dev/null), DOCKER_HOST=$DOCKER_HOST"
    return 0
  fi
  if [ -n "${pid:-}" ]; then echo "dockerd pid $pid runs but does not answer on $DOCKER_HOST"; return 3; fi
  echo "not running (state folder $HURD_DOCKER_STATE)"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
