"""A study's trials read in bulk: one query per Optuna table, only the attributes asked for.

``study.get_trials()`` builds every trial through Optuna's ORM with all of its attributes
decoded (provenance, layers, intermediate values): most of ``sweep status`` on a study of
thousands of trials (``make bench-scale``). The report and ``status`` need a trial's number,
state, values, params and a few user attributes: read as plain rows, with the same meaning
as Optuna's (``tests/store/test_trials.py`` compares the two).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from sweep.store.tables import OPTUNA_PARAMS as PARAMS
from sweep.store.tables import OPTUNA_SYSTEM as SYSTEM
from sweep.store.tables import OPTUNA_TRIALS as TRIALS
from sweep.store.tables import OPTUNA_USER as USER
from sweep.store.tables import OPTUNA_VALUES as VALUES

ARTIFACTS_PREFIX = "artifacts:"  # optuna.artifacts' system attribute per uploaded file
_INFINITE = {"INF_POS": float("inf"), "INF_NEG": float("-inf")}


@dataclass(frozen=True)
class StoredTrial:
    """One trial as the report and ``status`` read it: the fields of Optuna's FrozenTrial of
    the same names, ``user_attrs`` holding only the keys asked for; ``artifacts``: the
    ``(filename, artifact_id)`` of each file uploaded to it (``optuna.artifacts``)."""

    number: int
    state: TrialState
    values: list[float] | None
    params: dict
    user_attrs: dict
    artifacts: tuple[tuple[str, str], ...] = field(default=())

    @property
    def value(self) -> float | None:
        """The first objective's value (None before the trial has one)."""
        return self.values[0] if self.values else None


@lru_cache(maxsize=256)
def _distribution(distribution_json: str) -> optuna.distributions.BaseDistribution:
    return optuna.distributions.json_to_distribution(distribution_json)


def read_trials(engine: sa.Engine, study_id: int, user_keys: tuple[str, ...] | None = None,
                artifacts: bool = False) -> list[StoredTrial]:
    """Every trial of the study, by number, in five queries (trials, values, params, user
    attributes, and the artifacts' system attributes with ``artifacts``).

    Args:
        user_keys: the user attributes to read (None: all of them).
    """
    trials = _read(engine, study_id, user_keys, artifacts)
    return sorted(trials.values(), key=lambda t: t.number)


