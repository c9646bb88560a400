"""Running a sweep in this process: open the study, work out what is left, train it.

Resuming is by construction: a point whose trial completed, was pruned, or failed for a
recorded reason (rejected configuration, NaN loss), has a claim marked done and is never
trained again; random and tpe studies have ``n_trials`` numbered points. An interrupted point is given back and
resumes from its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

import optuna
from optuna.trial import TrialState

from sweep import claims, space, storage
from sweep.data import Dataset, load_dataset
from sweep.errors import StorageError, TrialFailed
from sweep.interrupt import DeferredInterrupt
from sweep.objective import run_trial
from sweep.spec import StudySpec
from sweep.train import CHECKPOINT_EVERY_S, remove_checkpoint

DEFAULT_CHECKPOINT_DIR = Path("checkpoints")  # per study, per point; shared by all workers
DEFAULT_ARTIFACT_DIR = Path("artifacts")  # Optuna's file artifact store: snapshot pictures
POLL_S = 2.0  # seconds between looks at the claims while other workers finish
CREATE_GRACE_S = 10.0  # seconds a just-created study may lack its stored study file


@dataclass
class SweepResult:
    """What a ``run_sweep`` call did: trials ``ran`` now (``failed`` and ``pruned`` of them),
    ``skipped`` as already done, out of ``total``; the best value and trial number in the study
    so far, or (multi-objective) how many trials are on the Pareto front."""

    total: int
    ran: int = 0
    failed: int = 0
    pruned: int = 0
    skipped: int = 0
    best_value: float | None = None
    best_trial: int | None = None
    pareto: int | None = None

    def best_text(self, spec: StudySpec) -> str | None:
        """The best so far in words, or None before any trial completed."""
        if self.pareto:
            return f"{self.pareto} trial(s) on the Pareto front of {' vs '.join(spec.metrics)}"
        if self.best_value is not None:
            return f"best {spec.metric} {self.best_value:.4f} (trial {self.best_trial})"
        return None


def run_sweep(
    spec: StudySpec,
    storage_url: str,
    *,
    data_dir: str | None = None,
    checkpoint_dir: Path = DEFAULT_CHECKPOINT_DIR,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    artifact_dir: Path | None = DEFAULT_ARTIFACT_DIR,
    out: TextIO | None = None,
) -> SweepResult:
    """Claim and train points of ``spec`` until none is left; this is one worker.

    Any number of these may run at once, in processes on any machines that reach the storage:
    each point is trained by exactly one of them (see claims.py). A worker whose claims are
    all done waits while others still train, to take over the points of any that die.
    Snapshot pictures (first-layer filters, PCA) go to an Optuna artifact store in
    ``artifact_dir`` (None: no pictures). Progress lines go to ``out`` (default: stderr).
    """
    out = out or sys.stderr  # looked up per call: a default bound at import goes stale
    store, study, dataset_for = prepare(spec, storage_url, data_dir)
    artifacts = storage.artifact_store(artifact_dir) if artifact_dir is not None else None
    points = plan(spec)
    keys = list(points)
    result = SweepResult(total=len(keys), skipped=len(keys) - claims.pending(
        store.engine, spec.name, keys))
    worker = f"{socket.gethostname()}:{os.getpid()}"
    # Offset by the trials already there and the process: random/tpe draws must not repeat.
    study.sampler = space.make_sampler(spec.search.sampler,
                                       spec.seed + len(study.trials) + os.getpid())
    study.pruner = space.make_pruner(spec.search.pruner, _max_epochs(spec))
    _update_best(result, study)
    with DeferredInterrupt().installed() as interrupt:
        while True:
            if interrupt.requested:  # Ctrl-C came while the last trial was finishing
                raise KeyboardInterrupt
            claim = claims.claim_next(store.engine, spec.name, keys, worker)
            if claim is None:
                if claims.pending(store.engine, spec.name, keys) == 0:
                    return result
                time.sleep(POLL_S)  # others are training: wait to take over any that die
                continue
            if claim.dead_trial_id is not None:
                mark_dead(store, claim.dead_trial_id, "its worker stopped beating")
            if points[claim.point] is not None:
                study.sampler.point = points[claim.point]
            checkpoint = (checkpoint_file(checkpoint_dir, spec.name, claim.point),
                          checkpoint_every_s)
            position = result.total - claims.pending(store.engine, spec.name, keys) + 1
            _run_point(spec, store, study, claim.point, worker, dataset_for, checkpoint,
                       artifacts, interrupt, result, position, out)


def _run_point(
    spec, store, study, point, worker, dataset_for, checkpoint, artifacts, interrupt, result,
    position, out,
) -> None:
    """Train one claimed point; ``checkpoint`` is ``(path, every_s)``, ``position`` the
    point's place among the study's (for progress lines)."""
    trial = study.ask()
    # Optuna's Trial has no public id getter; the claim records it so a dead trial can be
    # marked failed by whoever notices.
    claims.update(store.engine, spec.name, point, worker, trial_id=trial._trial_id)
    values = space.suggest(trial, spec.search.params)
    progress = _progress(spec, trial.number, values, position, result, out)

    def on_epoch(row: dict) -> None:
        storage.record_epoch(store, spec.name, trial.number, row)
        progress(row)

    try:
        with claims.Heartbeat(store.engine, spec.name, point, worker), interrupt.training():
            value = run_trial(trial, spec, values, dataset_for, on_epoch, *checkpoint,
                              artifact_store=artifacts,
                              stop_requested=lambda: interrupt.requested)
    except TrialFailed as err:
        trial.set_user_attr("fail_reason", str(err))
        study.tell(trial, state=TrialState.FAIL)
        claims.update(store.engine, spec.name, point, worker, state="done")
        result.failed += 1
        print(f"[{spec.name}] trial {trial.number} failed: {err}", file=out)
    except optuna.TrialPruned as err:
        # Hopeless: the point is done (never trained again); its value is the last reported.
        study.tell(trial, state=TrialState.PRUNED)
        claims.update(store.engine, spec.name, point, worker, state="done")
        result.pruned += 1
        print(f"[{spec.name}] trial {trial.number} {err}", file=out)
    except BaseException:
        # Ctrl-C or a crash: leave the database consistent; the point runs again next time,
        # from its checkpoint.
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
        claims.release(store.engine, spec.name, point, worker)
        raise
    else:
        study.tell(trial, value)
        claims.update(store.engine, spec.name, point, worker, state="done")
        _update_best(result, study)
    remove_checkpoint(checkpoint[0])
    result.ran += 1


def prepare(spec: StudySpec, storage_url: str, data_dir: str | None):
    """Open the storage, load the study's data, and open or create the study.

    The data is loaded before anything is written: a dataset that cannot be had (no download,
    a wrong path) is one line of error and leaves no half-made study behind.

    Returns:
        ``(storage, study, dataset_for)``; ``dataset_for(cfg, seed)`` caches datasets so a
        process loads each one once.
    """
    store = storage.open_storage(storage_url)
    study = existing_study(store, spec)
    datasets: dict[str, Dataset] = {}

    def dataset_for(cfg: dict, seed: int) -> Dataset:
        key = json.dumps([cfg, seed], sort_keys=True)
        if key not in datasets:
            datasets[key] = load_dataset(cfg, seed, data_dir)
        return datasets[key]

    dataset_for(spec.config["dataset"], spec.seed)
    if study is None:
        try:
            study = create_study(store, spec)
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
            study = existing_study(store, spec)
    return store, study, dataset_for


def plan(spec: StudySpec) -> dict[str, dict | None]:
    """The study's points by claim key: grid points (in Optuna's form), or ``n_trials``
    numbered slots (``"#0"``, ``"#1"``, ...) whose values the sampler draws."""
    if spec.search.sampler == "grid":
        points = [space.to_optuna(spec.search.params, p)
                  for p in space.grid_points(spec.search.params)]
        return {space.point_key(p): p for p in points}
    return {f"#{i}": None for i in range(spec.search.n_trials)}


def mark_dead(store: optuna.storages.RDBStorage, trial_id: int, reason: str) -> None:
    """Mark a trial whose worker died as failed (unless it managed to finish)."""
    try:
        store.set_trial_user_attr(trial_id, "died", reason)
        store.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


def checkpoint_file(checkpoint_dir: Path, study_name: str, point: str) -> Path:
    """Where a point's training state is kept, the same for every worker of the study."""
    return checkpoint_dir / study_name / f"{hashlib.sha1(point.encode()).hexdigest()[:16]}.keras"


