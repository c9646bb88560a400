"""The options of ``sweep submit``, beside the job they become: declared for ``--help``,
grouped by the scheduler that takes them (so the usage shows what each one requires), and
read back as ``plan_job``'s keywords. The CLI adds the options every training command has."""

from __future__ import annotations

import argparse
from pathlib import Path

USAGE = """\
sweep submit NAME_OR_PATH --scheduler slurm --time HH:MM:SS [options]
       sweep submit NAME_OR_PATH --scheduler kubernetes [--image IMAGE] [options]"""
# Each pod's requests: a worker trains one of the seeds' models at a time (up to ~600,000
# parameters) on CIFAR-sized data held as float32 (~0.75 GB for CIFAR-10's 60,000 images)
# beside TensorFlow's own ~1 GB: 2 cores and 4 GiB fit with room.
DEFAULT_CPUS = 2.0
DEFAULT_MEMORY = "4Gi"


def add_submit_options(submit: argparse.ArgumentParser) -> None:
    """Declare ``sweep submit``'s own options on its parser."""
    submit.add_argument("--scheduler", required=True, metavar="slurm|kubernetes",
                        help="the batch scheduler (required)")
    submit.add_argument("--workers", type=int, default=1, help="array tasks / pods (default: 1)")
    submit.add_argument("--gpus-per-worker", type=int, default=0, metavar="G",
                        help="GPUs of each worker (default: 0)")
    submit.add_argument("--time", metavar="HH:MM:SS",
                        help="wall-clock limit of each worker: required with slurm; on "
                             "kubernetes the Job's deadline (default: none)")
    submit.add_argument("--schedule", metavar='"CRON"', help='recurring run, e.g. "0 2 * * *"')
    submit.add_argument("--dry-run", action="store_true", help="print the files, submit nothing")
    slurm = submit.add_argument_group("slurm (--time is required)")
    slurm.add_argument("--workdir", type=Path, metavar="DIR",
                       help="the workers' working folder, on a file system the nodes share: "
                            "relative --checkpoint-dir, --artifact-dir and the logs start "
                            "there (default: this folder)")
    slurm.add_argument("--partition", help="Slurm partition")
    slurm.add_argument("--account", help="Slurm account")
    slurm.add_argument("--python", help="interpreter the workers run (default: this one)")
    slurm.add_argument("--unschedule", action="store_true", help="remove the Slurm schedule")
    kubernetes = submit.add_argument_group("kubernetes")
    kubernetes.add_argument("--image", help="worker image (default: sweep:latest, with a warning)")
    kubernetes.add_argument("--namespace", help="Kubernetes namespace")
    kubernetes.add_argument("--cpus-per-worker", type=float, default=DEFAULT_CPUS, metavar="N",
                            help=f"CPU cores each pod requests (default: {DEFAULT_CPUS:g})")
    kubernetes.add_argument("--memory-per-worker", default=DEFAULT_MEMORY, metavar="QUANTITY",
                            help=f"memory each pod requests (default: {DEFAULT_MEMORY})")
    kubernetes.add_argument("--volume-claim", metavar="NAME",
                            help="a PersistentVolumeClaim (ReadWriteMany) for the checkpoints "
                                 "and artifacts, which otherwise are lost with each pod")


def submit_options(args: argparse.Namespace) -> dict:
    """``plan_job``'s keywords from the parsed options (the study and storage apart)."""
    return {
        "scheduler": args.scheduler, "workers": args.workers,
        "gpus_per_worker": args.gpus_per_worker, "time": args.time,
        "schedule": args.schedule, "workdir": args.workdir, "partition": args.partition,
        "account": args.account, "python": args.python, "image": args.image,
        "namespace": args.namespace, "cpus_per_worker": args.cpus_per_worker,
        "memory_per_worker": args.memory_per_worker, "volume_claim": args.volume_claim,
        "checkpoint_dir": args.checkpoint_dir, "artifact_dir": args.artifact_dir,
    }
