#!/usr/bin/env bash
# Start or stop a Docker engine by hand, for machines that ship only the docker CLI (such as
# our CI machines), following shared notes: Debian's docker.io, containerd and dockerd run
# in the background with their PIDs kept, containers stay off every network but their own
# bridges (no iptables, no forwarding, no masquerading), and a base image is built with
# debootstrap because no registry can be reached.
#
#   docker/engine.sh start     # idempotent; exit 0 when an engine answers
#   docker/engine.sh stop      # stops only what `start` started, by PID
#
# If an engine cannot be had, `start` says why and exits 1; the docker tests then skip.
set -uo pipefail
state=${DIST_LOGREG_DOCKER_STATE:-/run/dist-logreg-docker}
base=${BASE_IMAGE_NAME:-dist-logreg-base}

say() { echo "engine.sh: $*"; }

start() {
  if docker info >/dev/null 2>&1; then say "an engine already answers"; ensure_base; return; fi
  [ "$(id -u)" = 0 ] || { say "not root: cannot start an engine"; return 1; }
  if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null \
     || ! command -v debootstrap >/dev/null; then
    [ -x /usr/sbin/policy-rc.d ] || { say "no policy-rc.d: refusing to let apt start services"; return 1; }
    say "installing docker.io docker-compose debootstrap"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
       --no-install-recommends docker.io docker-compose debootstrap) >/dev/null 2>&1 \
      || { say "apt-get install failed"; return 1; }
  fi
  mkdir -p "$state"
  containerd >"$state/containerd.log" 2>&1 &
  echo $! >"$state/containerd.pid"
  for _ in $(seq 1 50); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.2; done
  dockerd --containerd=/run/containerd/containerd.sock --storage-driver=overlay2 \
    --bip 198.18.200.1/24 --iptables=false --ip-forward=false --ip-masq=false \
    >"$state/dockerd.log" 2>&1 &
  echo $! >"$state/dockerd.pid"
  for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.3; done
  docker info >/dev/null 2>&1 || { say "dockerd did not answer: $(tail -3 "$state/dockerd.log")"; return 1; }
  say "engine up"
  ensure_base
}

ensure_base() {
  docker image inspect "$base" >/dev/null 2>&1 && return 0
  command -v debootstrap >/dev/null || { say "no debootstrap: cannot build $base"; return 1; }
  mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$mirror" ] || mirror=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$mirror" ] || { say "no Debian mirror found in the apt sources"; return 1; }
  rootfs=$(mktemp -d)
  say "building base image $base with debootstrap (about a minute)"
  if debootstrap --variant=minbase \
      --include=python3,python3-venv,python3-pip,openssh-server,openssh-client,iproute2 \
      bookworm "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1; then
    tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
    rm -rf "$rootfs"
    say "base image $base ready"
  else
    rm -rf "$rootfs"
    say "debootstrap failed: $(tail -2 "$state/debootstrap.log")"
    return 1
  fi
}

stop() {
  for name in dockerd containerd; do
    pidfile="$state/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
  done
  say "engine stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: docker/engine.sh start|stop" >&2; exit 2 ;;
esac
