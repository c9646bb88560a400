#!/usr/bin/env bash
# The images of docker/compose.yaml for a machine that reaches no image registry, only the
# package archives: a Debian base made here with debootstrap (once; kept as $SWEEP_BASE_IMAGE),
# PostgreSQL from Debian's package on it, and the sweep image on it. Then:
#   POSTGRES_IMAGE=sweep-postgres:bookworm docker compose -f docker/compose.yaml up -d
# Needs root (debootstrap) and Docker with BuildKit. The builds use the host's network, and
# this machine's CA bundle and pip configuration, where present, as BuildKit secrets: pip
# reaches the index as it does here, and neither file is kept in a layer.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
BASE_IMAGE=${SWEEP_BASE_IMAGE:-sweep-base:bookworm}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-sweep-postgres:bookworm}
SWEEP_IMAGE=${SWEEP_IMAGE:-sweep:latest}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${SWEEP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PIP_CONF=${SWEEP_PIP_CONF:-/etc/pip.conf}

die() { echo "local-images.sh: $*" >&2; exit 1; }
command -v "$DOCKER" >/dev/null || die "$DOCKER not found (Debian: apt-get install docker.io)"
"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers $DOCKER (start dockerd)"

if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
  [[ $(id -u) == 0 ]] || die "debootstrap needs root to make $BASE_IMAGE"
  work=$(mktemp -d)
  echo "making $BASE_IMAGE with debootstrap from $MIRROR (once; a minute or two)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm \
    "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed; its log: $work/debootstrap.log"
  rm -rf "$work"/root/var/cache/apt/archives/*.deb "$work"/root/var/lib/apt/lists/*
  tar -C "$work/root" -c . | "$DOCKER" import - "$BASE_IMAGE" >/dev/null
  rm -rf "$work"
fi

build() {  # BuildKit: `docker buildx` where the client has it, else the engine's own
  if "$DOCKER" buildx version >/dev/null 2>&1; then
    "$DOCKER" buildx build --load "$@"
  else
    DOCKER_BUILDKIT=1 "$DOCKER" build "$@"
  fi
}
secrets=()
[[ -f $CA_BUNDLE ]] && secrets+=(--secret "id=ca-bundle,src=$CA_BUNDLE")
[[ -f $PIP_CONF ]] && secrets+=(--secret "id=pip.conf,src=$PIP_CONF")

# Both at once: apt-get's downloads and pip's overlap.
echo "building $POSTGRES_IMAGE and $SWEEP_IMAGE on $BASE_IMAGE (pip installs TensorFlow the first time)"
build --quiet --network host --build-arg BASE="$BASE_IMAGE" -t "$POSTGRES_IMAGE" \
  docker/postgres >/dev/null &
postgres=$!
build --quiet --network host --build-arg BASE="$BASE_IMAGE" "${secrets[@]}" \
  -f docker/Dockerfile -t "$SWEEP_IMAGE" . >/dev/null &
sweep=$!
failed=()
wait "$postgres" || failed+=("$POSTGRES_IMAGE")
wait "$sweep" || failed+=("$SWEEP_IMAGE")
((${#failed[@]} == 0)) || die "building ${failed[*]} failed (the build's output is above)"
echo "built $SWEEP_IMAGE and $POSTGRES_IMAGE"
