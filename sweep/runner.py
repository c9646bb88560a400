"""Running a sweep in this process: open the study, work out what is left, train it.

Resuming is by construction: a grid point whose trial completed, or failed for a recorded
reason (rejected configuration, NaN loss), is done and never trained again; random and tpe
studies run until ``n_trials`` such trials exist.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Callable, TextIO

import optuna
from optuna.trial import TrialState

from sweep import space, storage
from sweep.data import Dataset, load_dataset
from sweep.errors import StorageError, TrialFailed
from sweep.objective import run_trial
from sweep.spec import StudySpec


@dataclass
class SweepResult:
    """What a ``run_sweep`` call did: trials ``ran`` now (``failed`` of them), ``skipped`` as
    already done, out of ``total``; the best value and trial number in the study so far."""

    total: int
    ran: int = 0
    failed: int = 0
    skipped: int = 0
    best_value: float | None = None
    best_trial: int | None = None


def run_sweep(
    spec: StudySpec,
    storage_url: str,
    *,
    data_dir: str | None = None,
    out: TextIO = sys.stderr,
) -> SweepResult:
    """Train every point of ``spec``'s search space that the storage does not hold yet."""
    store = storage.open_storage(storage_url)
    study = existing_study(store, spec)
    datasets: dict[str, Dataset] = {}

    def dataset_for(cfg: dict, seed: int) -> Dataset:
        key = json.dumps([cfg, seed], sort_keys=True)
        if key not in datasets:
            datasets[key] = load_dataset(cfg, seed, data_dir)
        return datasets[key]

    # Load the data before writing anything: a dataset that cannot be had (no download, a
    # wrong path) is one line of error and leaves no half-made study behind.
    dataset_for(spec.config["dataset"], spec.seed)
    study = study or create_study(store, spec)
    done = [t for t in study.get_trials(deepcopy=False) if is_done(t)]
    if spec.search.sampler == "grid":
        points = space.grid_points(spec.search.params)
        finished = {space.point_key(t.params) for t in done}
        todo = [
            p for p in points
            if space.point_key(space.to_optuna(spec.search.params, p)) not in finished
        ]
        result = SweepResult(total=len(points), skipped=len(points) - len(todo))
    else:
        n_left = max(0, spec.search.n_trials - len(done))
        todo = [None] * n_left
        result = SweepResult(total=spec.search.n_trials, skipped=spec.search.n_trials - n_left)
    # Offset by the trials already there: a resumed random/tpe run must not replay its draws.
    study.sampler = space.make_sampler(spec.search.sampler, spec.seed + len(study.trials))
    _update_best(result, study)
    for point in todo:
        if point is not None:
            study.enqueue_trial(space.to_optuna(spec.search.params, point))
        trial = study.ask()
        values = space.suggest(trial, spec.search.params)
        position = result.skipped + result.ran + 1
        progress = _progress(spec, trial.number, values, position, result, out)

        def on_epoch(row: dict, number: int = trial.number) -> None:
            storage.record_epoch(store, spec.name, number, row)
            progress(row)

        try:
            value = run_trial(trial, spec, values, dataset_for, on_epoch)
        except TrialFailed as err:
            trial.set_user_attr("fail_reason", str(err))
            study.tell(trial, state=TrialState.FAIL)
            result.failed += 1
            print(f"[{spec.name}] trial {trial.number} failed: {err}", file=out)
        except BaseException:
            # Ctrl-C or a crash: leave the database consistent; the point runs again next time.
            trial.set_user_attr("interrupted", True)
            study.tell(trial, state=TrialState.FAIL)
            raise
        else:
            study.tell(trial, value)
            _update_best(result, study)
        result.ran += 1
    return result


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
        direction=spec.direction,
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
    return flat


def is_done(trial: optuna.trial.FrozenTrial) -> bool:
    """Completed, or failed for a recorded reason that would recur on a rerun."""
    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs
    )


def _update_best(result: SweepResult, study: optuna.Study) -> None:
    try:
        best = study.best_trial
    except ValueError:  # no completed trial yet
        return
    result.best_value, result.best_trial = best.value, best.number


def _progress(spec, number, values, position, result, out) -> Callable[[dict], None]:
    point = " ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
    epochs = spec.config["training"]["epochs"]
    if "training.epochs" in values:
        epochs = values["training.epochs"]

    def on_epoch(row: dict) -> None:
        best = (
            f" | best {spec.metric} {result.best_value:.4f} (trial {result.best_trial})"
            if result.best_value is not None
            else ""
        )
        test = f" test_accuracy {row['test_accuracy']:.4f}" if "test_accuracy" in row else ""
        print(
            f"[{spec.name}] trial {position}/{result.total} #{number} {point} "
            f"epoch {row['epoch']}/{epochs} loss {row['train_loss']:.4f} "
            f"val_accuracy {row['val_accuracy']:.4f}{test} ({row['seconds']:.1f}s){best}",
            file=out,
            flush=True,
        )

    return on_epoch
