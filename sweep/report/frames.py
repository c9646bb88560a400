"""A study's results as pandas frames: the data every figure, table and export is drawn from.

Reads the storage only (Optuna's trials, our epochs table, the artifact metadata): no plotly,
no Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sweep.defaults import DEFAULT_STORAGE
from sweep.records import TrialKey
from sweep.store import (
    StoredStudy,
    StoredTrial,
    epochs_frame,
    open_storage,
    open_study,
    read_trials,
)
from sweep.study import ChoiceParam
from sweep.study.space import value_at

# the user attributes the frames read (provenance and layers are never decoded here)
FRAME_KEYS = (TrialKey.CONFIG, TrialKey.SEED, TrialKey.OBJECTIVE_EPOCH, TrialKey.PARAM_COUNT,
              TrialKey.RECEPTIVE_FIELD, TrialKey.TRAIN_SECONDS, TrialKey.FAIL_REASON,
              TrialKey.DIAGNOSTICS)


@dataclass(frozen=True)
class StudyResult:
    """A study's results as frames.

    ``snapshots``: one row per completed trial and snapshot epoch: ``trial``, the swept params
    (dotted names), ``epoch``, train/val/test loss and accuracy, ``roc_auc``, ``gap`` (train
    minus validation accuracy), ``dead_train``/``dead_test`` (fraction of hidden dense units
    that never activate), ``param_count``, ``receptive_field``, ``value``.
    ``curves``: one row per trial and epoch (every epoch, every trial state).
    ``trials``: one row per trial, complete trials first, sorted by the objective (best
    first; a multi-objective study: the Pareto front first). Pruned trials have a value too
    (their last reported), but are never the best.
    ``per_class``: one row per completed trial, snapshot epoch and class: ``accuracy``.
    ``pareto``: multi-objective studies: one row per completed trial, a column per metric and
    ``on_front``. ``pictures``: one row per snapshot picture: ``trial``, ``epoch``, ``kind``
    (filters, pca), ``artifact_id``. ``best_trial``: the number of the best complete trial
    (None before one completed; the first of the Pareto front for a multi-objective study),
    ``best_confusion`` its last confusion matrix (rows: true class). ``class_names``: the
    dataset's, class 0 first (() for a study stored before sweep kept them); ``study_id``:
    Optuna's, as the dashboard's URLs name the study.
    """

    name: str
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    params: tuple[str, ...]
    snapshots: pd.DataFrame
    curves: pd.DataFrame
    trials: pd.DataFrame
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    pareto: pd.DataFrame = field(default_factory=pd.DataFrame)
    pictures: pd.DataFrame = field(default_factory=pd.DataFrame)
    best_trial: int | None = None
    best_confusion: list | None = None
    class_names: tuple[str, ...] = ()
    study_id: int | None = None
    at: str = "last"  # objective.at: a trial's value is at its last epoch or at its best
    definition: dict = field(default_factory=dict)  # the stored study file, as last grown

    @property
    def metric(self) -> str:
        return self.metrics[0]

    @property
    def direction(self) -> str:
        return self.directions[0]


def load_study_result(name: str, storage_url: str = DEFAULT_STORAGE, *,
                      details: bool = True) -> StudyResult:
    """Read a study's trials and epochs from storage into frames (nothing is written).
    ``details=False`` leaves out what only the report's diagnostics and pictures draw (each
    trial's snapshot diagnostics, its artifacts): ``sweep summary`` reads the rest."""
    store = open_storage(storage_url, create=False)
    study = open_study(store, name)
    stored = StoredStudy.read(store, study)
    metrics, directions, params = stored.metrics, stored.directions, stored.params
    keys = FRAME_KEYS if details else tuple(k for k in FRAME_KEYS if k != TrialKey.DIAGNOSTICS)
    all_trials = read_trials(store.engine, stored.study_id, keys, artifacts=details)
    shown = stored.current(all_trials)  # one trial per point of the study as it is now
    numbers = {t.number for t in shown}
    front = ({t.number for t in study.best_trials} & numbers) if len(directions) > 1 else set()
    rows, dead, per_class, pictures = _trial_rows(shown, params)
    trials = _best_first(pd.DataFrame(rows, columns=[
        "trial", "state", "value", "value_epoch", *params, "param_count", "receptive_field",
        "train_seconds", "fail_reason"]), front, directions[0])
    epochs = epochs_frame(store, stored.study_id).rename(columns={"trial_number": "trial"})
    info = trials[["trial", "state", "value", *params, "param_count", "receptive_field"]]
    curves = info.merge(epochs, on="trial").sort_values(["trial", "epoch"])
    complete = curves[(curves["state"] == "COMPLETE") & curves["test_accuracy"].notna()]
    complete = complete.assign(gap=complete["train_accuracy"] - complete["val_accuracy"])
    complete = complete.merge(pd.DataFrame(dead, columns=["trial", "epoch", "dead_train",
                                                          "dead_test"]),
                              on=["trial", "epoch"], how="left")
    best = trials.loc[trials["state"] == "COMPLETE", "trial"]
    best_trial = int(best.iloc[0]) if len(best) else None
    return StudyResult(
        name=name,
        metrics=metrics,
        directions=directions,
        params=params,
        snapshots=complete.drop(columns="state").reset_index(drop=True),
        curves=curves.reset_index(drop=True),
        trials=trials,
        per_class=pd.DataFrame(per_class),
        pareto=_pareto_frame(shown, metrics, params, front),
        pictures=pd.DataFrame(pictures, columns=["trial", "epoch", "kind", "artifact_id"]),
        best_trial=best_trial,
        best_confusion=None if best_trial is None else _last_confusion(all_trials[best_trial]),
        class_names=stored.class_names,
        study_id=stored.study_id,
        at=stored.at,
        definition=stored.definition,
    )


