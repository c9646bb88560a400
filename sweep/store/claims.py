"""Claims: which worker runs which point of a study, so every point runs once and only once.

A claim is a row of ``sweep_claims`` keyed by (study id, point). Inserting it is the claim: the
primary key lets exactly one worker win a point, on SQLite (whose transactions are serialised,
see ``sweep.store.engine``) and on PostgreSQL alike. Optuna's own hand-out of enqueued
trials is not used: on SQLite it can give one waiting trial to two workers.

A running claim carries a heartbeat. A worker that stops beating (killed, machine lost) loses
its claim after ``STALE_AFTER_S``: another worker takes it over with a compare-and-swap
update, marks the dead trial failed, and runs the point again from its last checkpoint. A
worker whose own heartbeat cannot reach the storage for that long, or finds its claim taken
over, stops its trial (``Heartbeat.lost``): the point is someone else's now.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa

from sweep.store import reconnect
from sweep.store.tables import CLAIMS

HEARTBEAT_S = 10.0  # seconds between heartbeats of a running claim
STALE_AFTER_S = 60.0  # a running claim without a heartbeat for this long is dead
# A worker gives its trial up when its heartbeat has failed for this long: soon another
# worker may take the point over (after STALE_AFTER_S), so it stops first.
GIVE_UP_AFTER_S = STALE_AFTER_S - 2 * HEARTBEAT_S
log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Claim:
    """A point this worker now owns; ``dead_trial`` is the trial number of a dead worker it
    took over (to be marked failed); ``earlier_trial`` the complete trial of this point to
    continue (the study's epochs grew, see ``reopen``); both None for a fresh point.
    ``position``: how many of the study's points had been claimed with this one (its place
    in the sweep, "k of N")."""

    point: str
    dead_trial: int | None = None
    earlier_trial: int | None = None
    position: int = 1


def claim_next(engine: sa.Engine, study_id: int, points: list[str], worker: str) -> Claim | None:
    """Claim the first point nobody holds, else one to continue, else a stale one; None when
    nothing is claimable."""
    while True:
        try:
            with engine.begin() as conn:
                rows = conn.execute(
                    sa.select(CLAIMS.c.point, CLAIMS.c.state, CLAIMS.c.heartbeat,
                              CLAIMS.c.worker, CLAIMS.c.trial_number)
                    .where(CLAIMS.c.study_id == study_id)
                ).all()
                held = {r.point: r for r in rows}
                free = next((p for p in points if p not in held), None)
                # points claimed so far (one to continue is not, until claimed again)
                claimed = sum(p in held and held[p].state != "more" for p in points)
                now, host = time.time(), socket.gethostname()
                # a point nobody holds, else one to continue
                candidates = [(free, None)] if free is not None else [
                    (r.point, r) for r in rows if r.state == "more" and r.point in points]
                for point, row in candidates:
                    claim = _claim(conn, study_id, point, row, worker, now)
                    if claim is not None:
                        return replace(claim, position=claimed + 1)
                for r in rows:
                    if r.state == "running" and r.point in points and is_dead(
                        r.worker, r.heartbeat, now, host
                    ):
                        taken = conn.execute(_take(study_id, r).values(
                            worker=worker, heartbeat=now, trial_number=None)).rowcount
                        if taken:
                            return Claim(r.point, r.trial_number, position=claimed)
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


def claim_also(engine: sa.Engine, study_id: int, point: str, worker: str) -> Claim | None:
    """Claim ``point`` beside one claimed already (a fused group): if nobody holds it, or it
    waits to be continued (``reopen``); None when it is held or done."""
    try:
        with engine.begin() as conn:
            row = conn.execute(
                sa.select(CLAIMS.c.point, CLAIMS.c.state, CLAIMS.c.heartbeat, CLAIMS.c.worker,
                          CLAIMS.c.trial_number)
                .where(CLAIMS.c.study_id == study_id, CLAIMS.c.point == point)).first()
            return _claim(conn, study_id, point, row, worker, time.time())
    except sa.exc.IntegrityError:  # another worker inserted it first (PostgreSQL)
        return None


def _claim(conn: sa.Connection, study_id: int, point: str, row: sa.Row | None, worker: str,
           now: float) -> Claim | None:
    """Claim ``point`` in ``conn``'s transaction: insert its claim where it has none
    (``row`` None), take it over where it waits to be continued (``reopen``); None when it
    is held or done."""
    values = {"worker": worker, "state": "running", "heartbeat": now}
    if row is None:
        conn.execute(CLAIMS.insert().values(study_id=study_id, point=point, **values))
        return Claim(point)
    if row.state == "more" and conn.execute(
            _take(study_id, row).values(trial_number=None, **values)).rowcount:
        return Claim(point, earlier_trial=row.trial_number)
    return None


def held(engine: sa.Engine, study_id: int) -> set[str]:
    """The points of a study that somebody holds or finished (not those to continue)."""
    with engine.connect() as conn:
        return set(conn.execute(sa.select(CLAIMS.c.point).where(
            CLAIMS.c.study_id == study_id, CLAIMS.c.state != "more")).scalars())


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


def pending(engine: sa.Engine, study_id: int, points: list[str]) -> int:
    """How many of ``points`` are not done yet (unclaimed, running, or to continue)."""
    return len(points) - tally(engine, study_id, points)["done"]


def tally(engine: sa.Engine, study_id: int, points: list[str]) -> dict[str, int]:
    """``{"done": n, "to_continue": m}``: how many of ``points`` are done, and how many are
    given back to train more epochs (``reopen``)."""
    with engine.connect() as conn:
        counts: dict[str, int] = dict(conn.execute(
            sa.select(CLAIMS.c.state, sa.func.count()).select_from(CLAIMS)
            .where(CLAIMS.c.study_id == study_id, CLAIMS.c.state.in_(("done", "more")),
                   CLAIMS.c.point.in_(points))
            .group_by(CLAIMS.c.state)).all())
    return {"done": counts.get("done", 0), "to_continue": counts.get("more", 0)}


def update(engine: sa.Engine, study_id: int, point: str, worker: str,
           **values: object) -> bool:
    """Set ``trial_number`` / ``state`` of this worker's claim, and beat its heart.

    Returns:
        False when the claim is no longer this worker's (another took it over).
    """
    def write() -> bool:
        with engine.begin() as conn:
            return conn.execute(
                CLAIMS.update()
                .where(CLAIMS.c.study_id == study_id, CLAIMS.c.point == point,
                       CLAIMS.c.worker == worker)
                .values(heartbeat=time.time(), **values)
            ).rowcount > 0

    return reconnect.once_more(write)  # the same values twice: no change


def release(engine: sa.Engine, study_id: int, point: str, worker: str) -> None:
    """Give a point back (its trial was interrupted): the next worker or run takes it."""
    def write() -> None:
        with engine.begin() as conn:
            conn.execute(CLAIMS.delete().where(
                CLAIMS.c.study_id == study_id, CLAIMS.c.point == point,
                CLAIMS.c.worker == worker))

    reconnect.once_more(write)


def release_worker(engine: sa.Engine, study_id: int, worker: str) -> list[int]:
    """Give back every running claim of a worker known to be dead; returns their trial
    numbers."""
    with engine.begin() as conn:
        owned = conn.execute(
            sa.select(CLAIMS.c.trial_number).where(
                CLAIMS.c.study_id == study_id, CLAIMS.c.worker == worker,
                CLAIMS.c.state == "running")
        ).scalars().all()
        conn.execute(CLAIMS.delete().where(
            CLAIMS.c.study_id == study_id, CLAIMS.c.worker == worker,
            CLAIMS.c.state == "running"))
    return [t for t in owned if t is not None]


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


class Heartbeat:
    """Beats a claim's heart from a background thread while its trial trains.

    A beat that fails (the database restarting, a network blip) is logged and retried at the
    next beat. ``lost`` becomes the reason the claim is gone, None while it is held: the
    claim was taken over, or no beat succeeded for ``give_up_after_s``. The trial must then
    stop, since another worker runs (or will soon run) the point.
    """

    def __init__(self, engine: sa.Engine, study_id: int, point: str, worker: str, *,
                 every_s: float | None = None, give_up_after_s: float | None = None) -> None:
        self._args = (engine, study_id, point, worker)
        self._every_s = every_s or HEARTBEAT_S  # looked up per claim: tests shorten it
        self._give_up_after_s = give_up_after_s or GIVE_UP_AFTER_S
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop beating (again: a no-op), before the claim is closed."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(self._every_s):
            try:
                with reconnect.patience(0):  # this loop is the heartbeat's patience
                    held = update(*self._args)
            except Exception as err:  # any database error: retried at the next beat
                silent = time.monotonic() - last_beat
                log.warning("heartbeat of point %s failed after %.0f s without one (%s); "
                            "retrying in %.0f s", self._args[2][:80], silent,
                            str(err).splitlines()[0][:200], self._every_s)
                if silent >= self._give_up_after_s:
                    self.lost = f"no heartbeat reached the storage for {silent:.0f} s"
                    return
                continue
            if not held:
                self.lost = "another worker took the point over"
                return
            last_beat = time.monotonic()
