"""The ``sweep`` command. Thin: parse arguments, call the stages, turn errors into one line.

Heavy modules (Keras, Optuna, plotly) are imported inside the commands, after the study file
is validated, so a malformed study is answered at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import sweep
from sweep import defaults
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


def _parser() -> argparse.ArgumentParser:
    storage_default = os.environ.get(defaults.STORAGE_ENV, defaults.DEFAULT_STORAGE)
    parser = argparse.ArgumentParser(prog="sweep", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=sweep.versions(),
                        help="print the versions of sweep, Keras, TensorFlow and Optuna")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name, func, help_text, study=True, storage=True, usage=None):
        p = sub.add_parser(name, help=help_text, description=help_text, usage=usage)
        if study:
            p.add_argument("study", metavar="NAME_OR_PATH",
                           help="study name in studies/ or a YAML path")
        if storage:
            p.add_argument(
                "--storage", default=storage_default,
                help=f"database URL (default: ${defaults.STORAGE_ENV} or "
                     f"{defaults.DEFAULT_STORAGE})",
            )
        p.set_defaults(command=func)
        return p

    def artifact_dir(p):
        p.add_argument("--artifact-dir", type=Path, default=defaults.ARTIFACT_DIR,
                       help="Optuna artifact store of the trials' pictures "
                            "(default: ./artifacts)")

    run = command("run", _run, "train every point of a study's search space not yet done")
    worker = command("worker", _worker, "claim and train points of a study until none is left")
    dash = command("dashboard", _dashboard, "serve the study database with optuna-dashboard",
                   False)
    dash.add_argument("--host", default=defaults.DASHBOARD_HOST,
                      help=f"interface (default: {defaults.DASHBOARD_HOST} only)")
    dash.add_argument("--port", type=int, default=defaults.DASHBOARD_PORT)
    dash.add_argument("--allow-remote", action="store_true",
                      help="serve a --host other than loopback: optuna-dashboard has no "
                           "authentication, so whoever reaches it may delete studies")
    describe = command("describe", _describe, "print each model's layers, receptive field and "
                       "parameter count, before any training", storage=False)
    submit = command("submit", _submit, "run a study's workers as cluster batch jobs "
                     "(Slurm job array, Kubernetes Job), now or on a schedule",
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
    for p in (run, worker, submit, dash):
        artifact_dir(p)
    add_worker_options(run)
    for p, choices in ((run, PROGRESS[:3]), (worker, PROGRESS)):
        p.add_argument("--progress", choices=choices, default="auto",
                       help="live: a live view; plain: one line per epoch; auto: live when "
                            "stdout and stderr are terminals" + (
                                "; jsonl: events for a parent process" * (p is worker)))
    options.add_submit_options(submit)
    report = command("report", _report, "write a self-contained HTML report of a study, or "
                     "of several side by side")
    report.add_argument("others", nargs="*", metavar="OTHER",
                        help="more studies to compare with the first (the study is a grouping)")
    report.add_argument("--out", type=Path, help="HTML path (default: reports/NAME.html, "
                                                 "reports/compare-A-B.html)")
    artifact_dir(report)
    command("status", _status, "show a study's trials: done, running, failed, best so far")
    clean = command("clean", _clean, "remove a study's kept models, checkpoints and pictures "
                    "(its results stay), or with --all what deleted studies left", study=False)
    clean.add_argument("study", nargs="?", metavar="NAME_OR_PATH",
                       help="study name in storage, or its study file")
    clean.add_argument("--all", action="store_true",
                       help="instead: the folders and pictures of studies no longer stored")
    clean.add_argument("--dry-run", action="store_true",
                       help="say what would be deleted, and delete nothing")
    clean.add_argument("--checkpoint-dir", type=Path, default=defaults.CHECKPOINT_DIR,
                       help="where kept models and checkpoints are (default: ./checkpoints)")
    artifact_dir(clean)
    summary = command("summary", _summary, "say in words which knobs matter, by how much, and "
                      "whether the difference is more than noise")
    summary.add_argument("others", nargs="*", metavar="OTHER",
                         help="more studies: each compared with the first, point by point")
    export = command("export", _export, "write the report's results frame as csv or parquet, "
                     "or a trial's trained model")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.add_argument("--model", metavar="best|TRIAL",
                        help="write this trial's trained model (.keras) instead of the frame")
    export.add_argument("--checkpoint-dir", type=Path, default=defaults.CHECKPOINT_DIR,
                        help="where the study's runs kept their models (default: ./checkpoints)")
    export.add_argument("--out", type=Path, help="output path (default: NAME.csv / "
                                                 "NAME.parquet / NAME-trialN.keras)")
    return parser


def _study_name(arg: str) -> str:
    """A study file's name, or the argument itself when it names a study in storage only."""
    from sweep.study import load_study

    try:
        return load_study(arg).name
    except SweepError:
        if arg.endswith((".yaml", ".yml")):
            raise
        return arg


