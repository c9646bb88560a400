"""A running claim's heartbeat, beaten from a background thread while its trial trains
(``sweep.store.claims`` says what a claim is and when a silent one is taken over)."""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa

from sweep.store import claims, reconnect

log = logging.getLogger(__name__)


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
        self._every_s = every_s or claims.HEARTBEAT_S  # looked up per claim: tests shorten it
        self._give_up_after_s = give_up_after_s or claims.GIVE_UP_AFTER_S
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
                    held = claims.update(*self._args)
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
