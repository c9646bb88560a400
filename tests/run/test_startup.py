"""A worker that stays quiet as it starts is said, with what it is doing (issue 33, item 7:
a worker hung at start-up left the run silent for 90 s)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import optuna
import pytest

from sweep.run import startup

from conftest import tiny_study, write_study


def _look_until(watch: startup.StartupWatch, seconds: float) -> list[str]:
    said, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        said += [line for _, line in watch.overdue()]
        time.sleep(0.05)
    return said


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc here")
def test_a_waiting_worker_is_said_at_once_a_busy_one_only_later(monkeypatch):
    monkeypatch.setattr(startup, "QUIET_S", 0.5)
    monkeypatch.setattr(startup, "BUSY_S", 2.0)
    waiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        watch = startup.StartupWatch()
        watch.started(0, waiting.pid)
        watch.started(1, busy.pid)
        said = _look_until(watch, 0.9)
        assert len(said) == 1, said  # the waiting one, at 0.5 s
        assert said[0].startswith(f"(pid {waiting.pid}) still starting after ")
        assert "s; using almost no CPU (0.0 s in all" in said[0]
        assert "waiting in the kernel's hrtimer_nanosleep" in said[0]
        assert f"py-spy dump --pid {waiting.pid}" in said[0]
        watch.done(0)
        said = _look_until(watch, 1.6)  # to 2.5 s: the busy one, at 2 s, once
        assert len(said) == 1 and said[0].startswith(f"(pid {busy.pid}) still starting after "
                                                     "2 s; busy ("), said
        watch.done(1)
        assert _look_until(watch, 2.0) == []  # done: never said again
    finally:
        waiting.kill()
        busy.kill()


@pytest.mark.slow
def test_a_worker_hung_at_start_up_is_said_and_the_run_goes_on(tmp_path, tiny_npz, db_url):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(  # workers (given $SWEEP_STORAGE) hang a while
        "import os, time\n"
        "if os.environ.get('SWEEP_STORAGE'):\n"
        "    time.sleep(startup_s)\n".replace("startup_s", str(startup.QUIET_S + 4)))
    study = write_study(tmp_path, tiny_study(tiny_npz))
    env = {k: v for k, v in os.environ.items() if k != "SWEEP_STORAGE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "sweep.cli", "run", str(study), "--storage",
                           db_url, "--workers", "2"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for worker in (0, 1):
        assert f"[tiny] worker {worker}: (pid " in output, output
    assert "still starting after 30 s; using almost no CPU" in output, output
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
