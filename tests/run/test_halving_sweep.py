"""A successive-halving study end to end (issue 38): real ``sweep run --workers 4`` (and 2)
processes on SQLite, two runs on PostgreSQL; the losers stop at their rung, the winners
continue from their kept models, each promotion is made once, and no epoch of a point is
trained twice."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from sweep.cli import main
from sweep.records import TrialKey

from conftest import tiny_study, write_study

pytestmark = pytest.mark.slow


def _halving_study(tmp_path, npz, name: str = "tiny", **search):
    raw = tiny_study(npz, name=name)
    raw["training"] |= {"epochs": 9, "snapshots": None}
    raw["search"] = {"sampler": "grid",
                     "params": {"model.pooling": ["max", "avg"], "model.kernel": [2, 3],
                                "training.learning_rate": [0.03, 0.01, 0.003]},
                     "schedule": {"kind": "halving", "min_epochs": 1, "factor": 3}} | search
    return write_study(tmp_path, raw)


def _run(study, url: str, cwd, workers: int = 2, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweep.cli", "run", str(study), "--storage",
                             url, "--workers", str(workers), "--checkpoint-every", "0"], cwd=cwd,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def _check_halved(url: str, name: str = "tiny", points: int = 12, rungs=(1, 3, 9),
                  epochs: int | None = 12 * 1 + 4 * 2 + 1 * 6, before: dict | None = None
                  ) -> list:
    """Every point's last trial carries one curve from epoch 1 to its rung; those below the
    top rung are PRUNED there; no epoch of a point was trained twice; the points trained
    ``epochs`` in all (by default synchronous successive halving's of 12 points: 4 go on to
    3 epochs, 1 to 9; 26 of the full grid's 108), and one point reached the top
    (``before``: the value of an axis added since, in the trials before it). Returns the
    trials."""
    trials = optuna.load_study(study_name=name, storage=url).trials
    by_point = defaultdict(list)
    for t in trials:
        by_point[tuple(sorted(((before or {}) | t.params).items()))].append(t)
    assert len(by_point) == points
    trained = 0
    for point, ts in by_point.items():
        last = ts[-1]
        reached = max(last.intermediate_values)
        assert sorted(last.intermediate_values) == list(range(1, reached + 1)), point
        assert all(t.state in (TrialState.PRUNED, TrialState.FAIL) for t in ts[:-1])
        if reached == rungs[-1]:
            assert last.state == TrialState.COMPLETE
        else:
            assert last.state == TrialState.PRUNED
            rung = last.user_attrs[TrialKey.RUNG]
            assert (rung["rung"], rung["epochs"]) == (rungs.index(reached) + 1, reached)
        # each trial trained only the epochs after the one it continued: none twice (a
        # trial killed as it started has none)
        ran = [t for t in ts if t.intermediate_values]
        starts = [t.user_attrs.get(TrialKey.RESUMED_FROM_EPOCH, 0) for t in ran]
        ends = [max(t.intermediate_values) for t in ran]
        assert starts == [0, *ends[:-1]], (point, starts, ends)
        trained += reached
    assert any(max(ts[-1].intermediate_values) == rungs[-1] for ts in by_point.values())
    if epochs is not None:
        assert trained == epochs
    return trials


def test_a_halving_grid_stops_losers_at_their_rung_and_continues_winners(tmp_path, tiny_npz):
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    run = _run(_halving_study(tmp_path, tiny_npz), url, tmp_path, workers=4)  # each once
    out, err = run.communicate(timeout=900)
    assert run.returncode == 0, err
    _check_halved(url)
    assert "promoted to 3 epochs (rung 2 of 3), continues from epoch 1" in err
    assert "rests at rung 1 of 3 (1 epoch); the best of each rung are promoted" in err
    assert re.search(r"\d+ promoted, \d+ stopped at a lower rung, 0 failed", out), out
    status = subprocess.run([sys.executable, "-m", "sweep.cli", "status", "tiny", "--storage",
                             url], cwd=tmp_path, text=True, capture_output=True, timeout=300)
    assert re.search(r"rungs reached \(halving\): 1 epoch \d+, 3 epochs \d+, 9 epochs [1-9]",
                     status.stdout), status.stdout
    assert "12 to train; rungs at 1, 3, 9 epochs reached by 0, 0, 0 points" in err
    # the answer compares every point at the first rung, where nothing was chosen yet
    summary = subprocess.run([sys.executable, "-m", "sweep.cli", "summary", "tiny",
                              "--storage", url], cwd=tmp_path, text=True, capture_output=True,
                             timeout=300)
    assert re.match(r"tiny: 12 point\(s\) compared at rung 1 of 3 \(1 epoch\), the highest "
                    r"rung all reached, .*; successive halving promoted \d+ to 3 and \d+ to 9: "
                    r"\d+ epochs trained", summary.stdout), summary.stdout
    assert "no verdict" not in summary.stdout
    report = re.search(r"report: (\S+\.html)", out)
    assert report, out
    assert "Successive halving: each point" in (tmp_path / report.group(1)).read_text()
    assert "Traceback" not in err


def test_a_run_killed_mid_promotion_goes_on_from_the_checkpoint_next_time(tmp_path, tiny_npz):
    study, url = _halving_study(tmp_path, tiny_npz), f"sqlite:///{tmp_path / 'sweeps.db'}"
    run = _run(study, url, tmp_path, start_new_session=True)
    engine, deadline = sa.create_engine(url), time.monotonic() + 600
    try:
        while time.monotonic() < deadline:  # a promotion to rung 2 has trained its epoch 2
            assert run.poll() is None, run.communicate()
            try:
                with engine.connect() as conn:
                    if conn.exec_driver_sql(
                            "SELECT count(*) FROM sweep_claims c JOIN sweep_epochs e ON "
                            "e.trial_number = c.trial_number WHERE c.state = 'running' AND "
                            "c.rung = 3 AND e.epoch = 2").scalar():
                        break
            except sa.exc.OperationalError:
                pass  # the tables are not there yet
            time.sleep(0.05)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the run and its workers, mid-rung
        run.communicate()
        engine.dispose()
    again = _run(study, url, tmp_path)
    _, err = again.communicate(timeout=900)
    assert again.returncode == 0, err
    _check_halved(url)
    assert "resumes after epoch 2 (from its checkpoint)" in err, err
    assert re.search(r"rungs at 1, 3, 9 epochs reached by [1-9]\d*, \d+, 0 points", err), err


def test_two_runs_on_one_postgresql_database_promote_each_point_once(tmp_path, tiny_npz,
                                                                     postgres):
    from conftest import PG_PASSWORD

    study = _halving_study(tmp_path, tiny_npz, name="halving-pg")
    env = os.environ | {"PGPASSWORD": PG_PASSWORD}
    runs = [_run(study, postgres, tmp_path, env=env) for _ in range(2)]  # 4 workers in all
    for run in runs:
        _, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
    _check_halved(postgres.replace("sweep@", f"sweep:{PG_PASSWORD}@"), "halving-pg")


@pytest.mark.parametrize(("search", "message"), [
    ({"pruner": "median"}, "search.pruner: a schedule stops points itself"),
    ({"schedule": {"kind": "halving", "min_epochs": 9}},
     "search.schedule.min_epochs: expected fewer than training.epochs (9), got 9"),
    ({"schedule": {"kind": "thirds"}}, "search.schedule.kind: expected one of halving"),
    ({"schedule": {"kind": "halving", "factor": 1}},
     "search.schedule.factor: expected an integer >= 2"),
])
def test_what_a_schedule_cannot_halve_is_one_line(tmp_path, tiny_npz, capsys, search,
                                                   message):
    study = _halving_study(tmp_path, tiny_npz, **search)
    assert main(["run", str(study), "--storage", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.db").exists()


def test_a_halving_study_grows_values_into_its_first_rung_and_epochs_into_a_new_top(
        tmp_path, tiny_npz, capsys):
    raw = tiny_study(tiny_npz)
    raw["training"] |= {"epochs": 2, "snapshots": None}
    raw["search"]["schedule"] = {"kind": "halving", "min_epochs": 1, "factor": 2}
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", url]) == 0
    first = _check_halved(url, points=2, rungs=(1, 2), epochs=1 + 2)
    top = next(t for t in first if t.state == TrialState.COMPLETE)
    capsys.readouterr()
    changed = raw | {"search": raw["search"] | {"schedule": None}}
    assert main(["run", str(write_study(tmp_path, changed)), "--storage", url]) == 2
    err = capsys.readouterr().err
    assert "search.schedule: study 'tiny'" in err and err.count("\n") == 1, err
    # a new value (2 new points: the first rung) and a new top rung (3 epochs)
    grown = raw | {"training": raw["training"] | {"epochs": 3}, "search": raw["search"] | {
        "params": {"model.pooling": ["max", "avg"], "training.learning_rate": [0.01, 0.03]}}}
    assert main(["run", str(write_study(tmp_path, grown)), "--storage", url]) == 0
    out = capsys.readouterr().out
    trials = _check_halved(url, points=4, rungs=(1, 2, 3), epochs=1 + 1 + 2 + 3,
                           before={"training.learning_rate": 0.01})
    # the old top rests at rung 2 of 3 now, PRUNED there unless promoted from it
    assert trials[top.number].state == TrialState.PRUNED
    assert trials[top.number].user_attrs[TrialKey.RUNG] == {"rung": 2, "of": 3, "epochs": 2}
    assert any(t.user_attrs.get(TrialKey.RESUMED_FROM_EPOCH) == 2 for t in trials)
    assert "4 points" in out
    # 3 epochs is not a rung of 4 epochs' ladder (1, 2, 4): its points could not rest there
    more = grown | {"training": grown["training"] | {"epochs": 4}}
    assert main(["run", str(write_study(tmp_path, more)), "--storage", url]) == 2
    err = capsys.readouterr().err
    assert ("a halving study grows only from epochs that are a rung of its new ladder "
            "(min_epochs * factor**k: 1, 2, 4, ...)") in err and err.count("\n") == 1, err
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == len(trials)


def test_a_random_search_promotes_its_draws_with_the_values_they_were_drawn_with(tmp_path,
                                                                                 tiny_npz):
    raw = tiny_study(tiny_npz)
    raw["training"] |= {"epochs": 3, "snapshots": None}
    raw["search"] = {"sampler": "random", "n_trials": 6,
                     "params": {"model.pooling": ["max", "avg"],
                                "training.learning_rate": {"low": 1e-3, "high": 0.1,
                                                           "log": True}},
                     "schedule": {"kind": "halving", "min_epochs": 1, "factor": 3}}
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", url,
                 "--workers", "1"]) == 0
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    promoted = [t for t in trials if TrialKey.CONTINUED_FROM_TRIAL in t.user_attrs]
    assert promoted and len(trials) == 6 + len(promoted)
    for t in promoted:
        earlier = trials[t.user_attrs[TrialKey.CONTINUED_FROM_TRIAL]]
        assert t.params == earlier.params and earlier.state == TrialState.PRUNED
        assert sorted(t.intermediate_values) == [1, 2, 3] and t.state == TrialState.COMPLETE


def test_a_points_seeds_are_promoted_together(tmp_path, tiny_npz):
    raw = tiny_study(tiny_npz)
    raw["training"] |= {"epochs": 3, "snapshots": None}
    raw["search"] = {"sampler": "grid", "repeats": 2,
                     "params": {"training.learning_rate": [0.03, 0.01, 0.003]},
                     "schedule": {"kind": "halving", "min_epochs": 1, "factor": 3}}
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", url]) == 0
    trials = _check_halved(url, points=6, rungs=(1, 3), epochs=4 * 1 + 2 * 3)
    reached = defaultdict(set)  # each point's rungs reached by its seeds
    for t in trials:
        reached[t.params["training.learning_rate"]].add(max(t.intermediate_values))
    # the seeds of a point stop at the same rung: one point (both seeds) went on to 3
    promoted = [rate for rate, epochs in reached.items() if 3 in epochs]
    assert len(promoted) == 1 and all(reached[rate] == {1} for rate in reached
                                      if rate not in promoted), reached
