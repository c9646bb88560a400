#!/usr/bin/env bash
# Stops the dockerd that start.sh started (its pid in $SWEEP_DOCKER_DIR/dockerd.pid), if any;
# an engine that was already running is left alone.
set -uo pipefail
DIR=${SWEEP_DOCKER_DIR:-/tmp/sweep-docker}
[[ -s $DIR/dockerd.pid ]] || exit 0
pid=$(cat "$DIR/dockerd.pid")
rm -f "$DIR/dockerd.pid"
kill "$pid" 2>/dev/null || exit 0
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
echo "dockerd (pid $pid) still running after 30 s; killing it" >&2
kill -9 "$pid" 2>/dev/null
