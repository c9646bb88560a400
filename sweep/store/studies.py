"""A study's life in storage: open, create (holding the resolved study file), compare on
resume, mark a dead worker's trial, and the one reader of what sweep stores on a study."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import optuna
import sqlalchemy as sa
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.study import StudyDirection
from optuna.trial import TrialState

from sweep.errors import StorageError
from sweep.records import StudyKey, TrialKey
from sweep.store import growth, reconnect
from sweep.store.engine import forget_study, safe_url
from sweep.store.tables import OPTUNA_STUDY_SYSTEM, OPTUNA_TRIALS
from sweep.store.trials import StoredTrial, write_user_attrs
from sweep.study import StudySpec, grid_points
from sweep.study.space import PointFields, described, identity_fields, identity_of, value_at

AnyTrial = optuna.trial.FrozenTrial | StoredTrial  # Optuna's, or read in bulk (trials.py)
Trial = TypeVar("Trial", optuna.trial.FrozenTrial, StoredTrial)  # one of them, throughout
CREATE_GRACE_S = 10.0  # seconds a just-created study may lack its stored study file


@dataclass(frozen=True)
class StoredStudy:
    """What sweep stores on a study (its ``StudyKey.STUDY`` attribute, the resolved study
    file), read in this one place for the report, ``status`` and export.

    ``planned``: the number of points (``n_trials`` for random/tpe, else the grid's size);
    ``definition``: the stored study file itself, as last grown (see growth.py);
    ``class_names``: the dataset's (``record_class_names``), () for a study older than them.
    """

    name: str
    study_id: int
    metrics: tuple[str, ...]  # one per Optuna direction
    directions: tuple[str, ...]  # "maximize" | "minimize"
    params: tuple[str, ...]  # the swept params' dotted names, in study-file order
    planned: int
    description: str
    definition: dict
    class_names: tuple[str, ...] = ()

    def current(self, trials: Sequence[Trial],
                memo: dict[int, str | None] | None = None) -> list[Trial]:
        """The trials that are the study's results now: the latest attempt at each point of
        the current definition. Earlier attempts (interrupted, or continued when the epochs
        grew) and trials of values the study no longer has are history: they stay in the
        database, out of the report and ``status``. ``memo``: each finished trial's point
        (by number), kept by a caller that asks again as more trials finish."""
        memo = {} if memo is None else memo
        search, points = self._fields()
        latest: dict[str, Trial] = {}
        for t in trials:
            key = memo[t.number] if t.number in memo else self._point_of(t, search, points)
            if t.state.is_finished():
                memo[t.number] = key
            if key is not None:
                latest[key] = t  # trials come by number: a later attempt replaces
        return sorted(latest.values(), key=lambda t: t.number)

    def point_key(self, t: AnyTrial) -> str | None:
        """A trial's point: the key its claim and checkpoint file have (None: a trial of
        values the study no longer has)."""
        return self._point_of(t, *self._fields())

    def _fields(self) -> tuple[dict, PointFields]:
        search = self.definition.get("search", {}).get("params", {})
        config = {k: v for k, v in self.definition.items()
                  if k in ("dataset", "model", "training", "hp")}
        return search, PointFields(config, self.definition.get("seed", 0), frozenset(search))

    @staticmethod
    def _point_of(t: AnyTrial, search: dict, points: PointFields) -> str | None:
        """A trial's point key; None for a trial of values the study no longer has."""
        config, seed = t.user_attrs.get(TrialKey.CONFIG), t.user_attrs.get(TrialKey.SEED)
        if config is None or seed is None:  # starting now
            return f"#{t.number}"
        own = config | {"seed": seed}
        values = {name: value_at(own, name) for name in search}
        values = {k: v for k, v in values.items() if v is not None}
        if not all(_allowed(search[k], v) for k, v in values.items()):
            return None
        key = identity_of(identity_fields(config, seed, frozenset(search)))
        return key if key == identity_of(points.of(values)) else None

    @property
    def at(self) -> str:
        """``objective.at``: each trial's value is its metric at the last epoch or its best."""
        return self.definition.get("objective", {}).get("at", "last")

    def best(self, current: Sequence[Trial]) -> Trial | None:
        """The best complete trial among ``current`` (the first objective), or None. Optuna's
        own ``best_trial`` would also look at history: a trial continued since, or of a value
        the study no longer has."""
        complete = [(t.values[0], t) for t in current
                    if t.state == TrialState.COMPLETE and t.values]
        pick = min if self.directions[0] == "minimize" else max
        return pick(complete, key=lambda scored: scored[0])[1] if complete else None

    @classmethod
    def read(cls, storage: optuna.storages.RDBStorage, study: optuna.Study) -> StoredStudy:
        stored = study.user_attrs.get(StudyKey.STUDY, {})
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
            description=study.user_attrs.get(StudyKey.DESCRIPTION, ""),
            definition=stored,
            class_names=tuple(study.user_attrs.get(StudyKey.CLASS_NAMES, ())),
        )


