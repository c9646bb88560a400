"""The ``sweep`` command. Thin: parse arguments, call the stages, turn errors into one line.

Heavy modules (Keras, Optuna, plotly) are imported inside the commands, after the study file
is validated, so a malformed study is answered at once.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import sweep
from sweep import commands, defaults
from sweep.errors import SweepError
from sweep.launch import options
from sweep.run.devices import add_worker_options
from sweep.run.options import add_fuse_option

PROGRESS = ("auto", "live", "plain", "jsonl")  # --progress: sweep.run.console.sweep_console

DESCRIPTION = """\
Hyperparameter sweeps for small Keras image classifiers: train every point of a study file's
search space, store every epoch of every trial with Optuna, and report the grouped results."""
EPILOG = """\
examples:
  sweep run quickstart                  train the shipped digits study (reports/quickstart.html)
  sweep run conv_width --workers 2      two worker processes on this machine
  sweep status conv_width               what is done, running and failed
  sweep COMMAND --help                  the options of one command
Study files, storage, workers and clusters: README.md"""


def main(argv: list[str] | None = None) -> int:
    defaults.set_framework_env()
    # tf.function retracing notes (one model per trial retraces by design) are not for users.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    args = _parser().parse_args(argv)
    try:
        password_file = os.environ.get(defaults.PASSWORD_FILE_ENV)
        if password_file and getattr(args, "storage", None):
            from sweep.store import with_password_file

            args.storage = with_password_file(args.storage, password_file)
        return args.command(args) or 0
    except SweepError as err:
        print(f"sweep: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("sweep: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output's reader went away (`sweep status | head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush
        return 1
    except SystemExit as exited:  # not argparse's (parsed above): the study's own code
        print(f"sweep: error: the study's Python code (a hypermodel?) called "
              f"sys.exit({'' if exited.code is None else repr(exited.code)}); the trial it "
              "was in is given back, not counted as done", file=sys.stderr)
        return 2
    except Exception as err:  # only a transaction lost with its connection becomes a line
        from sweep.store.reconnect import lost_transaction

        said = lost_transaction(err)
        if said is None:
            raise
        print(f"sweep: error: {said}", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``sweep`` command's process (its console script and ``python -m sweep.cli``):
    ``main``, then an exit that skips the interpreter's teardown.

    Once the command has returned, what is left to do is what a process owes the outside:
    threads that are not daemons finish, exit handlers run, output is flushed. The teardown
    that follows (every module's objects freed one by one) changes nothing outside, and with a
    framework loaded it can wait: TensorFlow frees an input pipeline that a failed ``fit``
    left behind by waiting on its threads, seconds to tens of seconds, during which a worker
    whose storage was lost has said its error line but not yet exited.
    """
    code = main()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # CPython runs them so at exit too
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader gone (`sweep status | head`)
            stream.flush()
    os._exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweep", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=sweep.versions(),
                        help="print the versions of sweep, Keras, TensorFlow and Optuna")
    commands = _Commands(parser.add_subparsers(required=True, metavar="COMMAND"))
    _training_commands(commands)
    _dashboard_command(commands)
    _result_commands(commands)
    return parser


class _Commands:
    """The subcommands being declared, with the options several of them share."""

    def __init__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self.sub = sub
        self.storage_default = os.environ.get(defaults.STORAGE_ENV, defaults.DEFAULT_STORAGE)

    def command(self, name: str, func: Callable[[argparse.Namespace], int], help_text: str,
                study: bool = True, storage: bool = True,
                usage: str | None = None) -> argparse.ArgumentParser:
        """Declare ``sweep NAME``, run by ``func(args)``; with the study and ``--storage``
        arguments unless told otherwise."""
        p = self.sub.add_parser(name, help=help_text, description=help_text, usage=usage)
        if study:
            p.add_argument("study", metavar="NAME_OR_PATH",
                           help="study name in studies/ or a YAML path")
        if storage:
            p.add_argument(
                "--storage", default=self.storage_default,
                help=f"database URL (default: ${defaults.STORAGE_ENV} or "
                     f"{defaults.DEFAULT_STORAGE})",
            )
        p.set_defaults(command=func)
        return p

    @staticmethod
    def artifact_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--artifact-dir", type=Path, default=defaults.ARTIFACT_DIR,
                       help="Optuna artifact store of the trials' pictures "
                            "(default: ./artifacts)")