def count_trials(engine: sa.Engine, study_id: int) -> int:
    """How many trials the study has, in one query (Optuna's ``get_n_trials`` reads them)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(TRIALS)
                            .where(TRIALS.c.study_id == study_id)).scalar_one()


def trials_version(engine: sa.Engine, study_id: int) -> str:
    """A text that changes whenever the study's trials do (a trial added, one finished), in
    one query: what a result worked out from them is kept against."""
    with engine.connect() as conn:
        count, last, done = conn.execute(
            sa.select(sa.func.count(), sa.func.max(TRIALS.c.trial_id),
                      sa.func.max(TRIALS.c.datetime_complete))
            .where(TRIALS.c.study_id == study_id)).one()
    return f"{count}:{last}:{done}"


class LiveTrials:
    """A study's trials for a caller that asks again as they change (the best so far of a
    run): read in bulk, all of them the first time, then only those that can have changed
    since, the ones not finished then and the ones created since (as Optuna's cached storage
    reads its trials, without building a FrozenTrial with every attribute of each)."""

    def __init__(self, engine: sa.Engine, study_id: int, user_keys: tuple[str, ...]):
        self._engine, self._study_id, self._user_keys = engine, study_id, user_keys
        self._trials: dict[int, StoredTrial] = {}  # by trial id
        self._open: set[int] = set()  # ids of the trials not finished at the last read
        self._last_finished = -1  # the highest id of a finished trial

    def read(self) -> list[StoredTrial]:
        """Every trial of the study now, by number."""
        changed = (TRIALS.c.trial_id > self._last_finished) | TRIALS.c.trial_id.in_(self._open)
        fresh = _read(self._engine, self._study_id, self._user_keys, where=changed)
        for tid, trial in fresh.items():
            self._trials[tid] = trial
            if trial.state.is_finished():
                self._open.discard(tid)
            else:
                self._open.add(tid)
        self._last_finished = max([self._last_finished, *(
            tid for tid, t in fresh.items() if t.state.is_finished())])
        return sorted(self._trials.values(), key=lambda t: t.number)


def forget_artifacts(engine: sa.Engine, study_id: int | None = None, forget: bool = True
                     ) -> list[str]:
    """The ids of the files uploaded to the study's trials (every study's with None); with a
    study and ``forget``, its trials forget them (their ``artifacts:`` system attributes are
    removed), so the caller may delete the files and no report looks for them."""
    where = [SYSTEM.c.key.startswith(ARTIFACTS_PREFIX)]
    if study_id is not None:
        where.append(SYSTEM.c.trial_id.in_(
            sa.select(TRIALS.c.trial_id).where(TRIALS.c.study_id == study_id)))
    with engine.begin() as conn:
        ids = [json.loads(json.loads(value))["artifact_id"] for value in conn.execute(
            sa.select(SYSTEM.c.value_json).where(*where)).scalars()]
        if study_id is not None and forget:
            conn.execute(sa.delete(SYSTEM).where(*where))
    return ids


def _read(engine: sa.Engine, study_id: int, user_keys: tuple[str, ...] | None,
          artifacts: bool = False,
          where: sa.ColumnElement[bool] | None = None) -> dict[int, StoredTrial]:
    """The study's trials (those ``where`` selects, a clause on Optuna's trials table) by
    trial id."""
    chosen = sa.select(TRIALS.c.trial_id).where(TRIALS.c.study_id == study_id)
    if where is not None:
        chosen = chosen.where(where)

    def of_study(table: sa.TableClause) -> sa.ColumnElement[bool]:
        return table.c.trial_id.in_(chosen)

    with engine.connect() as conn:
        trials = conn.execute(sa.select(TRIALS.c.trial_id, TRIALS.c.number, TRIALS.c.state)
                              .where(of_study(TRIALS))).all()
        values: dict[int, dict[int, float]] = {}
        for tid, objective, value, kind in conn.execute(
                sa.select(VALUES.c.trial_id, VALUES.c.objective, VALUES.c.value,
                          VALUES.c.value_type).where(of_study(VALUES))).all():
            values.setdefault(tid, {})[objective] = _INFINITE.get(kind, value)
        params: dict[int, dict] = {}
        for tid, name, value, dist in conn.execute(
                sa.select(PARAMS.c.trial_id, PARAMS.c.param_name, PARAMS.c.param_value,
                          PARAMS.c.distribution_json).where(of_study(PARAMS))
                .order_by(PARAMS.c.param_id)).all():
            params.setdefault(tid, {})[name] = _distribution(dist).to_external_repr(value)
        query = sa.select(USER.c.trial_id, USER.c.key, USER.c.value_json).where(
            of_study(USER))
        if user_keys is not None:
            query = query.where(USER.c.key.in_(user_keys))
        attrs: dict[int, dict] = {}
        for tid, key, value in conn.execute(query).all():
            attrs.setdefault(tid, {})[key] = json.loads(value)
        files: dict[int, list] = {}
        if artifacts:
            for tid, value in conn.execute(
                    sa.select(SYSTEM.c.trial_id, SYSTEM.c.value_json).where(
                        of_study(SYSTEM), SYSTEM.c.key.startswith(ARTIFACTS_PREFIX))).all():
                meta = json.loads(json.loads(value))  # Optuna stores the meta's JSON text
                files.setdefault(tid, []).append((meta["filename"], meta["artifact_id"]))
    return {tid: StoredTrial(
        number=number, state=TrialState[state],
        values=[v for _, v in sorted(values[tid].items())] if tid in values else None,
        params=params.get(tid, {}), user_attrs=attrs.get(tid, {}),
        artifacts=tuple(files.get(tid, ())),
    ) for tid, number, state in trials}


def write_user_attrs(conn: sa.Connection, trial_id: int, attrs: dict) -> None:
    """Replace user attributes of a trial in ``conn``'s transaction, stored as Optuna stores
    them (JSON), whatever the trial's state."""
    conn.execute(sa.delete(USER).where(USER.c.trial_id == trial_id,
                                              USER.c.key.in_(list(attrs))))
    conn.execute(sa.insert(USER), [
        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
        for key, value in attrs.items()])
