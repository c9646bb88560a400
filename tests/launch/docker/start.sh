#!/usr/bin/env bash
# A Docker engine for tests/launch/test_docker_stack.py. An engine that answers is used as it
# is; otherwise Debian's dockerd is started, its pid and log in $SWEEP_DOCKER_DIR (default
# /tmp/sweep-docker), and stop.sh stops it again. Needs root.
set -euo pipefail
DIR=${SWEEP_DOCKER_DIR:-/tmp/sweep-docker}
DOCKER=${DOCKER:-/usr/bin/docker}
mkdir -p "$DIR"
if "$DOCKER" info >/dev/null 2>&1; then
  echo "docker engine already running: used as it is"
  exit 0
fi
# A pid file left by an engine that died would stop dockerd from starting.
if [[ -s /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi
setsid dockerd >"$DIR/dockerd.log" 2>&1 </dev/null &
echo $! >"$DIR/dockerd.pid"
for _ in $(seq 300); do
  if "$DOCKER" info >/dev/null 2>&1; then
    echo "dockerd up (pid $(cat "$DIR/dockerd.pid"), log $DIR/dockerd.log)"
    exit 0
  fi
  kill -0 "$(cat "$DIR/dockerd.pid")" 2>/dev/null || break
  sleep 0.2
done
echo "dockerd did not come up; see $DIR/dockerd.log" >&2
exit 1
