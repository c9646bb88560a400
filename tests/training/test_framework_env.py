"""A ``sweep`` process's framework settings (sweep.defaults.set_framework_env), as the
TensorFlow it then loads sees them: a real process each."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sweep.defaults import ONEDNN_ENV, X86_64

# What the `sweep` command does first, then what TensorFlow says of its oneDNN kernels.
ONEDNN_ON = """
from sweep import defaults
defaults.set_framework_env()
from tensorflow.python.util import _pywrap_util_port
print(_pywrap_util_port.IsMklEnabled())
"""


def _onednn(env: dict) -> str:
    done = subprocess.run([sys.executable, "-c", ONEDNN_ON], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not X86_64, reason="x86-64")
def test_onednn_kernels_on_by_default_and_a_users_value_wins():
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_ENV}
    assert _onednn(env) == "True"
    assert _onednn(env | {ONEDNN_ENV: "0"}) == "False"


def test_the_command_sets_them_before_anything_loads(monkeypatch, capsys):
    from sweep.cli import main

    monkeypatch.delenv(ONEDNN_ENV, raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "sweep" in capsys.readouterr().out
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"  # the user's own
    assert os.environ.get(ONEDNN_ENV) == ("1" if X86_64 else None)
