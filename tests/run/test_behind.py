"""The writes a worker does not wait for (``sweep.run.behind``): in order, on a thread of
their own, a failure stopping the ones after it and said to the worker; and a real run whose
writes are slow, which trains on without waiting for them and still stores all of them (the
trials, their params, epoch rows, per-epoch values, attributes and claims)."""

from __future__ import annotations

import threading
import time

import optuna
import pytest

from sweep.run.behind import Behind
from sweep.run.progress import Overhead
from sweep.store import claims, epochs_frame, open_storage

from conftest import tiny_study, write_study


def test_writes_are_made_in_order_while_the_caller_goes_on():
    behind, made, slow = Behind(), [], threading.Event()
    behind.put(lambda: (slow.wait(5), made.append(1)))
    behind.put(lambda: made.append(2))
    assert made == []  # put returned with the first write still waiting
    slow.set()
    behind.flush()
    assert made == [1, 2]
    behind.close()


def test_a_failed_write_stops_the_ones_after_it_and_is_raised_to_the_caller():
    behind, made = Behind(), []

    def fail() -> None:
        raise OSError("the database went away")

    behind.put(fail)
    behind.put(lambda: made.append("after"))
    assert isinstance(behind.wait(), OSError)
    assert behind.failed and made == []
    with pytest.raises(OSError, match="went away"):
        behind.put(lambda: made.append("later"))
    with pytest.raises(OSError, match="went away"):
        behind.flush()
    behind.close()
    assert made == []


def test_no_write_starts_while_paused_and_each_is_timed_on_its_trial():
    behind, made, timed = Behind(), [], Overhead().stop()
    with behind.paused():
        behind.put(lambda: (time.sleep(0.05), made.append("write")), timed)
        time.sleep(0.3)
        assert made == []  # the worker claims its next point meanwhile
    behind.flush()
    assert made == ["write"] and timed.wall >= 0.05
    behind.close()


def test_closing_waits_for_the_writes_asked_for():
    behind, made = Behind(), []
    behind.put(lambda: (time.sleep(0.2), made.append(1)))
    behind.close()
    assert made == [1]


@pytest.mark.slow
def test_a_worker_trains_on_while_its_slow_writes_are_made_and_all_of_them_are(
        tmp_path, tiny_npz, monkeypatch):
    # each epoch row takes 2 s to store: the worker must not wait for it
    import sweep.run.attempt as attempt
    from sweep.run.worker import run_sweep
    from sweep.study import load_study

    store_epoch = attempt.record_epoch

    def slow_epoch(*args: object) -> None:
        time.sleep(2.0)
        store_epoch(*args)

    monkeypatch.setattr(attempt, "record_epoch", slow_epoch)
    monkeypatch.chdir(tmp_path)
    spec = load_study(str(write_study(tmp_path, tiny_study(tiny_npz))))
    url, events, said = f"sqlite:///{tmp_path / 's.db'}", [], {}

    def on_event(event: dict) -> None:
        events.append(event)
        said[event["event"], event.get("trial")] = time.time()

    run_sweep(spec, url, checkpoint_dir=tmp_path / "ck", artifact_dir=None, on_event=on_event)
    ends = [e for e in events if e["event"] == "end"]
    assert len(ends) == 2 and all(e["state"] == "complete" for e in ends)
    assert ends[0]["behind_s"] >= 4.0  # two epoch rows, 2 s each, made behind ...
    assert ends[0]["record_s"] < 0.5  # ... while the worker went on:
    start = next(e for e in events if e["event"] == "start" and e["trial"] == 1)
    assert start["at"] < said["end", 0]  # it claimed the next point before that
    study = optuna.load_study(study_name="tiny", storage=url)
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert sorted(trial.intermediate_values) == [1, 2]
        assert "diagnostics" in trial.user_attrs and "config" in trial.user_attrs
    storage = open_storage(url)
    frame = epochs_frame(storage, study._study_id)
    assert sorted(frame.groupby("trial_number").epoch.apply(list).tolist()) == [[1, 2]] * 2
    assert sorted(claims.done(storage.engine, study._study_id).values()) == [0, 1]
