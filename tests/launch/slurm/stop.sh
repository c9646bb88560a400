#!/usr/bin/env bash
# Stops the daemons that start.sh started (listed in $SWEEP_SLURM_DIR/started), by pid file.
set -uo pipefail
DIR=${SWEEP_SLURM_DIR:-/tmp/sweep-slurm}
[[ -f $DIR/started ]] || exit 0
stop() {  # pid file
  [[ -s $1 ]] || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}
grep -qx slurmd "$DIR/started" && stop "$DIR/slurmd.pid"
grep -qx slurmctld "$DIR/started" && stop "$DIR/slurmctld.pid"
grep -qx munged "$DIR/started" && stop /run/munge/munged.pid
rm -f "$DIR/started"
