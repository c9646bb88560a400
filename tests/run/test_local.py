"""Local worker processes: exact grid coverage under contention, a worker killed mid-trial."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from sweep.report import study_status
from sweep.run.devices import worker_env
from sweep.store import claims, epochs_frame, open_storage
from sweep.store.tables import CLAIMS
from sweep.training.backend import keras_backend
from sweep.training.checkpoints import checkpoint_file

from conftest import tiny_study, write_study

pytestmark = pytest.mark.slow


def _sweep(*args, cwd, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweep.cli", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def _running(store) -> list:
    """The running claims of study tiny, none before a worker created it."""
    try:
        return claims.running(store.engine, store.get_study_id_from_name("tiny"))
    except KeyError:
        return []


def test_worker_env_pins_gpus_or_splits_cores():
    assert worker_env(5, 8, ["0", "1"], 4, 16)["CUDA_VISIBLE_DEVICES"] == "1"
    assert worker_env(5, 8, ["0", "1"], 4, 16)["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.225"
    cpu = worker_env(0, 4, [], 1, 16)
    assert cpu["CUDA_VISIBLE_DEVICES"] == "" and cpu["TF_NUM_INTRAOP_THREADS"] == "4"
    assert "SWEEP_TRAINING_NICE" not in cpu  # a core each: nothing waits


def test_more_workers_than_cores_train_behind_their_bookkeeping(monkeypatch):
    monkeypatch.delenv("SWEEP_TRAINING_NICE", raising=False)
    assert worker_env(0, 8, [], 1, 2)["SWEEP_TRAINING_NICE"] == "10"
    monkeypatch.setenv("SWEEP_TRAINING_NICE", "0")  # the user's own choice, kept
    assert "SWEEP_TRAINING_NICE" not in worker_env(0, 8, [], 1, 2)


def test_eight_workers_cover_a_sixteen_point_grid_exactly_once(tmp_path, tiny_npz, db_url):
    raw = tiny_study(tiny_npz, search={"params": {
        "model.pooling": ["max", "avg"], "model.kernel": [2, 3],
        "training.batch_size": [8, 16], "model.dense": [[4], [8]],
    }})
    raw["training"] = {"epochs": 1, "batch_size": 16}
    path = write_study(tmp_path, raw)
    proc = _sweep("run", str(path), "--storage", db_url, "--workers", "8", cwd=tmp_path)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert "locked" not in output and "Traceback" not in output
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    points = Counter(json.dumps(t.params, sort_keys=True) for t in trials)
    assert len(trials) == 16 and len(points) == 16
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert "[tiny] report: reports/tiny.html" in output


def test_killed_worker_is_replaced_and_its_point_resumes_from_checkpoint(
    tmp_path, tiny_npz, db_url
):
    raw = tiny_study(tiny_npz)  # 2 points
    raw["training"] = {**raw["training"], "epochs": 40, "snapshots": [10, 40]}
    path = write_study(tmp_path, raw)
    proc = _sweep("run", str(path), "--storage", db_url, "--workers", "2",
                  "--checkpoint-every", "0", cwd=tmp_path)
    store = open_storage(db_url)
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.2)
        for row in _running(store):
            saved = checkpoint_file(tmp_path / "checkpoints" / "tiny", row.point)
            rows = saved.with_suffix(".json")
            if row.trial_number is not None and rows.is_file() and len(json.loads(
                    rows.read_text())) >= 3:
                victim = row
                break
    assert victim is not None, "no checkpoint appeared"
    assert f"worker {victim.worker}: trial" in study_status("tiny", db_url)
    os.kill(int(victim.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert "exited with -9; its point runs again from its checkpoint" in output

    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["model.pooling"] for t in complete) == ["avg", "max"]
    (dead,) = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert dead.user_attrs["died"] == "worker process exited with -9"
    (resumed,) = [t for t in complete if t.params == dead.params]
    assert resumed.user_attrs["resumed_from_epoch"] >= 3
    epochs = epochs_frame(store, store.get_study_id_from_name("tiny"))
    assert epochs[epochs.trial_number == resumed.number].epoch.tolist() == list(range(1, 41))
    assert not list((tmp_path / "checkpoints" / "tiny").glob("*.keras"))  # cleaned up


def test_ctrl_c_stops_every_worker_and_gives_the_points_back(tmp_path, tiny_npz, db_url):
    raw = tiny_study(tiny_npz)
    raw["training"] = {**raw["training"], "epochs": 400, "snapshots": [400]}
    path = write_study(tmp_path, raw)
    proc = _sweep("run", str(path), "--storage", db_url, "--workers", "2", cwd=tmp_path)
    store = open_storage(db_url)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.2)
        rows = _running(store)
        if len(rows) == 2 and all(r.trial_number is not None for r in rows):
            break
    proc.send_signal(signal.SIGINT)  # to the parent only: it passes the stop on
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    # before: once per worker and once by the parent
    assert output.count("interrupted; run the same command again to continue") == 1
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert len(trials) == 2
    assert all(t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("interrupted")
               for t in trials)
    assert _running(store) == []


def _worker_command_lines() -> list[str]:
    """The command lines of the `sweep worker` processes running now, as `ps` shows them."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if b"sweep.cli" in words and b"worker" in words:
            lines.append(b" ".join(words).decode())
    return lines


