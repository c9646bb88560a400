"""A study's life in storage: open, create (holding the resolved study file), compare on
resume, mark a dead worker's trial, and the one reader of what sweep stores on a study."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweep.errors import StorageError
from sweep.store.engine import forget_study, safe_url
from sweep.study import StudySpec, grid_points
from sweep.study.space import described

CREATE_GRACE_S = 10.0  # seconds a just-created study may lack its stored study file


@dataclass(frozen=True)
class StoredStudy:
    """What sweep stores on a study (``user_attrs["study"]``, the resolved study file), read
    in this one place for the report, ``status`` and export.

    ``planned``: the number of points (``n_trials`` for random/tpe, else the grid's size).
    """

    name: str
    study_id: int
    metrics: tuple[str, ...]  # one per Optuna direction
    directions: tuple[str, ...]  # "maximize" | "minimize"
    params: tuple[str, ...]  # the swept params' dotted names, in study-file order
    planned: int
    description: str

    @classmethod
    def read(cls, storage: optuna.storages.RDBStorage, study: optuna.Study) -> StoredStudy:
        stored = study.user_attrs.get("study", {})
        metric = stored.get("objective", {}).get("metric", "value")
        search = stored.get("search", {})
        params = search.get("params", {})
        return cls(
            name=study.study_name,
            study_id=storage.get_study_id_from_name(study.study_name),
            metrics=tuple(metric if isinstance(metric, list) else [metric]),
            directions=tuple(d.name.lower() for d in study.directions),
            params=tuple(params),
            planned=search.get("n_trials") or len(grid_points(described(params))),
            description=study.user_attrs.get("description", ""),
        )


def load_study(storage: optuna.storages.RDBStorage, name: str, *, sampler=None,
               pruner=None) -> optuna.Study:
    """An existing study, or StorageError listing the studies that are there."""
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                 pruner=pruner)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise StorageError(
            f"no study named {name!r} in {safe_url(storage.url)}; "
            f"studies there: {', '.join(names) or 'none'}"
        ) from None


def existing_study(storage: optuna.storages.RDBStorage, spec: StudySpec) -> optuna.Study | None:
    """The stored study of this name, or None; StorageError if it was run with other settings.

    Only ``search.n_trials`` may change between runs (to draw more random/tpe trials): any other
    change would mix results of different experiments under one name (and Optuna cannot
    widen a categorical parameter's choices), so it is refused before anything is written.
    """
    try:
        study = optuna.load_study(study_name=spec.name, storage=storage)
    except KeyError:
        return None
    # A worker that created the study a moment ago may not have stored its file yet
    # (create_study and set_user_attr are two transactions): give it a few seconds.
    deadline = time.monotonic() + CREATE_GRACE_S
    while "study" not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.1)
        study = optuna.load_study(study_name=spec.name, storage=storage)
    stored = _comparable(study.user_attrs.get("study", {}))
    wanted = _comparable(spec.as_dict())
    if stored != wanted:
        field = next(k for k in sorted(set(stored) | set(wanted)) if stored.get(k) != wanted.get(k))
        raise StorageError(
            f"{spec.source}: study {spec.name!r} in {safe_url(storage.url)} was run with "
            f"{field} = {stored.get(field)!r}, now {wanted.get(field)!r}; give the changed study "
            "a new name, or use another --storage"
        )
    return study


def create_study(storage: optuna.storages.RDBStorage, spec: StudySpec) -> optuna.Study:
    """A new study holding the resolved study file (compared on every later run).

    Rows a deleted study of the same id left in our tables are removed before the study file
    is stored: other workers wait for that file before they claim anything.
    """
    study = optuna.create_study(study_name=spec.name, storage=storage,
                                directions=list(spec.directions))
    forget_study(storage.engine, storage.get_study_id_from_name(spec.name))
    study.set_user_attr("description", spec.description)
    study.set_user_attr("study", spec.as_dict())
    return study


def mark_dead(storage: optuna.storages.RDBStorage, study_id: int, trial_number: int,
              reason: str) -> None:
    """Mark a trial whose worker died as failed (unless it managed to finish)."""
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)
    try:
        storage.set_trial_user_attr(trial_id, "died", reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


def artifact_store(artifact_dir: Path) -> optuna.artifacts.FileSystemArtifactStore:
    """The file artifact store (trial pictures) of ``run``, ``worker``, ``dashboard``."""
    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(artifact_dir))


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
