"""Claims: which worker runs which point of a study, so every point runs once and only once.

A claim is a row of ``sweep_claims`` keyed by (study id, point). Inserting it is the claim: the
primary key lets exactly one worker win a point, on SQLite (whose transactions are serialised,
see ``sweep.store.engine``) and on PostgreSQL alike. Optuna's own hand-out of enqueued
trials is not used: on SQLite it can give one waiting trial to two workers.

A running claim carries a heartbeat. A worker that stops beating (killed, machine lost) loses
its claim after ``STALE_AFTER_S``: another worker takes it over with a compare-and-swap
update, marks the dead trial failed, and runs the point again from its last checkpoint. A
worker whose own heartbeat cannot reach the storage for that long, or finds its claim taken
over, stops its trial (``heartbeat.Heartbeat.lost``): the point is someone else's now.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from sweep.store import halving, reconnect
from sweep.store.halving import Ladder
from sweep.store.tables import CLAIMS

HEARTBEAT_S = 10.0  # seconds between heartbeats of a running claim
STALE_AFTER_S = 60.0  # a running claim without a heartbeat for this long is dead
# A worker gives its trial up when its heartbeat has failed for this long: soon another
# worker may take the point over (after STALE_AFTER_S), so it stops first.
GIVE_UP_AFTER_S = STALE_AFTER_S - 2 * HEARTBEAT_S

@dataclass(frozen=True)
class Claim:
    """A point this worker now owns; ``dead_trial`` is the trial number of a dead worker it
    took over (to be marked failed); ``earlier_trial`` the complete trial of this point to
    continue (the study's epochs grew, see ``reopen``, or a rung promoted it, see
    ``sweep.store.halving``); both None for a fresh point.
    ``position``: how many of the study's points had been claimed with this one (its place
    in the sweep, "k of N")."""

    point: str
    dead_trial: int | None = None
    earlier_trial: int | None = None
    position: int = 1
    epochs: int | None = None  # the rung it trains to (search.schedule), else None: all


def claim_next(engine: sa.Engine, study_id: int, points: list[str], worker: str,
               ladder: Ladder | None = None) -> Claim | None:
    """Claim the first point nobody holds, else one to continue, else a stale one; None when
    nothing is claimable. With a ``ladder`` (successive halving) a promotion comes first."""
    while True:
        try:
            with engine.begin() as conn:
                rows = conn.execute(sa.select(*_ROW).where(CLAIMS.c.study_id == study_id)).all()
                held = {r.point: r for r in rows}
                free = next((p for p in points if p not in held), None)
                # points claimed so far (one to continue is not, until claimed again)
                claimed = sum(p in held and held[p].state != "more" for p in points)
                now, host = time.time(), socket.gethostname()
                # a point nobody holds, else one to continue
                candidates: list[tuple[str, sa.Row | None]] = [(free, None)] if free else [
                    (r.point, r) for r in rows if r.state == "more" and r.point in points]
                if ladder is not None:  # a promotion first, else a new point
                    candidates[:0] = [(r.point, r) for r in halving.promotable(
                        (r for r in rows if r.point in points), ladder, points)]
                for point, row in candidates:
                    claim = _claim(conn, study_id, point, row, worker, now, ladder)
                    if claim is not None:
                        return replace(claim, position=claimed + 1)
                for r in rows:
                    if r.state == "running" and r.point in points and is_dead(
                        r.worker, r.heartbeat, now, host
                    ):
                        taken = conn.execute(_take(study_id, r).values(
                            worker=worker, heartbeat=now, trial_number=None)).rowcount
                        if taken:
                            return Claim(r.point, r.trial_number, position=claimed,
                                         epochs=r.rung)
                return None
        except sa.exc.IntegrityError:
            continue  # another worker inserted the same point first (PostgreSQL): look again


def claim_free(engine: sa.Engine, study_id: int, point: str, worker: str) -> bool:
    """Claim ``point`` if nobody holds it (nor ever finished it); False when it is held."""
    try:
        with engine.begin() as conn:
            conn.execute(CLAIMS.insert().values(study_id=study_id, point=point, worker=worker,
                                                state="running", heartbeat=time.time()))
        return True
    except sa.exc.IntegrityError:
        return False


def claim_also(engine: sa.Engine, study_id: int, point: str, worker: str,
               ladder: Ladder | None = None, epochs: int | None = None,
               points: Sequence[str] = ()) -> Claim | None:
    """Claim ``point`` beside one claimed already (a fused group): if nobody holds it, or it
    waits to be continued (``reopen``); None when it is held or done. With a ``ladder``
    (successive halving), only to train to the same rung as the group (``epochs``): a new
    point with a group of new points, a promotable one (of the study's ``points``) with a
    group of promotions."""
    try:
        with engine.begin() as conn:
            rows = conn.execute(sa.select(*_ROW).where(CLAIMS.c.study_id == study_id)).all()
            row = next((r for r in rows if r.point == point), None)
            if ladder is not None and (
                    epochs != ladder.rungs[0] if row is None else
                    row not in halving.promotable(rows, ladder, points)
                    or ladder.after(row.rung) != epochs):
                return None
            return _claim(conn, study_id, point, row, worker, time.time(), ladder)
    except sa.exc.IntegrityError:  # another worker inserted it first (PostgreSQL)
        return None


def _claim(conn: sa.Connection, study_id: int, point: str, row: sa.Row | None, worker: str,
           now: float, ladder: Ladder | None = None) -> Claim | None:
    """Claim ``point`` in ``conn``'s transaction: insert its claim where it has none
    (``row`` None; with a ``ladder``, to train to its first rung), take it over where it
    waits to be continued (``reopen``) or promoted (a rung's ``rest``); None when it is held
    or done."""
    values = {"worker": worker, "state": "running", "heartbeat": now}
    if row is None:
        rung = ladder.rungs[0] if ladder is not None else None
        conn.execute(CLAIMS.insert().values(study_id=study_id, point=point, rung=rung,
                                            **values))
        return Claim(point, epochs=rung)
    rung = ladder.after(row.rung) if ladder is not None and row.state == "rest" else None
    if (row.state == "more" or rung is not None) and conn.execute(
            _take(study_id, row).values(trial_number=None, rung=rung, **values)).rowcount:
        return Claim(point, earlier_trial=row.trial_number, epochs=rung)
    return None


# a claim's row as claim_next and claim_also read it
_ROW = (CLAIMS.c.point, CLAIMS.c.state, CLAIMS.c.heartbeat, CLAIMS.c.worker,
        CLAIMS.c.trial_number, CLAIMS.c.rung, CLAIMS.c.scores)


def held(engine: sa.Engine, study_id: int) -> set[str]:
    """The points of a study that somebody holds or finished (not those to continue, nor
    those resting at a rung)."""
    with engine.connect() as conn:
        return set(conn.execute(sa.select(CLAIMS.c.point).where(
            CLAIMS.c.study_id == study_id, CLAIMS.c.state.not_in(("more", "rest")))).scalars())


def _take(study_id: int, row: sa.Row) -> sa.Update:
    """An update of ``row``'s claim that only succeeds while nobody changed it (a
    compare-and-swap on worker, state and heartbeat)."""
    return CLAIMS.update().where(
        CLAIMS.c.study_id == study_id, CLAIMS.c.point == row.point,
        CLAIMS.c.worker == row.worker, CLAIMS.c.state == row.state,
        CLAIMS.c.heartbeat == row.heartbeat)


def reopen(engine: sa.Engine, study_id: int, short: dict[str, int]) -> None:
    """Give back done points to continue: ``short`` maps a point to its complete trial, which
    trained fewer epochs than the study now asks. The next claim continues that trial."""
    with engine.begin() as conn:
        for point, trial_number in short.items():
            conn.execute(CLAIMS.update().where(
                CLAIMS.c.study_id == study_id, CLAIMS.c.point == point,
                CLAIMS.c.state == "done", CLAIMS.c.trial_number == trial_number,
            ).values(state="more"))


def done(engine: sa.Engine, study_id: int) -> dict[str, int | None]:
    """The done points of a study, with the trial that did each."""
    with engine.connect() as conn:
        return dict(conn.execute(
            sa.select(CLAIMS.c.point, CLAIMS.c.trial_number)
            .where(CLAIMS.c.study_id == study_id, CLAIMS.c.state == "done")).all())


def rekey(engine: sa.Engine, study_id: int, keys: dict[str, str]) -> None:
    """Rename claims (``{old point key: new}``): sweep 0.1 keyed grid points by their
    values; they are keyed by what the trial means now (``study.space.identity``)."""
    with engine.begin() as conn:
        for old, new in keys.items():
            conn.execute(CLAIMS.update().where(
                CLAIMS.c.study_id == study_id, CLAIMS.c.point == old).values(point=new))


def pending(engine: sa.Engine, study_id: int, points: list[str],
            ladder: Ladder | None = None) -> int:
    """How many of ``points`` are not done yet (unclaimed, running, or to continue; with a
    ``ladder``, not those resting at a rung unless one may be promoted now)."""
    return len(points) - tally(engine, study_id, points, ladder)["done"]


def tally(engine: sa.Engine, study_id: int, points: list[str],
          ladder: Ladder | None = None) -> dict[str, Any]:
    """``{"done": n, "to_continue": m}``: how many of ``points`` are done, and how many are
    given back to train more epochs (``reopen``). With a ``ladder`` (successive halving) a
    point resting at a rung is done, unless it may be promoted now, and ``rungs`` says how
    many points reached each rung (``[[epochs, points], ...]``, as JSON keeps it)."""
    with engine.connect() as conn:
        if ladder is not None:
            rows = conn.execute(sa.select(*_ROW).where(CLAIMS.c.study_id == study_id,
                                                       CLAIMS.c.point.in_(points))).all()
            resting = sum(r.state == "rest" for r in rows) - len(
                halving.promotable(rows, ladder, points))
            return {"done": sum(r.state == "done" for r in rows) + resting,
                    "to_continue": sum(r.state == "more" for r in rows),
                    "rungs": [list(pair) for pair in halving.reached(rows).items()]}
        counts: dict[str, int] = dict(conn.execute(
            sa.select(CLAIMS.c.state, sa.func.count()).select_from(CLAIMS)
            .where(CLAIMS.c.study_id == study_id, CLAIMS.c.state.in_(("done", "more")),
                   CLAIMS.c.point.in_(points))
            .group_by(CLAIMS.c.state)).all())
    return {"done": counts.get("done", 0), "to_continue": counts.get("more", 0)}


@reconnect.repeatable  # the same values twice: no change
def update(engine: sa.Engine, study_id: int, point: str, worker: str,
           **values: object) -> bool:
    """Set ``trial_number`` / ``state`` of this worker's claim, and beat its heart.

    Returns:
        False when the claim is no longer this worker's (another took it over).
    """
    with engine.begin() as conn:
        return conn.execute(
            CLAIMS.update()
            .where(CLAIMS.c.study_id == study_id, CLAIMS.c.point == point,
                   CLAIMS.c.worker == worker)
            .values(heartbeat=time.time(), **values)
        ).rowcount > 0


@reconnect.repeatable  # given back twice: the same
def release(engine: sa.Engine, study_id: int, point: str, worker: str) -> None:
    """Give a point back (its trial was interrupted): the next worker or run takes it."""
    with engine.begin() as conn:
        _give_back(conn, study_id, CLAIMS.c.point == point, CLAIMS.c.worker == worker)


def release_worker(engine: sa.Engine, study_id: int, worker: str) -> list[int]:
    """Give back every running claim of a worker known to be dead; returns their trial
    numbers."""
    with engine.begin() as conn:
        owned = _give_back(conn, study_id, CLAIMS.c.worker == worker,
                           CLAIMS.c.state == "running")
    return [t for t in owned if t is not None]


def _give_back(conn: sa.Connection, study_id: int, *where: sa.ColumnElement[bool]
               ) -> list[int | None]:
    """Give back the claims ``where`` selects; returns their trial numbers. A claim is
    removed (the point is free again), except a promotion (``sweep.store.halving``): it
    rests again at the rung it was promoted from, to be promoted again and continue from
    its checkpoint."""
    mine = (CLAIMS.c.study_id == study_id, *where)
    rows = conn.execute(sa.select(CLAIMS.c.point, CLAIMS.c.trial_number, CLAIMS.c.scores)
                        .where(*mine)).all()
    for row in rows:
        scores = halving.scores_of(row)
        if scores:
            conn.execute(CLAIMS.update().where(*mine, CLAIMS.c.point == row.point).values(
                state="rest", rung=max(scores)))
    conn.execute(CLAIMS.delete().where(*mine, CLAIMS.c.scores.is_(None)))
    return [row.trial_number for row in rows]


def running(engine: sa.Engine, study_id: int) -> Sequence[sa.Row]:
    """Rows of the running claims: ``point, worker, trial_number, heartbeat``."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(CLAIMS.c.point, CLAIMS.c.worker, CLAIMS.c.trial_number, CLAIMS.c.heartbeat)
            .where(CLAIMS.c.study_id == study_id, CLAIMS.c.state == "running")
        ).all()


def is_dead(worker: str, heartbeat: float, now: float, host: str) -> bool:
    """A running claim's worker is dead: no heartbeat for ``STALE_AFTER_S``, or it ran on this
    host and its process is gone (a crashed local run need not wait out the heartbeat)."""
    if now - heartbeat > STALE_AFTER_S:
        return True
    claim_host, _, pid = worker.rpartition(":")
    if claim_host != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False
