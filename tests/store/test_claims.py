"""Claims and their heartbeat against a real SQLite file: a transient database error is
retried, a claim taken over or a heartbeat that cannot reach the storage stops the trial;
many worker processes on the real PostgreSQL server run every point once."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections import Counter

import optuna
import pytest
import sqlalchemy as sa

from sweep.run import run_sweep
from sweep.store import claims, open_storage
from sweep.store.heartbeat import Heartbeat
from sweep.study import load_study

from conftest import PG_PASSWORD, tiny_study, write_study


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
    with caplog.at_level(logging.WARNING, logger="sweep.store.heartbeat"):
        with Heartbeat(flaky, 1, "p", "host:1", every_s=0.05, give_up_after_s=30) as hb:
            _wait(lambda: flaky.failures == 0 and claims.running(store.engine, 1)[0].heartbeat
                  > time.time() - 0.5)
    assert hb.lost is None
    assert sum("heartbeat of point p failed" in r.message for r in caplog.records) == 2


def test_a_heartbeat_that_cannot_reach_the_storage_gives_the_claim_up(db_url):
    store = _claimed(db_url)
    with Heartbeat(FlakyEngine(store.engine, failures=10**6), 1, "p", "host:1",
                          every_s=0.05, give_up_after_s=0.3) as hb:
        _wait(lambda: hb.lost is not None)
    assert hb.lost.startswith("no heartbeat reached the storage for")


def test_a_claim_taken_over_is_lost(db_url):
    store = _claimed(db_url)
    with Heartbeat(store.engine, 1, "p", "host:1", every_s=0.05) as hb:
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


@pytest.mark.slow
def test_eight_workers_on_postgres_run_each_of_40_points_once(tmp_path, tiny_npz, postgres,
                                                              monkeypatch):
    # Each worker keeps one study for its run, its grid sampler pointed at each claimed
    # point in turn: the trial of a claim must carry that claim's point, never another's.
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)  # the password the safe way, not in argv
    rates = [round(0.01 + 0.001 * i, 4) for i in range(20)]
    raw = tiny_study(tiny_npz, name="claims40", search={"params": {
        "model.pooling": ["max", "avg"], "training.learning_rate": rates}})
    raw["training"] = {"epochs": 1, "batch_size": 32}
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "run", str(write_study(tmp_path, raw)),
         "--storage", postgres, "--workers", "8"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert PG_PASSWORD not in output
    trials = optuna.load_study(study_name="claims40", storage=postgres).trials
    per_point = Counter(json.dumps(t.params, sort_keys=True) for t in trials)
    assert len(per_point) == 40 and set(per_point.values()) == {1}, per_point
    assert {t.state.name for t in trials} == {"COMPLETE"}
    for t in trials:  # what trained is the point stored (the sampler was not one behind)
        config = t.user_attrs["config"]
        assert (config["model"]["pooling"], config["training"]["learning_rate"]) == (
            t.params["model.pooling"], t.params["training.learning_rate"])
    store = open_storage(postgres)
    done = claims.done(store.engine, store.get_study_id_from_name("claims40"))
    assert len(done) == 40 and sorted(done.values()) == list(range(40))  # a trial per claim


def test_events_carry_each_trials_overhead(tmp_path, tiny_npz, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz)
    raw["training"] = {**raw["training"], "epochs": 1, "snapshots": [1]}
    events = []
    run_sweep(load_study(str(write_study(tmp_path, raw))), db_url, artifact_dir=None,
              on_event=events.append)
    starts = [e for e in events if e["event"] == "start"]
    ends = [e for e in events if e["event"] == "end"]
    assert len(starts) == len(ends) == 2
    for start, end in zip(starts, ends, strict=True):
        assert 0 < start["claim_s"] < 60 and 0 < end["record_s"] < 60
        # one thread's CPU time cannot run ahead of the wall clock
        assert 0 < start["claim_cpu_s"] <= start["claim_s"] + 0.01
        assert 0 < end["record_cpu_s"] <= end["record_s"] + 0.01
        assert start["at"] < end["at"]  # claimed, then trained, then recorded
