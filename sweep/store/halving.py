"""Successive halving over claims (``search.schedule``, asynchronous as in ASHA, Li et al.,
MLSys 2020): which resting point a worker promotes, decided in the claim's own transaction.

A point trains to its first rung, then rests (claim state ``rest``, its ``rung``: the epochs
it reached, its ``scores``: the objective at the end of each rung done). A worker asking for
work promotes first: among the points that finished a rung, the best ``1/factor`` (by their
score at that rung) that still rest there, from the highest rung down; else it takes a new
point. Nobody waits at a barrier; a promotion is claimed with the same compare-and-swap as
any claim, so one worker wins it. The promoted point continues from its kept model (the
earlier trial's, ``Claim.earlier_trial``) to the next rung's epochs.
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


def promotable(rows: Iterable[sa.Row], ladder: Ladder, unclaimed: bool = False
               ) -> list[sa.Row]:
    """The resting claims a worker may promote, in the order to try them: from the highest
    rung below the top down, each rung's best first. A claim is promotable when its group
    (``Ladder.groups``: a point's seeds; else the claim alone) is among the best
    ``n // factor`` of the ``n`` groups whose claims all finished the rung (promoted since or
    not; ranked on their mean score there) and it rests there. A rung no point can still
    reach (none ``unclaimed``, none training to it or below, none promotable below it)
    promotes its best group even where ``n // factor`` is 0: every point of a grid finished,
    one goes on to the top."""
    rows = list(rows)
    sizes = Counter(ladder.groups.values())  # a group's claims, claimed yet or not
    scored = [(scores_of(r), r) for r in rows]
    coming = unclaimed  # whether a point may still finish the rung looked at
    by_rung = []
    for rung in ladder.rungs[:-1]:
        coming = coming or any(r.state in ("running", "more") and (r.rung or rung) <= rung
                               for r in rows)
        finished: dict[str, list[tuple[float, sa.Row]]] = defaultdict(list)
        for scores, r in scored:
            if rung in scores:
                finished[ladder.group(r.point)].append((scores[rung], r))
        ranked = sorted(((sum(v for v, _ in m) / len(m), g, [r for _, r in m])
                         for g, m in finished.items() if len(m) == sizes.get(g, 1)),
                        key=lambda f: (f[0] if ladder.minimize else -f[0], f[1]))
        count = len(ranked) // ladder.factor or int(bool(ranked) and not coming)
        best = [r for _, _, group in ranked[:count] for r in group
                if r.state == "rest" and r.rung == rung]
        by_rung.append(best)
        coming = coming or bool(best)
    return [r for best in reversed(by_rung) for r in best]


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
