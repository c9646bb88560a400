"""`sweep submit`, scheduler-independent: option checks, the password kept apart, files
written, and the CLI's one-line errors."""

from __future__ import annotations

import os
import stat

import pytest

from sweep.cli import main
from sweep.errors import UsageError
from sweep.launch.submit import check_schedule, parse_time, write_files

from conftest import SUBMIT_PASSWORD, SUBMIT_URL, tiny_study, write_study


@pytest.mark.parametrize("text, seconds", [
    ("02:00:00", 7200), ("1-00:00:01", 86401), ("100:30:00", 361800), (" 0:00:05 ", 5),
])
def test_time_is_read_as_seconds(text, seconds):
    assert parse_time(text, required=True) == seconds


@pytest.mark.parametrize("text", ["1:2", "00:60:00", "2h", "00:00:00", "1-2", "-1:00:00"])
def test_bad_time_is_a_usage_error(text):
    with pytest.raises(UsageError, match="--time"):
        parse_time(text, required=True)


def test_time_may_be_left_out_only_where_not_required():
    assert parse_time(None, required=False) is None
    with pytest.raises(UsageError, match="required"):
        parse_time(None, required=True)


def test_schedule_is_five_cron_fields_or_a_macro():
    assert check_schedule("  0  2 * * 1-5 ") == "0 2 * * 1-5"
    assert check_schedule("*/15 * * * *") == "*/15 * * * *"
    assert check_schedule("@daily") == "@daily"
    for bad in ("0 2 * *", "0 2 * * * rm", "0 2 * * ;", "0 2 * * *\nrm -rf /", "@often"):
        with pytest.raises(UsageError, match="--schedule"):
            check_schedule(bad)


def test_password_is_kept_apart_from_the_url(cluster_job):
    job = cluster_job()
    assert job.storage == "postgresql+psycopg://sweep@db.example:5432/sweeps"
    assert job.password == SUBMIT_PASSWORD
    assert SUBMIT_PASSWORD not in repr(job)


def test_password_may_come_from_the_environment(cluster_job, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "from-env")
    job = cluster_job(storage_url="postgresql+psycopg://sweep@db:5432/sweeps")
    assert job.password == "from-env" and "from-env" not in job.storage


@pytest.mark.parametrize("options, message", [
    ({"scheduler": "pbs"}, "unknown scheduler; expected one of slurm, kubernetes"),
    ({"workers": 0}, "--workers must be at least 1"),
    ({"gpus_per_worker": -1}, "--gpus-per-worker at least 0"),
    ({"partition": "gpu\n#SBATCH --x"}, "--partition"),
    ({"account": "a b"}, "--account"),
])
def test_bad_options_are_usage_errors(cluster_job, options, message):
    with pytest.raises(UsageError, match=message.replace("-", r"\-")):
        cluster_job(**options)


def test_secrets_are_written_for_their_owner_only(tmp_path):
    old = tmp_path / "storage.env"
    old.write_text("stale")
    old.chmod(0o644)
    paths = write_files(tmp_path, {"a.txt": "a\n"}, {"storage.env": "PGPASSWORD=x\n"})
    assert paths["a.txt"].read_text() == "a\n"
    assert paths["storage.env"].read_text() == "PGPASSWORD=x\n"
    assert stat.S_IMODE(os.stat(paths["storage.env"]).st_mode) == 0o600


def _submit(capsys, *args):
    code = main(["submit", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def study_file(tmp_path, tiny_npz, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    return str(write_study(tmp_path, tiny_study(tiny_npz)))


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "pbs"], "--scheduler 'pbs': unknown scheduler"),
    (["--scheduler", "slurm", "--time", "90"], "--time '90': expected HH:MM:SS"),
    (["--scheduler", "slurm", "--time", "1:00:00", "--workers", "2",
      "--storage", "sqlite:///sweeps.db"], "a SQLite file shared over a network filesystem"),
    (["--scheduler", "kubernetes", "--storage", "sqlite:///sweeps.db"], "use PostgreSQL"),
    (["--scheduler", "slurm", "--time", "1:00:00", "--set", "model.kernal=3"],
     "model.kernal: unknown key"),
])
def test_cli_errors_are_one_line(capsys, study_file, tmp_path, args, message):
    code, out, err = _submit(capsys, study_file, "--storage", SUBMIT_URL, *args)
    assert code == 2 and out == ""
    assert err.startswith("sweep: error: ") and err.count("\n") == 1 and message in err
    assert SUBMIT_PASSWORD not in err
    assert not (tmp_path / "reports").exists()


def test_sqlite_refusal_says_how_to_use_postgresql(capsys, study_file):
    code, _, err = _submit(capsys, study_file, "--scheduler", "slurm", "--workers", "3",
                           "--time", "1:00:00", "--storage", "sqlite:///sweeps.db")
    assert code == 2
    assert "the 3 tasks of the array may run on different nodes" in err
    assert "--storage postgresql+psycopg://USER@HOST:5432/DB" in err and "PGPASSWORD" in err


def test_dry_run_prints_the_script_and_writes_nothing(capsys, study_file, tmp_path):
    code, out, err = _submit(capsys, study_file, "--scheduler", "slurm", "--workers", "2",
                             "--time", "00:30:00", "--storage", SUBMIT_URL, "--dry-run")
    assert code == 0, err
    assert "#SBATCH --array=0-1" in out and "storage.env" in out
    assert SUBMIT_PASSWORD not in out + err
    assert not (tmp_path / "reports").exists()


def test_missing_sbatch_is_one_line_and_the_script_is_kept(capsys, study_file, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no scheduler commands at all
    code, out, err = _submit(capsys, study_file, "--scheduler", "slurm", "--workers", "2",
                             "--time", "00:30:00", "--storage", SUBMIT_URL)
    assert code == 1
    warning, error = err.splitlines()  # the folders under /tmp: a warning, then the error
    assert warning.startswith("sweep: warning: working folder ")
    assert error == ("sweep: error: sbatch not found on PATH: run `sweep submit` on a Slurm "
                     "login node, or add --dry-run to print the script")
    assert (tmp_path / "reports" / "tiny" / "tiny.sbatch").is_file()
