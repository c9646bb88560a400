"""Claims and their heartbeat against a real SQLite file: a transient database error is
retried, a claim taken over or a heartbeat that cannot reach the storage stops the trial."""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa

from conftest import tiny_study, write_study
from sweep.run import claims, run_sweep
from sweep.store import open_storage
from sweep.study import load_study


class FlakyEngine:
    """A real engine whose first ``failures`` transactions fail as a restarting server's do."""

    def __init__(self, engine, failures: int):
        self.engine, self.failures = engine, failures

    def begin(self):
        if self.failures:
            self.failures -= 1
            raise sa.exc.OperationalError("UPDATE sweep_claims", {}, Exception("server closed"))
        return self.engine.begin()


def _claimed(db_url: str):
    store = open_storage(db_url)
    claim = claims.claim_next(store.engine, 1, ["p"], "host:1")
    assert claim == claims.Claim("p")
    return store


def _wait(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_transient_database_error_is_logged_and_retried(db_url, caplog):
    store = _claimed(db_url)
    flaky = FlakyEngine(store.engine, failures=2)
    with caplog.at_level(logging.WARNING, logger="sweep.run.claims"):
        with claims.Heartbeat(flaky, 1, "p", "host:1", every_s=0.05, give_up_after_s=30) as hb:
            _wait(lambda: flaky.failures == 0 and claims.running(store.engine, 1)[0].heartbeat
                  > time.time() - 0.5)
    assert hb.lost is None
    assert sum("heartbeat of point p failed" in r.message for r in caplog.records) == 2


def test_a_heartbeat_that_cannot_reach_the_storage_gives_the_claim_up(db_url):
    store = _claimed(db_url)
    with claims.Heartbeat(FlakyEngine(store.engine, failures=10**6), 1, "p", "host:1",
                          every_s=0.05, give_up_after_s=0.3) as hb:
        _wait(lambda: hb.lost is not None)
    assert hb.lost.startswith("no heartbeat reached the storage for")


def test_a_claim_taken_over_is_lost(db_url):
    store = _claimed(db_url)
    with claims.Heartbeat(store.engine, 1, "p", "host:1", every_s=0.05) as hb:
        with store.engine.begin() as conn:
            conn.execute(claims.CLAIMS.update().values(worker="elsewhere:7"))
        _wait(lambda: hb.lost is not None)
    assert hb.lost == "another worker took the point over"


def test_a_worker_whose_point_is_taken_over_stops_that_trial_and_goes_on(
        tmp_path, tiny_npz, db_url, monkeypatch):
    # before: the heartbeat thread died silently; the first worker trained on and then
    # crashed on trial.report / study.tell of the trial the taker had marked failed
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.1)
    monkeypatch.setattr(claims, "STALE_AFTER_S", 2.0)
    raw = tiny_study(tiny_npz)  # 2 points
    raw["training"] = {**raw["training"], "epochs": 30, "snapshots": [30]}
    spec = load_study(str(write_study(tmp_path, raw)))
    monkeypatch.chdir(tmp_path)

    def take_over():  # another worker takes the first point once it has trained an epoch
        engine = sa.create_engine(db_url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.begin() as conn:
                if conn.exec_driver_sql("SELECT COUNT(*) FROM sweep_epochs").scalar():
                    conn.execute(claims.CLAIMS.update().where(claims.CLAIMS.c.state == "running")
                                 .values(worker="elsewhere:7", heartbeat=time.time()))
                    return
            time.sleep(0.05)

    open_storage(db_url)  # the tables, before the thief looks
    thief = threading.Thread(target=take_over)
    thief.start()
    result = run_sweep(spec, db_url, artifact_dir=None)
    thief.join()
    assert result.lost == 1
    import optuna

    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 2, states  # the point ran again once the taker "died"
    (given_up,) = [t for t in trials if t.state.name == "FAIL"]
    assert given_up.user_attrs["died"] == "another worker took the point over"
    assert len(given_up.intermediate_values) < 30  # it stopped early