def test_local_workers_get_the_storage_password_outside_their_command_line(
        tmp_path, tiny_npz, postgres):
    # before: every child had `--storage postgresql://user:PASSWORD@...` in its argv
    from conftest import PG_PASSWORD

    url = postgres.replace("sweep@", f"sweep:{PG_PASSWORD}@")
    path = write_study(tmp_path, tiny_study(tiny_npz, name="password_check"))
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    proc = _sweep("run", str(path), "--storage", url, "--workers", "2", cwd=tmp_path, env=env)
    seen = set()
    while proc.poll() is None:
        seen.update(_worker_command_lines())
        time.sleep(0.05)
    out = proc.stdout.read()
    assert proc.returncode == 0, out
    assert seen, "no worker process was seen"
    assert not [line for line in seen if PG_PASSWORD in line]
    assert PG_PASSWORD not in out
    trials = optuna.load_study(study_name="password_check", storage=url).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]


BANNERS = ("oneDNN", "absl::InitializeLog", "cuda drivers", "cpu_feature_guard",
           "A new study created")


def test_two_workers_print_one_console(tmp_path, tiny_npz, db_url):
    # before: two trials both printed `trial 1/4`, `4/4` never came, a summary per worker
    # (each counting half), TensorFlow's banners once per process, `#0` beside `trial 0`
    raw = tiny_study(tiny_npz, search={"params": {"model.pooling": ["max", "avg"],
                                                  "model.kernel": [2, 3]}})
    path = write_study(tmp_path, raw)
    proc = _sweep("run", str(path), "--storage", db_url, "--workers", "2", cwd=tmp_path)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    lines = output.splitlines()
    # the header names the database (issue 27: a run from another folder made a new one)
    database = db_url.removeprefix("sqlite:///")
    assert lines[0] == f"[tiny] 4 points in {database}: 0 already done, 4 to train; " \
                       f"2 workers on {os.cpu_count()} CPU cores; Keras on {keras_backend()}"
    assert not [line for line in lines if any(b in line for b in BANNERS)]
    study = optuna.load_study(study_name="tiny", storage=db_url)
    trials = {t.number: t for t in study.trials}
    places = {}
    for line in lines:
        found = re.match(
            r"\[tiny\] trial (\d+) \((\d) of 4\) pooling=(\w+) kernel=(\d) epoch", line
        )
        if found:
            number, place, pooling, kernel = found.groups()
            params = trials[int(number)].params  # Optuna's number, the dashboard's
            assert (params["model.pooling"], params["model.kernel"]) == (pooling, int(kernel))
            assert places.setdefault(int(number), int(place)) == int(place)
    assert sorted(places) == sorted(trials) and sorted(places.values()) == [1, 2, 3, 4]
    summaries = [line for line in lines if " points: " in line and "run now" in line]
    assert summaries == [f"[tiny] 4 points: 4 run now (0 failed), 0 already done; best "
                         f"val_accuracy {study.best_value:.4f} (trial {study.best_trial.number})"]


