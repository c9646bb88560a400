"""Successive halving over claims (``search.schedule``): which resting point a worker
promotes, decided in the claim's own transaction.

A point trains to its first rung, then rests (claim state ``rest``, its ``rung``: the epochs
it reached, its ``scores``: the objective at the end of each rung done). A worker asking for
work promotes first: a resting point sure to be among the best ``1/factor`` of its rung
(``promotable``), from the highest rung down; else it takes a new point. Nobody waits at a
barrier (as in ASHA, Li et al., MLSys 2020), but unlike ASHA nothing is promoted that later
points could push out of the best ``1/factor``: a grid trains the epochs of synchronous
successive halving, no more. A promotion is claimed with the same compare-and-swap as any
claim, so one worker wins it. The promoted point continues from its kept model (the earlier
trial's, ``Claim.earlier_trial``) to the next rung's epochs.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from sweep.records import TrialKey
from sweep.store import reconnect
from sweep.store.tables import CLAIMS, OPTUNA_TRIALS
from sweep.store.trials import write_user_attrs

if TYPE_CHECKING:
    from sweep.study import StudySpec

SEED = "seed"  # the axis of search.repeats: a point's seeds are promoted together


@dataclass(frozen=True)
class Ladder:
    """A study's rungs (the epochs each trains to, the last the study's), its ``factor``,
    whether a lower objective is better, and ``groups``: the claim keys promoted together
    (``search.repeats``: a point's seeds, ranked on their mean), each key's group; a key not
    in it is a group of its own."""

    rungs: tuple[int, ...]
    factor: int
    minimize: bool
    groups: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, spec: StudySpec, points: Mapping[str, dict | None] | None = None
           ) -> Ladder | None:
        """The study's ladder, or None when it has no ``search.schedule``; ``points``
        (``study.space.study_points``) group the seeds of a point where ``seed`` is an axis."""
        halving = spec.search.schedule
        if halving is None:
            return None
        groups = {key: json.dumps({k: v for k, v in values.items() if k != SEED},
                                  sort_keys=True, default=str)
                  for key, values in (points or {}).items()
                  if values is not None and SEED in values}
        return cls(halving.rungs(spec.training.epochs), halving.factor,
                   spec.directions[0] == "minimize", groups)

    def group(self, key: str) -> str:
        return self.groups.get(key, key)

    @property
    def top(self) -> int:
        return self.rungs[-1]

    def after(self, epochs: int) -> int:
        """The rung above the one at ``epochs`` (a rung the study no longer has: the next one
        above it)."""
        return next(r for r in self.rungs if r > epochs)

    def number(self, epochs: int) -> int:
        """``epochs``' rung, counted from 1."""
        return sum(r <= epochs for r in self.rungs)


def scores_of(row: sa.Row) -> dict[int, float]:
    """A claim's scores: its objective value at the end of each rung it finished."""
    return {int(k): v for k, v in json.loads(row.scores or "{}").items()}


def with_score(row_scores: str | None, epochs: int, value: float) -> str:
    """``row_scores`` (a claim's JSON) with ``value`` at rung ``epochs``."""
    scores = json.loads(row_scores or "{}") | {str(epochs): value}
    return json.dumps(scores, sort_keys=True)


def promotable(rows: Iterable[sa.Row], ladder: Ladder, points: Iterable[str]) -> list[sa.Row]:
    """The resting claims a worker may promote now, in the order to try them: from the
    highest rung below the top down, each rung's best first.

    A rung promotes the best ``1/factor`` of the groups (``Ladder.groups``: a point's seeds,
    ranked on their mean score; else each point alone) that finish it, and at least one
    (a grid always takes a point to the top). A group is promoted as soon as it is sure to be
    among them whatever the groups still on their way score: its rank among those finished
    is below ``k(n + u) - u``, where ``n`` finished, at most ``u`` more may (of ``points``,
    claimed or not, less those that failed before the rung) and ``k(m)`` is the promoted
    count of ``m``. So no point is promoted that synchronous successive halving would stop
    (asynchronous ASHA promotes early winners that later points beat: 75 of 243 epochs on
    the bench's grid, against 63 this way), yet no worker waits at a rung's barrier: it
    starts new points meanwhile, and near a rung's end most of its best are sure."""
    rows = list(rows)
    members: dict[str, list[sa.Row]] = defaultdict(list)
    for r in rows:
        members[ladder.group(r.point)].append(r)
    groups = {ladder.group(p) for p in points} | set(members)
    sizes = Counter(ladder.groups.values())  # a group's claims, claimed yet or not
    scored = {r.point: scores_of(r) for r in rows}
    reach, below, by_rung = len(groups), None, []  # at most ``reach`` groups finish the rung
    for rung in ladder.rungs[:-1]:
        finished, failed = [], 0
        for group in groups:
            mine = members.get(group, [])
            if len(mine) == sizes.get(group, 1) and all(rung in scored[r.point] for r in mine):
                finished.append((sum(scored[r.point][rung] for r in mine) / len(mine), group,
                                 mine))
            elif any(r.state == "done" and rung not in scored[r.point] and (
                    below is None or below in scored[r.point]) for r in mine):
                failed += 1  # it failed on its way to this rung: it never finishes it
        finished.sort(key=lambda f: (f[0] if ladder.minimize else -f[0], f[1]))
        coming = max(0, reach - failed - len(finished))
        sure = _promoted(len(finished) + coming, ladder.factor) - coming
        by_rung.append([r for _, _, mine in finished[:max(sure, 0)] for r in mine
                        if r.state == "rest" and r.rung == rung])
        reach, below = _promoted(len(finished) + coming, ladder.factor), rung
    return [r for best in reversed(by_rung) for r in best]


def _promoted(finishing: int, factor: int) -> int:
    """How many of ``finishing`` groups a rung promotes: ``1/factor`` of them, at least one."""
    return finishing // factor or min(finishing, 1)


def rungs_reached(engine: sa.Engine, study_id: int) -> dict[int, int]:
    """How many points reached each rung as their highest (``search.schedule``), by its
    epochs: a rung finished, or the top rung done."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(CLAIMS.c.state, CLAIMS.c.rung, CLAIMS.c.scores)
                            .where(CLAIMS.c.study_id == study_id)).all()
    return reached(rows)


def reached(rows: Iterable[sa.Row]) -> dict[int, int]:
    """How many of the claims ``rows`` reached each rung as their highest, by its epochs."""
    highest = [max([*scores_of(r), *([r.rung] if r.state == "done" else [])], default=None)
               for r in rows]
    return dict(sorted(Counter(r for r in highest if r is not None).items()))


def reached_text(counts: dict[int, int]) -> str:
    """``1 epoch 8, 3 epochs 3, 9 epochs 1``: how many points reached each rung."""
    return ", ".join(f"{e} epoch{'s' * (e != 1)} {n}" for e, n in counts.items()) or "none yet"


@reconnect.repeatable  # the same score twice: no change
def rest(engine: sa.Engine, study_id: int, point: str, worker: str, epochs: int,
         value: float) -> None:
    """This worker's point finished the rung at ``epochs`` with the objective ``value``: it
    rests there, for a promotion."""
    with engine.begin() as conn:
        mine = (CLAIMS.c.study_id == study_id, CLAIMS.c.point == point,
                CLAIMS.c.worker == worker)
        scores = conn.execute(sa.select(CLAIMS.c.scores).where(*mine)).scalar()
        conn.execute(CLAIMS.update().where(*mine).values(
            state="rest", rung=epochs, heartbeat=time.time(),
            scores=with_score(scores, epochs, value)))


def rest_grown(engine: sa.Engine, study_id: int,
               done: dict[str, tuple[int, float | None]], ladder: Ladder) -> None:
    """A halving study grown to more epochs (its old top a rung of the new ladder): each
    point ``done`` there (``point -> (trial number, objective)``) rests at that rung for a
    promotion, and its trial is PRUNED there like a rung's end below the top, so that the
    study's best is among the points that reach the new top. Once: a point not done (another
    run rested it first) is left."""
    with engine.begin() as conn:
        for point, (number, value) in done.items():
            mine = (CLAIMS.c.study_id == study_id, CLAIMS.c.point == point,
                    CLAIMS.c.state == "done", CLAIMS.c.trial_number == number)
            row = conn.execute(sa.select(CLAIMS.c.rung, CLAIMS.c.scores).where(*mine)).first()
            if row is None or row.rung is None or value is None:
                continue
            epochs = row.rung
            conn.execute(CLAIMS.update().where(*mine).values(
                state="rest", scores=with_score(row.scores, epochs, value)))
            trial = (OPTUNA_TRIALS.c.study_id == study_id, OPTUNA_TRIALS.c.number == number)
            conn.execute(OPTUNA_TRIALS.update().where(*trial).values(state="PRUNED"))
            trial_id = conn.execute(sa.select(OPTUNA_TRIALS.c.trial_id).where(*trial)
                                    ).scalar_one()
            write_user_attrs(conn, trial_id, {TrialKey.RUNG: {
                "rung": ladder.number(epochs), "of": len(ladder.rungs), "epochs": epochs}})
