"""PostgreSQL as the shared storage: a real throwaway server, 4 worker processes, one grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
import sqlalchemy as sa

from conftest import PG_PASSWORD, tiny_study, write_study

pytestmark = pytest.mark.slow


def test_four_workers_on_postgres_cover_the_grid_once(tmp_path, tiny_npz, postgres,
                                                      monkeypatch):
    # Credentials come from the environment (libpq's PGPASSWORD), not the URL.
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    raw = tiny_study(tiny_npz, search={"params": {
        "model.pooling": ["max", "avg"], "model.kernel": [2, 3], "training.batch_size": [8, 16],
    }})
    raw["training"] = {"epochs": 1, "batch_size": 16}
    path = write_study(tmp_path, raw)
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "run", str(path), "--storage", postgres,
         "--workers", "4"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert PG_PASSWORD not in output
    trials = optuna.load_study(study_name="tiny", storage=postgres).trials
    assert len(trials) == 8
    assert len(Counter(json.dumps(t.params, sort_keys=True) for t in trials)) == 8
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_wrong_password_is_one_line_without_the_secret(tmp_path, postgres):
    url = postgres.replace("sweep@", f"sweep:{PG_PASSWORD}x@")
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "status", "tiny", "--storage", url],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PGPASSWORD"},
    )
    assert proc.returncode == 2
    assert "cannot open" in proc.stderr and "***" in proc.stderr
    assert PG_PASSWORD not in proc.stderr + proc.stdout


def test_the_password_file_opens_the_server(tmp_path, postgres):
    # docker/compose.yaml's route: the URL and no PGPASSWORD in the environment, the
    # password in a secret file that $SWEEP_STORAGE_PASSWORD_FILE names.
    secret = tmp_path / "db_password"
    secret.write_text(PG_PASSWORD + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    status = [sys.executable, "-m", "sweep.cli", "status", "nosuch", "--storage", postgres]
    refused = subprocess.run(status, cwd=tmp_path, capture_output=True, text=True,
                             timeout=120, env=env)
    assert "cannot open" in refused.stderr  # no password: the server says no
    proc = subprocess.run(status, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=env | {"SWEEP_STORAGE_PASSWORD_FILE": str(secret)})
    assert proc.returncode == 2
    assert proc.stderr.startswith("sweep: error: no study named 'nosuch' in ")  # it got in
    assert PG_PASSWORD not in proc.stderr + proc.stdout


def test_workers_opening_an_empty_database_at_once_all_get_in(postgres, monkeypatch):
    # A job array's workers start together on an empty database and all create the tables.
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    engine = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE race")
    engine.dispose()
    url = postgres.rsplit("/", 1)[0] + "/race"
    opener = ("import sys, time; from sweep.store import open_storage; "
              "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); open_storage(sys.argv[1])")
    start_at = str(time.time() + 10)  # after every process has imported optuna
    procs = [subprocess.Popen([sys.executable, "-c", opener, url, start_at],
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