def _training_commands(c: _Commands) -> None:
    """``run``, ``worker``, ``describe`` and ``submit``: the commands that read a study file
    (with ``--set``), and the training options the first three share."""
    run = c.command("run", commands.run,
                    "train every point of a study's search space not yet done")
    worker = c.command("worker", commands.worker,
                       "claim and train points of a study until none is left")
    describe = c.command("describe", commands.describe, "print each model's layers, "
                         "receptive field and parameter count, before any training",
                         storage=False)
    submit = c.command("submit", commands.submit, "run a study's workers as cluster batch "
                       "jobs (Slurm job array, Kubernetes Job), now or on a schedule",
                       usage=options.USAGE)
    for p in (run, worker, describe, submit):
        p.add_argument("--set", action="append", default=[], metavar="dotted.path=value",
                       help="override a study field, e.g. --set training.epochs=3 (repeatable)")
        p.add_argument("--data-dir", default=os.environ.get(defaults.DATA_DIR_ENV),
                       help="folder of pre-downloaded dataset archives (default: "
                            "$SWEEP_DATA_DIR)")
        p.add_argument("--max-points", type=int, default=defaults.MAX_POINTS, metavar="N",
                       help="refuse a study of more points than this (default: "
                            f"{defaults.MAX_POINTS:,})")
    for p in (run, worker, submit):
        p.add_argument("--checkpoint-dir", type=Path, default=defaults.CHECKPOINT_DIR,
                       help="where points save their training state (shared by all workers "
                            "of a study; default: ./checkpoints)")
        p.add_argument("--checkpoint-every", type=float, default=defaults.CHECKPOINT_EVERY_S,
                       metavar="SECONDS", help="seconds of training between checkpoints "
                                               f"(default: {defaults.CHECKPOINT_EVERY_S:g})")
        add_fuse_option(p)
        c.artifact_dir(p)
    add_worker_options(run)
    for p, choices in ((run, PROGRESS[:3]), (worker, PROGRESS)):
        p.add_argument("--progress", choices=choices, default="auto",
                       help="live: a live view; plain: one line per epoch; auto: live when "
                            "stdout and stderr are terminals" + (
                                "; jsonl: events for a parent process" * (p is worker)))
    options.add_submit_options(submit)


def _dashboard_command(c: _Commands) -> None:
    dash = c.command("dashboard", commands.dashboard,
                     "serve the study database with optuna-dashboard", False)
    dash.add_argument("--host", default=defaults.DASHBOARD_HOST,
                      help=f"interface (default: {defaults.DASHBOARD_HOST} only)")
    dash.add_argument("--port", type=int, default=defaults.DASHBOARD_PORT)
    dash.add_argument("--allow-remote", action="store_true",
                      help="serve a --host other than loopback: optuna-dashboard has no "
                           "authentication, so whoever reaches it may delete studies")
    c.artifact_dir(dash)


def _result_commands(c: _Commands) -> None:
    """``report``, ``status``, ``summary``, ``export`` and ``clean``: what a study's results
    are, and what its files take."""
    report = c.command("report", commands.report, "write a self-contained HTML report of a "
                       "study, or of several side by side")
    report.add_argument("others", nargs="*", metavar="OTHER",
                        help="more studies to compare with the first (the study is a grouping)")
    report.add_argument("--out", type=Path, help="HTML path (default: reports/NAME.html, "
                                                 "reports/compare-A-B.html)")
    c.artifact_dir(report)
    c.command("status", commands.status,
              "show a study's trials: done, running, failed, best so far")
    summary = c.command("summary", commands.summary, "say in words which knobs matter, by how "
                        "much, and whether the difference is more than noise")
    summary.add_argument("others", nargs="*", metavar="OTHER",
                         help="more studies: each compared with the first, point by point")
    export = c.command("export", commands.export, "write the report's results frame as csv or "
                       "parquet, or a trial's trained model")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.add_argument("--model", metavar="best|TRIAL",
                        help="write this trial's trained model (.keras) instead of the frame")
    export.add_argument("--checkpoint-dir", type=Path, default=defaults.CHECKPOINT_DIR,
                        help="where the study's runs kept their models (default: ./checkpoints)")
    export.add_argument("--out", type=Path, help="output path (default: NAME.csv / "
                                                 "NAME.parquet / NAME-trialN.keras)")
    clean = c.command("clean", commands.clean, "remove a study's kept models, checkpoints and "
                      "pictures (its results stay), or with --all what deleted studies left",
                      study=False)
    clean.add_argument("study", nargs="?", metavar="NAME_OR_PATH",
                       help="study name in storage, or its study file")
    clean.add_argument("--all", action="store_true",
                       help="instead: the folders and pictures of studies no longer stored")
    clean.add_argument("--dry-run", action="store_true",
                       help="say what would be deleted, and delete nothing")
    clean.add_argument("--checkpoint-dir", type=Path, default=defaults.CHECKPOINT_DIR,
                       help="where kept models and checkpoints are (default: ./checkpoints)")
    c.artifact_dir(clean)


if __name__ == "__main__":
    entry()
