"""What the options of ``sweep run`` and ``sweep worker`` become: the ``RunOptions`` of a run
here, and the command line of a worker that runs elsewhere (a local child process, a cluster
job's task). The CLI declares the options (``--fuse`` declared here, for the three commands
that take it); this turns them into what the run stage takes.
"""

from __future__ import annotations

import argparse
from typing import Any

from sweep import defaults
from sweep.run.session import RunOptions


def run_options(args: argparse.Namespace, **more: Any) -> RunOptions:
    """``RunOptions`` from the options of ``sweep run`` or ``sweep worker``."""
    return RunOptions(
        storage=args.storage, data_dir=args.data_dir, checkpoint_dir=args.checkpoint_dir,
        checkpoint_every_s=args.checkpoint_every, artifact_dir=args.artifact_dir,
        progress=args.progress, fuse=args.fuse, **more)


def worker_options(args: argparse.Namespace, folders: bool = True) -> list[str]:
    """A worker's options from ``args``, less the study file and ``--storage`` (which
    reaches workers apart from their command line: its password must not show in ``ps``);
    without ``folders`` also less the checkpoint and artifact folders (a cluster job places
    them where its workers run)."""
    out = ["--checkpoint-dir", str(args.checkpoint_dir),
           "--artifact-dir", str(args.artifact_dir)] if folders else []
    out += ["--checkpoint-every", str(args.checkpoint_every)]
    if args.fuse != "auto":
        out += ["--fuse", args.fuse]
    for item in args.set:
        out += ["--set", item]
    if args.max_points != defaults.MAX_POINTS:
        out += ["--max-points", str(args.max_points)]
    return out + (["--data-dir", args.data_dir] if args.data_dir else [])


def add_fuse_option(command: argparse.ArgumentParser) -> None:
    """Declare ``--fuse`` (``sweep run``, ``sweep worker``, ``sweep submit``)."""
    command.add_argument("--fuse", type=_fuse_option, default="auto", metavar="K|auto|off",
                         help="train up to K grid points of one model as one program (JAX; "
                              "auto: sized from the GPU's memory, off on a CPU and under "
                              "TensorFlow or torch; default: auto)")


def _fuse_option(text: str) -> str:
    if text in ("auto", "off") or (text.isdigit() and int(text) >= 1):
        return text
    raise argparse.ArgumentTypeError(f"expected a number of at least 1, auto or off, got "
                                     f"{text!r}")