def _on_a_terminal(args: list[str], cwd) -> tuple[int, str]:
    """Run ``sweep ARGS`` with a pseudo-terminal as its stdin, stdout and stderr."""
    parent, child = pty.openpty()
    env = os.environ | {"TERM": "xterm", "COLUMNS": "160"}
    proc = subprocess.Popen([sys.executable, "-m", "sweep.cli", *args], cwd=cwd, env=env,
                            stdin=child, stdout=child, stderr=child)
    os.close(child)
    seen = b""
    while True:
        ready, _, _ = select.select([parent], [], [], 1.0)
        try:
            data = os.read(parent, 65536) if ready else b""
        except OSError:  # the terminal's other end closed
            break
        if ready and not data:
            break
        seen += data
        if not ready and proc.poll() is not None:
            break
    os.close(parent)
    return proc.wait(timeout=60), seen.decode(errors="replace")


def test_a_terminal_gets_a_live_view(tmp_path, tiny_npz, db_url):
    path = write_study(tmp_path, tiny_study(tiny_npz))  # 2 points
    code, screen = _on_a_terminal(["run", str(path), "--storage", db_url, "--workers", "2"],
                                  tmp_path)
    assert code == 0, screen
    assert "\x1b[2K" in screen and "\x1b[1A" in screen  # drawn in place, line over line
    assert "of 2 trials done" in screen and "elapsed" in screen and " left" in screen
    assert re.search(r"  trial \d \([12] of 2\) pooling=(max|avg) .*epoch [012]/2", screen)
    ended = re.findall(r"\[tiny\] trial \d \(([12]) of 2\) pooling=\w+: complete, "
                       r"val_accuracy [\d.]+", screen)
    assert sorted(ended) == ["1", "2"]
    assert not [b for b in BANNERS if b in screen]
    assert screen.count("[tiny] 2 points: 2 run now (0 failed), 0 already done") == 1


def test_auto_is_one_worker_per_core_or_k_per_gpu_and_never_more_than_the_points_left():
    from sweep.run.devices import cpu_cores, resolve_devices

    cores = cpu_cores()
    assert resolve_devices("auto", None, 1, 100) == (cores, [])  # no nvidia-smi here
    assert resolve_devices("auto", None, 1, 1) == (1, [])
    assert resolve_devices("auto", "0,1", 3, 100) == (6, ["0", "1"])
    assert resolve_devices("auto", "0,1", 3, 4) == (4, ["0", "1"])
    assert resolve_devices(3, None, 1, 1) == (3, [])  # a number is what it says
    assert resolve_devices(3, None, 1, 0) == (1, [])  # ... but nothing left starts no worker


def _claimed_by(db_url: str) -> set[str]:
    store = open_storage(db_url)
    study_id = store.get_study_id_from_name("tiny")
    with store.engine.connect() as conn:
        return {row.worker for row in conn.execute(
            CLAIMS.select().where(CLAIMS.c.study_id == study_id))}


def test_the_default_runs_one_worker_per_core_and_a_last_point_in_this_process(
        tmp_path, tiny_npz, db_url):
    from sweep.run.devices import cpu_cores

    env = {k: v for k, v in os.environ.items() if k != "SWEEP_WORKERS"}  # the user's default
    raw = tiny_study(tiny_npz, search={"params": {"model.pooling": ["max", "avg", "none"]}})
    raw["training"] = {"epochs": 1, "batch_size": 16}
    proc = _sweep("run", str(write_study(tmp_path, raw)), "--storage", db_url, cwd=tmp_path,
                  env=env)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    workers = min(cpu_cores(), 3)
    first = _claimed_by(db_url)
    assert len(first) == workers
    if workers > 1:
        assert f"{workers} workers on {cpu_cores()} CPU cores" in output
        assert f"{proc.pid}" not in {w.rsplit(":", 1)[1] for w in first}
    # a new value: one point left, trained by `sweep run` itself, with every thread
    raw["search"]["params"] = {"model.pooling": ["max"], "model.kernel": [3, 2]}
    again = _sweep("run", str(write_study(tmp_path, raw)), "--storage", db_url, cwd=tmp_path,
                   env=env)
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output
    assert _claimed_by(db_url) - first == {f"{socket.gethostname()}:{again.pid}"}