def _run(args) -> int:
    from sweep.report import report_study
    from sweep.run.options import run_options, worker_options
    from sweep.run.session import run_study
    from sweep.study import load_study

    spec = load_study(args.study, args.set, args.max_points)
    code = run_study(spec, run_options(args, workers=args.workers, gpus=args.gpus,
                                       trials_per_gpu=args.trials_per_gpu,
                                       worker_options=tuple(worker_options(args))))
    if code == 0:
        print(f"[{spec.name}] report: {report_study(spec.name, args.storage, args.artifact_dir)}")
    return code


def _worker(args) -> int:
    from sweep.run.options import run_options
    from sweep.run.session import run_here
    from sweep.study import load_study

    try:
        return run_here(load_study(args.study, args.set, args.max_points), run_options(args))
    except KeyboardInterrupt:
        if args.progress != "jsonl":
            raise
        return 130  # a worker of `sweep run --workers N`: its parent says it, once


def _submit(args) -> int:
    from sweep.launch.submit import plan_job, submit, unschedule, warnings
    from sweep.run.options import worker_options
    from sweep.study import load_study

    spec = load_study(args.study, args.set, args.max_points)
    if args.unschedule:
        print(unschedule(spec.name, args.scheduler))
        return 0
    job = plan_job(spec, storage_url=args.storage, job_dir=defaults.REPORTS_DIR / spec.name,
                   worker_options=worker_options(args, folders=False),
                   **options.submit_options(args))
    for line in warnings(job, args.scheduler):
        print(f"sweep: warning: {line}", file=sys.stderr)
    print(submit(job, args.scheduler, dry_run=args.dry_run))
    return 0


def _describe(args) -> int:
    from sweep.models import complete_spec
    from sweep.models.describe import configurations, dataset_balance, format_configurations
    from sweep.study import load_study
    from sweep.training.device import precision_warnings

    # complete_spec runs a hypermodel's build(hp)
    spec = complete_spec(load_study(args.study, args.set, args.max_points))
    print(format_configurations(spec, configurations(spec, args.data_dir)))
    print("\n" + "\n".join(dataset_balance(spec, args.data_dir) + precision_warnings(
        spec.values_of("training.precision"))))
    return 0


def _report(args) -> int:
    names = [_study_name(n) for n in (args.study, *args.others)]
    if len(names) > 1:
        from sweep.report import compare_studies

        print(compare_studies(names, args.storage, args.out))
    else:
        from sweep.report import report_study

        print(report_study(names[0], args.storage, args.artifact_dir, args.out))
    return 0


def _export(args) -> int:
    from sweep.report import export, export_model, load_study_result
    from sweep.report.exports import MODEL_INPUTS
    from sweep.study import file_name

    result = load_study_result(_study_name(args.study), args.storage)
    if args.model is not None:
        print(export_model(result, args.model, args.storage, args.checkpoint_dir, args.out))
        print(f"sweep: {MODEL_INPUTS}", file=sys.stderr)
    else:
        default = Path(f"{file_name(result.name)}.{args.format}")
        print(export(result, args.format, args.out or default))
    return 0


def _summary(args) -> int:
    from sweep.report import load_study_result
    from sweep.report.summary import answer_lines, comparison

    names = [_study_name(n) for n in (args.study, *args.others)]
    for name in names:
        print("\n".join(answer_lines(name, args.storage)))
    if len(names) > 1:
        results = [load_study_result(n, args.storage, details=False) for n in names]
        print("\n".join(comparison(results)))
    return 0


def _clean(args) -> int:
    from sweep.report.disk import clean

    print(clean(args.study and _study_name(args.study), args.all, args.storage,
                args.checkpoint_dir, args.artifact_dir, args.dry_run))
    return 0


def _status(args) -> int:
    from sweep.report import study_status

    print(study_status(_study_name(args.study), args.storage))
    return 0


def _dashboard(args) -> int:
    from sweep.report.dashboard import serve

    serve(args.storage, args.host, args.port, args.artifact_dir, args.allow_remote)
    return 0


if __name__ == "__main__":
    sys.exit(main())