def existing_study(store: optuna.storages.RDBStorage, spec: StudySpec) -> optuna.Study | None:
    """The stored study of this name, or None; StorageError if it was run with other settings.

    Only ``search.n_trials`` may change between runs (to draw more random/tpe trials): any other
    change would mix results of different experiments under one name (and Optuna cannot
    widen a categorical parameter's choices), so it is refused before anything is written.
    """
    try:
        study = optuna.load_study(study_name=spec.name, storage=store)
    except KeyError:
        return None
    # A worker that created the study a moment ago may not have stored its file yet
    # (create_study and set_user_attr are two transactions): give it a few seconds.
    deadline = time.monotonic() + CREATE_GRACE_S
    while "study" not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.1)
        study = optuna.load_study(study_name=spec.name, storage=store)
    stored = _comparable(study.user_attrs.get("study", {}))
    wanted = _comparable(spec.as_dict())
    if stored != wanted:
        field = next(k for k in sorted(set(stored) | set(wanted)) if stored.get(k) != wanted.get(k))
        raise StorageError(
            f"{spec.source}: study {spec.name!r} in {storage.safe_url(store.url)} was run with "
            f"{field} = {stored.get(field)!r}, now {wanted.get(field)!r}; give the changed study "
            "a new name, or use another --storage"
        )
    return study


