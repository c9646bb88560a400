"""The command line as a user first meets it: --help, --version, and the README's table."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from sweep.cli import _parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _sweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweep.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_help_says_what_sweep_is_for():
    # before: the module docstring, "Thin: parse arguments, call the stages, ..."
    out = _sweep("--help").stdout
    assert "Thin" not in out and "parse arguments" not in out
    assert "Hyperparameter sweeps for small Keras image classifiers" in out
    assert "sweep run quickstart" in out


def test_version_names_sweep_and_its_frameworks():
    proc = _sweep("--version")
    assert proc.returncode == 0
    line = proc.stdout.strip()
    for name, dist in (("sweep", "sweep"), ("Keras", "keras"), ("TensorFlow", "tensorflow"),
                       ("Optuna", "optuna")):
        assert f"{name} {metadata.version(dist)}" in line
    assert "\n" not in line


def test_submit_usage_shows_what_each_scheduler_requires():
    # before: `--time` showed as optional although Slurm refuses a submission without it
    out = _sweep("submit", "--help").stdout
    usage = out[: out.index("\n\n")]
    assert "--scheduler slurm --time HH:MM:SS" in usage
    assert "--scheduler kubernetes" in usage
    assert "slurm (--time is required)" in out


def _commands() -> dict:
    """The subcommands' parsers by name."""
    return next(a for a in _parser()._actions
                if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("name", sorted(_commands()))
def test_readme_table_lists_every_option_of_every_command(name):
    # before: the rows of status, report and export left out --storage
    options = {o for action in _commands()[name]._actions for o in action.option_strings
               if o.startswith("--") and o != "--help"}
    rows = [line for line in README.splitlines() if line.startswith(f"| `sweep {name} ")]
    assert rows, f"no README row for sweep {name}"
    documented = set(re.findall(r"--[a-z-]+", README))
    assert options <= documented, sorted(options - documented)
    if "--storage" in options and name in ("status", "report", "export"):
        assert "--storage URL" in rows[0]


def test_a_stored_study_named_like_a_path_writes_only_in_the_working_folder(tmp_path,
                                                                            monkeypatch):
    # a study made with stock Optuna may be called '../../x': reports, exports and a
    # comparison default to one safe file name each, inside the working folder
    import optuna

    from sweep.cli import main

    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    url = f"sqlite:///{work / 'sweeps.db'}"
    names = ["../../escape", str(tmp_path / "absolute")]
    for name in names:
        study = optuna.create_study(study_name=name, storage=url)
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    for argv in (["report", names[0]], ["export", names[0]], ["report", names[1]],
                 ["report", *names]):
        assert main([*argv, "--storage", url]) == 0, argv
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert all(p.startswith("a/b/") for p in written), written
    assert "a/b/reports/_.._.._escape.html" in written and "a/b/_.._.._escape.csv" in written


def test_the_process_exits_once_its_command_returns_without_waiting_on_teardown(tmp_path):
    # CI, issue 37: a worker whose storage was lost said its error line, then waited ~20 s in
    # TensorFlow's teardown (freeing the input pipeline of the fit the error interrupted);
    # here an object whose finalizer takes 60 s stands for it
    done = tmp_path / "thread-finished"
    script = f"""
import atexit, sys, threading, time
from sweep import cli
class FreedSlowly:
    def __del__(self, sleep=time.sleep):
        sleep(60)
held = FreedSlowly()
atexit.register(print, "exit handler ran", flush=True)
def work():
    time.sleep(1)
    open({str(done)!r}, "w").close()
threading.Thread(target=work).start()  # not a daemon: the process waits for it
sys.argv = ["sweep", "run", {str(tmp_path / "missing.yaml")!r}]
cli.entry()
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=40, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "sweep: error:" in proc.stderr and "missing.yaml" in proc.stderr
    assert "exit handler ran" in proc.stdout and done.exists()


def test_a_reader_of_the_output_gone_is_no_traceback(tmp_path):
    # `sweep describe ... | head -1`: the command's print finds the pipe closed; the reader's
    # choice, not sweep's error (a traceback before); exit 1 as a process killed by SIGPIPE
    # exits non-zero
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    with os.fdopen(write, "w") as closed:
        proc = subprocess.run([sys.executable, "-m", "sweep.cli", "describe", "quickstart"],
                              stdout=closed, stderr=subprocess.PIPE, text=True, timeout=120,
                              cwd=Path(__file__).resolve().parents[1])
    assert proc.stderr == "" and proc.returncode == 1, proc.stderr