def _allowed(described: dict | list, value: object) -> bool:
    """Whether ``value`` is among a stored param's values, or in its range."""
    if isinstance(described, dict) and "low" in described:
        return described["low"] <= value <= described["high"]
    values = described["values"] if isinstance(described, dict) else described
    return value in values


def open_study(storage: optuna.storages.RDBStorage, name: str, *,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
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


def check_study(storage: optuna.storages.RDBStorage, spec: StudySpec) -> None:
    """StorageError where ``spec`` changes the stored study of its name in a way a study may
    not (see growth.py); nothing is written. Asked before a run loads its data, so a refused
    change is said before a download."""
    try:
        study = optuna.load_study(study_name=spec.name, storage=storage)
    except KeyError:
        return
    stored = study.user_attrs.get(StudyKey.STUDY)
    if stored is not None:  # None: another worker is creating it now (existing_study waits)
        growth.check(storage, stored, spec)


def existing_study(storage: optuna.storages.RDBStorage, spec: StudySpec) -> optuna.Study | None:
    """The stored study of this name, grown to ``spec`` where it differs (see growth.py), or
    None; StorageError, before anything is written, for a change a study may not make."""
    try:
        study = optuna.load_study(study_name=spec.name, storage=storage)
    except KeyError:
        return None
    # A worker that created the study a moment ago may not have stored its file yet
    # (create_study and set_user_attr are two transactions): give it a few seconds.
    deadline = time.monotonic() + CREATE_GRACE_S
    while StudyKey.STUDY not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.1)
        study = optuna.load_study(study_name=spec.name, storage=storage)
    if growth.check(storage, study.user_attrs.get(StudyKey.STUDY, {}), spec):
        growth.grow(storage, study, spec)
    return study


def create_study(storage: optuna.storages.RDBStorage, spec: StudySpec) -> optuna.Study:
    """A new study holding the resolved study file (compared on every later run).

    Rows a deleted study of the same id left in our tables are removed before the study file
    is stored: other workers wait for that file before they claim anything.
    """
    study = optuna.create_study(study_name=spec.name, storage=storage,
                                directions=[StudyDirection[d.upper()] for d in spec.directions])
    forget_study(storage.engine, storage.get_study_id_from_name(spec.name))
    study.set_user_attr(StudyKey.DESCRIPTION, spec.description)
    study.set_user_attr(StudyKey.CHOICES, growth.merged_choices(None, spec))
    study.set_user_attr(StudyKey.STUDY, spec.as_dict())
    return study


def record_class_names(storage: optuna.storages.RDBStorage, name: str,
                       class_names: tuple[str, ...]) -> None:
    """Keep the dataset's class names on the study, for the report (written when they
    change, so once)."""
    study = optuna.load_study(study_name=name, storage=storage)
    if study.user_attrs.get(StudyKey.CLASS_NAMES) != list(class_names):
        study.set_user_attr(StudyKey.CLASS_NAMES, list(class_names))


def mark_dead(storage: optuna.storages.RDBStorage, study_id: int, trial_number: int,
              reason: str) -> None:
    """Mark a trial whose worker died as failed (unless it managed to finish)."""
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)
    try:
        storage.set_trial_user_attr(trial_id, TrialKey.DIED, reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


@reconnect.repeatable  # the same attributes twice: no change
def set_trial_user_attrs(storage: optuna.storages.RDBStorage, trial_id: int,
                         attrs: dict) -> None:
    """Set several user attributes of a running trial in one transaction (Optuna's
    ``set_trial_user_attr`` commits once per attribute); values are stored as Optuna stores
    them, so ``trial.user_attrs`` reads them back.

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial is finished (another worker
            took its point over and ended it), as Optuna's own setter raises.
    """
    if not attrs:
        return
    with storage.engine.begin() as conn:
        state = conn.execute(sa.select(OPTUNA_TRIALS.c.state)
                             .where(OPTUNA_TRIALS.c.trial_id == trial_id)).scalar_one()
        if state != TrialState.RUNNING.name:
            raise optuna.exceptions.UpdateFinishedTrialError(
                f"trial {trial_id} is {state.lower()}: its attributes cannot change")
        write_user_attrs(conn, trial_id, attrs)


@reconnect.repeatable  # the same attribute twice: no change
def mark_superseded(storage: optuna.storages.RDBStorage, trial_id: int, by: int) -> None:
    """Note on a complete trial that trial number ``by`` continued it with more epochs and is
    its point's result now: the dashboard lists both as complete, this attribute says which
    one counts (``StoredStudy.current``). The only attribute sweep writes on a finished
    trial."""
    with storage.engine.begin() as conn:
        write_user_attrs(conn, trial_id, {TrialKey.SUPERSEDED_BY: by})


def artifact_store(artifact_dir: Path) -> optuna.artifacts.FileSystemArtifactStore:
    """The file artifact store (trial pictures) of ``run``, ``worker``, ``dashboard`` and the
    report: Optuna's, reading regular files inside ``artifact_dir`` only (``_FilesInside``)."""
    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    return _FilesInside(str(artifact_dir))


class _FilesInside(optuna.artifacts.FileSystemArtifactStore):
    """Optuna's file artifact store, but an artifact that is not a regular file inside its
    folder is not found: a symbolic link (to ``/etc/passwd``), a FIFO, or an id leading out
    of the folder (``../../etc/passwd``, which Optuna's store refuses with a ValueError)."""

    def open_reader(self, artifact_id: str) -> BinaryIO:
        if artifact_file(Path(self._base_path), artifact_id) is None:
            raise ArtifactNotFound(f"{artifact_id}: not a file in {self._base_path}")
        return super().open_reader(artifact_id)


def artifact_file(folder: Path, artifact_id: str) -> Path | None:
    """The artifact's file: a regular file inside ``folder`` (not a symbolic link, a FIFO,
    or a path leading out of it), else None."""
    folder = folder.resolve()
    path = folder / artifact_id
    if path.is_symlink() or not path.is_file() or folder not in path.resolve().parents:
        return None
    return path


def study_system_attr(storage: optuna.storages.RDBStorage, study_id: int, key: str
                      ) -> object:
    """One system attribute of a study (None when unset), read alone: Optuna's getter reads
    them all, the report's figures included."""
    with storage.engine.connect() as conn:
        text = conn.execute(sa.select(OPTUNA_STUDY_SYSTEM.c.value_json).where(
            OPTUNA_STUDY_SYSTEM.c.study_id == study_id,
            OPTUNA_STUDY_SYSTEM.c.key == key)).scalar_one_or_none()
    return None if text is None else json.loads(text)


def replace_study_system_attrs(storage: optuna.storages.RDBStorage, study_id: int,
                               prefix: str, attrs: Mapping[str, object]) -> None:
    """Set ``attrs`` as the study's system attributes starting with ``prefix``, in one
    transaction: those not in ``attrs`` are removed. Optuna's ``set_study_system_attr``
    commits once per attribute (a report's figures are hundreds)."""
    assert all(key.startswith(prefix) for key in attrs)
    with storage.engine.begin() as conn:
        conn.execute(sa.delete(OPTUNA_STUDY_SYSTEM).where(
            OPTUNA_STUDY_SYSTEM.c.study_id == study_id,
            OPTUNA_STUDY_SYSTEM.c.key.startswith(prefix, autoescape=True)))
        if attrs:
            conn.execute(sa.insert(OPTUNA_STUDY_SYSTEM), [
                {"study_id": study_id, "key": key, "value_json": json.dumps(value)}
                for key, value in attrs.items()])
