"""What each ``sweep`` command does (``sweep.cli`` declares them and their options): each
turns its parsed arguments into a call of the stage it runs, importing the heavy modules
(Keras, Optuna, plotly) only then, after the study file is validated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweep import defaults
from sweep.errors import SweepError
from sweep.launch import options


def _study_name(arg: str) -> str:
    """A study file's name, or the argument itself when it names a study in storage only."""
    from sweep.study import load_study

    try:
        return load_study(arg).name
    except SweepError:
        if arg.endswith((".yaml", ".yml")):
            raise
        return arg


def run(args: argparse.Namespace) -> int:
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


def worker(args: argparse.Namespace) -> int:
    from sweep.run.options import run_options
    from sweep.run.session import run_here
    from sweep.study import load_study

    try:
        return run_here(load_study(args.study, args.set, args.max_points), run_options(args))
    except KeyboardInterrupt:
        if args.progress != "jsonl":
            raise
        return 130  # a worker of `sweep run --workers N`: its parent says it, once


def submit(args: argparse.Namespace) -> int:
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


def describe(args: argparse.Namespace) -> int:
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


def report(args: argparse.Namespace) -> int:
    names = [_study_name(n) for n in (args.study, *args.others)]
    if len(names) > 1:
        from sweep.report import compare_studies

        print(compare_studies(names, args.storage, args.out))
    else:
        from sweep.report import report_study

        print(report_study(names[0], args.storage, args.artifact_dir, args.out))
    return 0


def export(args: argparse.Namespace) -> int:
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


def summary(args: argparse.Namespace) -> int:
    from sweep.report import load_study_result
    from sweep.report.summary import answer_lines, comparison

    names = [_study_name(n) for n in (args.study, *args.others)]
    for name in names:
        print("\n".join(answer_lines(name, args.storage)))
    if len(names) > 1:
        results = [load_study_result(n, args.storage, details=False) for n in names]
        print("\n".join(comparison(results)))
    return 0


def clean(args: argparse.Namespace) -> int:
    from sweep.report.disk import clean

    print(clean(args.study and _study_name(args.study), args.all, args.storage,
                args.checkpoint_dir, args.artifact_dir, args.dry_run))
    return 0


def status(args: argparse.Namespace) -> int:
    from sweep.report import study_status

    print(study_status(_study_name(args.study), args.storage))
    return 0


def dashboard(args: argparse.Namespace) -> int:
    from sweep.report.dashboard import serve

    serve(args.storage, args.host, args.port, args.artifact_dir, args.allow_remote)
    return 0