def create_study(store: optuna.storages.RDBStorage, spec: StudySpec) -> optuna.Study:
    """A new study holding the resolved study file (compared on every later run)."""
    study = optuna.create_study(
        study_name=spec.name,
        storage=store,
        directions=list(spec.directions),
    )
    study.set_user_attr("study", spec.as_dict())
    study.set_user_attr("description", spec.description)
    return study


def _comparable(study_dict: dict) -> dict:
    """Flatten to dotted keys, leaving out what may change between runs."""
    flat = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[prefix + key] = value

    walk(study_dict, "")
    flat.pop("search.n_trials", None)
    flat.pop("training.tensorboard", None)  # logging only
    return flat


def _update_best(result: SweepResult, study: optuna.Study) -> None:
    if len(study.directions) > 1:
        result.pareto = len(study.best_trials)
        return
    try:
        best = study.best_trial
    except ValueError:  # no completed trial yet
        return
    result.best_value, result.best_trial = best.value, best.number


def _max_epochs(spec: StudySpec) -> int:
    """The most epochs any trial trains (the pruner's largest budget)."""
    swept = next((p for p in spec.search.params if p.name == "training.epochs"), None)
    if swept is None:
        return spec.config["training"]["epochs"]
    return int(max(swept.values) if isinstance(swept, space.ChoiceParam) else swept.high)


def _progress(spec, number, values, position, result, out) -> Callable[[dict], None]:
    point = " ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
    epochs = spec.config["training"]["epochs"]
    if "training.epochs" in values:
        epochs = values["training.epochs"]

    def on_epoch(row: dict) -> None:
        best = f" | {result.best_text(spec)}" if result.best_text(spec) else ""
        test = f" test_accuracy {row['test_accuracy']:.4f}" if "test_accuracy" in row else ""
        print(
            f"[{spec.name}] trial {position}/{result.total} #{number} {point} "
            f"epoch {row['epoch']}/{epochs} loss {row['train_loss']:.4f} "
            f"val_accuracy {row['val_accuracy']:.4f}{test} ({row['seconds']:.1f}s){best}",
            file=out,
            flush=True,
        )

    return on_epoch
