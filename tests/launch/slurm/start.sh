#!/usr/bin/env bash
# A single-node Slurm cluster on localhost from Debian's packages (munge, slurmctld, slurmd),
# for tests/test_cluster.py. Idempotent: daemons already running from an earlier call are kept.
# Everything lives in $SWEEP_SLURM_DIR (default /tmp/sweep-slurm): the config (point
# SLURM_CONF at $SWEEP_SLURM_DIR/slurm.conf), state, spool, logs and pid files. The daemons
# this script starts are listed in $SWEEP_SLURM_DIR/started; stop.sh stops those only.
# Needs root (slurmd launches jobs as their users). No cgroups: proctrack/linuxproc.
set -euo pipefail
DIR=${SWEEP_SLURM_DIR:-/tmp/sweep-slurm}
PORT=${SWEEP_SLURM_PORT:-16817}  # slurmctld; slurmd listens on PORT+1 (not Slurm's defaults)
mkdir -p "$DIR/state" "$DIR/spool"
touch "$DIR/started"
export SLURM_CONF=$DIR/slurm.conf

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# munge: Debian's package makes the key; the daemon runs as the munge user.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  install -d -o munge -g munge -m 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  echo munged >>"$DIR/started"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

cat >"$DIR/slurm.conf.new" <<CONF
ClusterName=sweeptest
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
NodeName=localhost CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
mv "$DIR/slurm.conf.new" "$DIR/slurm.conf"

if ! alive "$DIR/slurmctld.pid"; then
  /usr/sbin/slurmctld -i
  echo slurmctld >>"$DIR/started"
fi
if ! alive "$DIR/slurmd.pid"; then
  /usr/sbin/slurmd
  echo slurmd >>"$DIR/started"
fi

# Ready when the node accepts jobs.
for _ in $(seq 150); do
  state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
  case $state in idle*|mixed*|allocated*) echo "slurm up: SLURM_CONF=$SLURM_CONF"; exit 0;; esac
  sleep 0.2
done
echo "slurm did not come up (node state: ${state:-none}); see $DIR/slurmctld.log, $DIR/slurmd.log" >&2
exit 1
