"""How a trial ends, the same whether it trained alone (``objective.run_trial``, Keras' fit)
or in a fused group (``fused_trials``): KerasTuner's ``engine/base_tuner.py`` maps a trial's
errors to its states in one place, and so does this module.

``ended_by`` is that mapping (a rejected configuration or a NaN loss fails the trial with
its reason, the pruner prunes it, another worker may have ended it), and ``outcome_of``
applies it to a step of either path. ``finish_training`` is what a trial whose training
ended leaves behind (its seconds, the NaN check, the kept model, its snapshots, diagnostics
and pictures, the objective's values), and ``objective_value`` the value's shape Optuna is
told. The worker (``sweep.run.attempt``) records a failure's reason and tells Optuna, for
both paths.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import optuna
from optuna.trial import TrialState

from sweep.errors import TrialFailed
from sweep.records import TrialKey
from sweep.study import StudySpec
from sweep.training import diagnostics, pictures
from sweep.training.checkpoints import save_checkpoint
from sweep.training.fit import TrainResult

if TYPE_CHECKING:
    from sweep.trial.objective import Point, TrialHooks

# ``(state, value, note)`` of an ended trial: COMPLETE with its objective value, FAIL with
# its reason, PRUNED with the pruner's words, or state None with ``LOST``: another worker has
# the point (its claim was lost, or it ended the trial).
Outcome = tuple[TrialState | None, float | Sequence[float] | None, str | None]
LOST = "lost"


def ended_by(err: BaseException) -> Outcome | None:
    """How ``err``, raised while a trial trained, ends it; None for an error that is not a
    trial's ending (a crash, Ctrl-C, the storage lost: the worker gives the trial back)."""
    if isinstance(err, TrialFailed):
        return TrialState.FAIL, None, str(err)
    if isinstance(err, optuna.TrialPruned):
        return TrialState.PRUNED, None, str(err)
    if isinstance(err, optuna.exceptions.UpdateFinishedTrialError):
        return None, None, LOST
    return None


def outcome_of(step: Callable[[], Outcome]) -> Outcome:
    """``step``'s outcome, or the one its error ends the trial with (``ended_by``); any other
    error goes up."""
    try:
        return step()
    except Exception as err:
        ending = ended_by(err)
        if ending is None:
            raise
        return ending


def check_finite(result: TrainResult) -> None:
    """Fail the trial whose loss became NaN (after any epoch: a fused member leaves its group
    at once)."""
    if result.nan_epoch is not None:
        raise TrialFailed(f"loss became NaN at epoch {result.nan_epoch}")


def finish_training(trial: optuna.Trial, attrs: dict, spec: StudySpec, point: Point,
                    result: TrainResult, hooks: TrialHooks, param_count: int,
                    model: keras.Model) -> list[float]:
    """What a trial whose training ended leaves on it, and its objective's values (one per
    metric): its training seconds, its model kept (``hooks.keep``; ``model`` holds its
    trained weights and optimizer state), its snapshots, diagnostics and pictures.

    Raises:
        TrialFailed: the loss became NaN.
    """
    attrs[TrialKey.TRAIN_SECONDS] = result.all_seconds
    check_finite(result)
    if hooks.keep is not None:
        save_checkpoint(hooks.keep(), model, result.epochs)
    return _record_result(trial, attrs, spec, point, result, hooks, param_count)


def objective_value(values: list[float]) -> float | tuple[float, ...]:
    """What Optuna is told: the value, or a tuple of them in a multi-objective study."""
    return values[0] if len(values) == 1 else tuple(values)


def _record_result(trial: optuna.Trial, attrs: dict, spec: StudySpec, point: Point,
                   result: TrainResult, hooks: TrialHooks, param_count: int) -> list[float]:
    """What a finished training leaves on the trial; returns the objective's values."""
    attrs[TrialKey.SNAPSHOTS] = list(result.snapshots.values())
    attrs[TrialKey.OVERFITTING] = diagnostics.overfitting(result.epochs)
    if result.stopped_epoch is not None:
        attrs[TrialKey.STOPPED_EPOCH] = result.stopped_epoch
    _record_details(trial, attrs, result.details, hooks.artifact_store,
                    point.data.class_names, hooks.earlier_diagnostics or {})
    rows = {m: _objective_row(result, m, spec.at, d)
            for m, d in zip(spec.metrics, spec.directions, strict=True) if m != "param_count"}
    if spec.metric in rows:  # the epoch the (first) objective's value comes from
        attrs[TrialKey.OBJECTIVE_EPOCH] = rows[spec.metric]["epoch"]
    return [rows[m][m] if m in rows else float(param_count)
            for m in spec.metrics]


def _objective_row(result: TrainResult, metric: str, at: str, direction: str) -> dict:
    """The epoch row an objective's value comes from: test metrics are known at snapshots
    only, the others at every epoch; of those, the last (``at: last``) or the best one
    (``at: best``, the earliest of equals)."""
    at_snapshots = metric.startswith("test") or metric == "roc_auc"
    rows = [result.snapshots[e] for e in sorted(result.snapshots)] if at_snapshots \
        else result.epochs
    if at == "last":
        return rows[-1]
    pick = min if direction == "minimize" else max
    return pick(rows, key=lambda row: row[metric])


def _record_details(trial: optuna.Trial, attrs: dict, details: dict[int, dict],
                    artifact_store: Any, class_names: tuple[str, ...], earlier: dict) -> None:
    """Snapshot diagnostics into the trial's ``attrs`` (with ``earlier`` ones, of the epochs
    a continued trial did not train itself); their pictures as trial artifacts (the PCA
    picture's legend names the classes)."""
    attrs[TrialKey.DIAGNOSTICS] = earlier | {
        str(epoch): {k: d[k] for k in ("per_class_accuracy", "confusion", "dead_units")}
        for epoch, d in details.items()
    }
    if artifact_store is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for epoch, d in details.items():
            pngs = {f"pca-epoch{epoch}.png": pictures.pca_png(**d["pca"],
                                                              class_names=class_names)}
            if d["first_kernels"] is not None:
                pngs[f"filters-epoch{epoch}.png"] = pictures.filters_png(d["first_kernels"])
            for name, png in pngs.items():
                path = Path(tmp) / name
                path.write_bytes(png)
                optuna.artifacts.upload_artifact(
                    artifact_store=artifact_store, file_path=str(path), study_or_trial=trial,
                    mimetype="image/png",
                )