def _trial_rows(shown: list[StoredTrial], params: tuple[str, ...]) -> tuple[list[dict], ...]:
    """``(rows, dead, per_class, pictures)``: one row per trial, and per snapshot epoch its
    dead units and per-class accuracy, and its pictures."""
    rows: list[dict] = []
    dead: list[dict] = []
    per_class: list[dict] = []
    pictures: list[dict] = []
    for t in shown:
        chosen = _param_values(t, params)
        rows.append({
            "trial": t.number, "state": t.state.name,
            "value": t.values[0] if t.values else None,
            "value_epoch": t.user_attrs.get(TrialKey.OBJECTIVE_EPOCH),
            **chosen,
            "param_count": t.user_attrs.get(TrialKey.PARAM_COUNT),
            "receptive_field": t.user_attrs.get(TrialKey.RECEPTIVE_FIELD),
            "train_seconds": t.user_attrs.get(TrialKey.TRAIN_SECONDS),
            "fail_reason": t.user_attrs.get(TrialKey.FAIL_REASON),
        })
        for epoch, d in t.user_attrs.get(TrialKey.DIAGNOSTICS, {}).items():
            layers = d["dead_units"].values()
            units = sum(layer["units"] for layer in layers)
            dead.append({"trial": t.number, "epoch": int(epoch), **{
                key: sum(layer[key] for layer in layers) / units if units else None
                for key in ("dead_train", "dead_test")}})
            per_class += [{"trial": t.number, **chosen, "epoch": int(epoch), "class": c,
                           "accuracy": a} for c, a in enumerate(d["per_class_accuracy"])]
        if t.state.name == "COMPLETE":
            pictures += _pictures(t)
    return rows, dead, per_class, pictures


def _best_first(trials: pd.DataFrame, front: set, direction: str) -> pd.DataFrame:
    """The trials frame sorted: the Pareto front (multi-objective), then complete trials by
    value, best first, then the rest (pruned trials also have a value, but are not results)."""
    complete = trials["state"] == "COMPLETE"
    on_front = trials["trial"].isin(front)
    order = trials.assign(_front=on_front, _complete=complete).sort_values(
        ["_front", "_complete", "value"], ascending=[False, False, direction == "minimize"],
        na_position="last", kind="stable")
    order = order.drop(columns=["_front", "_complete"])
    if front:
        order = order.assign(on_front=order["trial"].isin(front))
    return order.reset_index(drop=True)


def _param_values(trial: StoredTrial, params: tuple[str, ...]) -> dict:
    """A trial's value of each swept param, as Optuna stores it; a trial from before an axis
    was added has the value its config had (the old fixed value)."""
    attrs = trial.user_attrs
    config = attrs.get(TrialKey.CONFIG, {}) | {"seed": attrs.get(TrialKey.SEED)}
    return {p: trial.params[p] if p in trial.params else ChoiceParam.encode(value_at(config, p))
            for p in params}


def _pictures(trial: StoredTrial) -> list[dict]:
    rows = []
    for filename, artifact_id in trial.artifacts:
        kind, _, rest = filename.partition("-epoch")
        if rest.endswith(".png") and kind in ("filters", "pca"):
            rows.append({"trial": trial.number, "epoch": int(rest[:-4]), "kind": kind,
                         "artifact_id": artifact_id})
    return rows


def _pareto_frame(trials: list[StoredTrial], metrics: tuple[str, ...],
                  params: tuple[str, ...], front: set[int]) -> pd.DataFrame:
    if len(metrics) < 2:
        return pd.DataFrame()
    return pd.DataFrame([
        {"trial": t.number, **_param_values(t, params),
         **dict(zip(metrics, t.values, strict=True)), "on_front": t.number in front}
        for t in trials if t.state.name == "COMPLETE" and t.values
    ])


def _last_confusion(trial: StoredTrial) -> list | None:
    """A trial's confusion matrix at its last snapshot (Optuna lists trials by number)."""
    diagnostics = trial.user_attrs.get(TrialKey.DIAGNOSTICS, {})
    return diagnostics[max(diagnostics, key=int)]["confusion"] if diagnostics else None


def last_epoch(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each trial's last snapshot epoch."""
    return frame[frame["epoch"] == frame.groupby("trial")["epoch"].transform("max")]


def study_differences(results: list[StudyResult]) -> pd.DataFrame:
    """What differs between the studies' files: one row per field (dotted, ``search.params.X``
    for an axis) whose value is not the same in all of them, a column per study; a field one
    study does not have is empty there. The name and description are left out."""
    flat = [_flat(r.definition) for r in results]
    fields = sorted({k for f in flat for k in f} - {"name", "description"})
    rows = [{"field": k, **{r.name: f.get(k) for r, f in zip(results, flat, strict=True)}}
            for k in fields if len({repr(f.get(k)) for f in flat}) > 1]
    return pd.DataFrame(rows, columns=["field", *(r.name for r in results)])


def _flat(section: dict, prefix: str = "") -> dict:
    """A nested mapping as ``{dotted.key: leaf}`` (a list is a leaf)."""
    out: dict = {}
    for key, value in section.items():
        if isinstance(value, dict) and value:
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def compared_snapshots(results: list[StudyResult]) -> pd.DataFrame:
    """Each study's trials at their last snapshot, one frame, with a ``study`` column."""
    frames = [last_epoch(r.snapshots).assign(study=r.name) for r in results
              if not r.snapshots.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
