"""A study run from start to summary: in this process, or on local worker processes.

``sweep run`` and ``sweep worker`` (cli.py) only turn their options into ``RunOptions`` and
call ``run_study`` or ``run_here``; the report is written after, by the report stage.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import optuna

from sweep.defaults import ARTIFACT_DIR, CHECKPOINT_DIR, CHECKPOINT_EVERY_S
from sweep.run.console import SweepConsole, sweep_console
from sweep.run.devices import check_worker_options, resolve_devices
from sweep.run.interrupt import stop_signals
from sweep.run.local import run_workers
from sweep.run.prepared import PreparedRun, prepare
from sweep.run.progress import SweepResult
from sweep.run.quiet import native_banners_filtered
from sweep.run.worker import run_sweep
from sweep.store import claims
from sweep.study import StudySpec
from sweep.training.backend import FUSED_ON_A_CPU, check_backend, keras_backend


@dataclass(frozen=True)
class RunOptions:
    """Where a run keeps its results and what it runs on (the options of ``sweep run``).

    ``worker_options``: what each ``sweep worker`` process is given besides the study file
    (``--storage`` reaches it apart from its command line: its password must not show in
    ``ps``). ``workers``/``gpus``/``trials_per_gpu``: see ``sweep.run.devices.resolve_devices``.
    """

    storage: str
    data_dir: str | None = None
    checkpoint_dir: Path = CHECKPOINT_DIR
    checkpoint_every_s: float = CHECKPOINT_EVERY_S
    artifact_dir: Path | None = ARTIFACT_DIR
    progress: str = "auto"  # auto | live | plain | jsonl (sweep.run.console.sweep_console)
    workers: int | str = 1
    gpus: str | None = None
    trials_per_gpu: int = 1
    fuse: str = "auto"  # sweep.run.fused_worker
    worker_options: tuple[str, ...] = ()


def run_study(spec: StudySpec, options: RunOptions) -> int:
    """Train every point of ``spec`` not yet done, here (one worker and no GPU asked for, or
    one point left) or on local worker processes, and print the summary; returns the exit
    code (0, or the workers' own). Raises KeyboardInterrupt after Ctrl-C."""
    check_worker_options(options.workers, options.trials_per_gpu)  # before storage is opened
    check_backend()  # before any worker starts: one line, not a traceback from each
    if options.gpus is None and options.workers == 1:
        return run_here(spec, options)
    from sweep.models import complete_spec

    quiet_optuna()
    with native_banners_filtered():  # loading a Keras dataset starts TensorFlow here too
        prepared = prepare(complete_spec(spec), options.storage, options.data_dir)  # once
    pending = claims.pending(prepared.store.engine, prepared.study_id, list(prepared.points),
                             prepared.ladder)
    workers, gpus = resolve_devices(options.workers, options.gpus, options.trials_per_gpu,
                                    pending)
    if workers == 1 and options.gpus is None:  # auto, one point left: here, all threads
        return run_here(spec, options, prepared)
    _fused_on_a_cpu(spec, options.fuse)  # once, for all the workers
    with stop_signals(), sweep_console(spec, options.progress) as console:  # SIGTERM: Ctrl-C
        assert isinstance(console, SweepConsole)  # run's --progress has no jsonl
        code = run_workers(spec, [spec.source, *options.worker_options], options.storage,
                           workers=workers, gpus=gpus, per_gpu=options.trials_per_gpu,
                           data_dir=options.data_dir, console=console, prepared=prepared)
    if code == 130:
        raise KeyboardInterrupt
    if code == 0:
        print(console.result.summary(spec))  # one summary for all the workers
    return code


def run_here(spec: StudySpec, options: RunOptions, prepared: PreparedRun | None = None) -> int:
    """The worker loop in this process (on ``prepared`` if prepared already), then the summary
    (a worker of ``sweep run --workers N``, ``progress: jsonl``, leaves it to its parent)."""
    check_backend()
    quiet_optuna()
    jsonl = options.progress == "jsonl"
    if not jsonl:  # a worker of `sweep run --workers N`: its parent said it
        _fused_on_a_cpu(spec, options.fuse)
    with native_banners_filtered(), sweep_console(spec, options.progress) as console:
        result: SweepResult = run_sweep(
            spec, options.storage, data_dir=options.data_dir,
            checkpoint_dir=options.checkpoint_dir, checkpoint_every_s=options.checkpoint_every_s,
            artifact_dir=options.artifact_dir, on_event=console.event, prepared=prepared,
            track_best=not jsonl, fuse=options.fuse)
    if not jsonl:
        print(result.summary(spec))
    return 0


def _fused_on_a_cpu(spec: StudySpec, fuse: str) -> None:
    """Say once that an explicit ``--fuse K`` under JAX without an accelerator will be slower
    than training one point at a time (``auto`` turns itself off there)."""
    if fuse in ("auto", "off") or keras_backend() != "jax":
        return
    import jax

    if jax.devices()[0].platform == "cpu":
        print(f"[{spec.name}] --fuse {fuse}: no accelerator here, and fused training on a CPU "
              f"is {FUSED_ON_A_CPU}; --fuse auto or off trains one point at a time",
              file=sys.stderr, flush=True)


def quiet_optuna() -> None:
    """Optuna's info lines ("A new study created ...") repeat what the console says."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
