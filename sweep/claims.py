"""Claims: which worker runs which point of a study, so every point runs once and only once.

A claim is a row of ``sweep_claims`` keyed by (study, point). Inserting it is the claim: the
primary key lets exactly one worker win a point, on SQLite (whose transactions are serialised,
see ``storage._serialise_sqlite``) and on PostgreSQL alike. Optuna's own hand-out of enqueued
trials is not used: on SQLite it can give one waiting trial to two workers.

A running claim carries a heartbeat. A worker that stops beating (killed, machine lost) loses
its claim after ``STALE_AFTER_S``: another worker takes it over with a compare-and-swap
update, marks the dead trial failed, and runs the point again from its last checkpoint.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from sweep.storage import CLAIMS

HEARTBEAT_S = 10.0  # seconds between heartbeats of a running claim
STALE_AFTER_S = 60.0  # a running claim without a heartbeat for this long is dead

@dataclass(frozen=True)
class Claim:
    """A point this worker now owns; ``dead_trial_id`` is the trial of a dead worker it took
    over (to be marked failed), or None for a fresh point."""

    point: str
    dead_trial_id: int | None = None


def claim_next(engine, study: str, points: list[str], worker: str) -> Claim | None:
    """Claim the first point nobody holds, else a stale one; None when nothing is claimable."""
    while True:
        try:
            with engine.begin() as conn:
                rows = conn.execute(
                    sa.select(CLAIMS.c.point, CLAIMS.c.state, CLAIMS.c.heartbeat,
                              CLAIMS.c.worker, CLAIMS.c.trial_id)
                    .where(CLAIMS.c.study_name == study)
                ).all()
                held = {r.point: r for r in rows}
                free = next((p for p in points if p not in held), None)
                now, host = time.time(), socket.gethostname()
                if free is not None:
                    conn.execute(CLAIMS.insert().values(
                        study_name=study, point=free, worker=worker, state="running",
                        heartbeat=now))
                    return Claim(free)
                for r in rows:
                    if r.state == "running" and r.point in points and is_dead(
                        r.worker, r.heartbeat, now, host
                    ):
                        taken = conn.execute(
                            CLAIMS.update()
                            .where(CLAIMS.c.study_name == study, CLAIMS.c.point == r.point,
                                   CLAIMS.c.worker == r.worker,
                                   CLAIMS.c.heartbeat == r.heartbeat)
                            .values(worker=worker, heartbeat=now, trial_id=None)
                        ).rowcount
                        if taken:
                            return Claim(r.point, r.trial_id)
                return None
        except sa.exc.IntegrityError:
            continue  # another worker inserted the same point first (PostgreSQL): look again


def pending(engine, study: str, points: list[str]) -> int:
    """How many of ``points`` are not done yet (unclaimed or running)."""
    with engine.connect() as conn:
        done = conn.execute(
            sa.select(sa.func.count()).select_from(CLAIMS)
            .where(CLAIMS.c.study_name == study, CLAIMS.c.state == "done",
                   CLAIMS.c.point.in_(points))
        ).scalar_one()
    return len(points) - done


def update(engine, study: str, point: str, worker: str, **values) -> None:
    """Set ``trial_id`` / ``state`` of this worker's claim, and beat its heart."""
    with engine.begin() as conn:
        conn.execute(
            CLAIMS.update()
            .where(CLAIMS.c.study_name == study, CLAIMS.c.point == point,
                   CLAIMS.c.worker == worker)
            .values(heartbeat=time.time(), **values)
        )


def release(engine, study: str, point: str, worker: str) -> None:
    """Give a point back (its trial was interrupted): the next worker or run takes it."""
    with engine.begin() as conn:
        conn.execute(
            CLAIMS.delete().where(CLAIMS.c.study_name == study, CLAIMS.c.point == point,
                                  CLAIMS.c.worker == worker)
        )


def release_worker(engine, study: str, worker: str) -> list[int]:
    """Give back every running claim of a worker known to be dead; returns their trial ids."""
    with engine.begin() as conn:
        owned = conn.execute(
            sa.select(CLAIMS.c.trial_id).where(
                CLAIMS.c.study_name == study, CLAIMS.c.worker == worker,
                CLAIMS.c.state == "running")
        ).scalars().all()
        conn.execute(CLAIMS.delete().where(
            CLAIMS.c.study_name == study, CLAIMS.c.worker == worker,
            CLAIMS.c.state == "running"))
    return [t for t in owned if t is not None]


def running(engine, study: str) -> list:
    """Rows of the running claims: ``point, worker, trial_id, heartbeat``."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(CLAIMS.c.point, CLAIMS.c.worker, CLAIMS.c.trial_id, CLAIMS.c.heartbeat)
            .where(CLAIMS.c.study_name == study, CLAIMS.c.state == "running")
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


class Heartbeat:
    """Beats a claim's heart from a background thread while its trial trains."""

    def __init__(self, engine, study: str, point: str, worker: str):
        self._args = (engine, study, point, worker)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            update(*self._args)
