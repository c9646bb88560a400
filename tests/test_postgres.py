"""PostgreSQL as the shared storage: a real throwaway server, 4 worker processes, one grid."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import optuna
import pytest

from conftest import tiny_study, write_study

pytestmark = pytest.mark.slow
PASSWORD = "pg-secret-7f3a"  # must never appear in any output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of Debian's packages (the Makefile installs them), run as the
    postgres user when we are root, on a free loopback port, with password authentication.
    Its folder is outside pytest's (root-only) temporary tree so that user can enter it."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries missing: `make test` installs them")
    bin_dir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="sweep-pg-"))
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(root, "postgres")
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    if as_pg:
        shutil.chown(pwfile, "postgres")
    data, port = root / "data", _free_port()
    subprocess.run([*as_pg, bin_dir / "initdb", "-D", data, "-U", "sweep", "--pwfile", pwfile,
                    "--auth=scram-sha-256"], check=True, capture_output=True)
    subprocess.run([*as_pg, bin_dir / "pg_ctl", "-D", data, "-w", "-l", root / "log", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    env = os.environ | {"PGPASSWORD": PASSWORD}
    subprocess.run([bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "sweep",
                    "sweeps"], check=True, env=env, capture_output=True)
    yield f"postgresql+psycopg://sweep@127.0.0.1:{port}/sweeps"
    subprocess.run([*as_pg, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
                   capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def test_four_workers_on_postgres_cover_the_grid_once(tmp_path, tiny_npz, postgres,
                                                      monkeypatch):
    # Credentials come from the environment (libpq's PGPASSWORD), not the URL.
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
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
    assert PASSWORD not in output
    trials = optuna.load_study(study_name="tiny", storage=postgres).trials
    assert len(trials) == 8
    assert len(Counter(json.dumps(t.params, sort_keys=True) for t in trials)) == 8
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_wrong_password_is_one_line_without_the_secret(tmp_path, postgres):
    url = postgres.replace("sweep@", f"sweep:{PASSWORD}x@")
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "status", "tiny", "--storage", url],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PGPASSWORD"},
    )
    assert proc.returncode == 2
    assert "cannot open" in proc.stderr and "***" in proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout
