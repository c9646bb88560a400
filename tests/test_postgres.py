"""PostgreSQL as the shared storage: a real throwaway server, 4 worker processes, one grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import optuna
import pytest

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
