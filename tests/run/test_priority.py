"""A worker's training threads behind its bookkeeping (sweep.run.priority), in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux nice")

TRAIN_THEN_LOWER = textwrap.dedent("""
    import json, os, threading
    import numpy as np
    import keras
    from sweep.run.priority import lower_native_threads

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((64, 8, 8, 1)), np.zeros((64, 2)), epochs=1, verbose=0)
    changed = lower_native_threads()
    python = {t.native_id for t in threading.enumerate()}
    nice = {}
    for tid in map(int, os.listdir("/proc/self/task")):
        with open(f"/proc/self/task/{tid}/comm") as f:
            nice[tid] = [f.read().strip(), os.getpriority(os.PRIO_PROCESS, tid), tid in python]
    print(json.dumps({"changed": changed, "threads": list(nice.values()),
                      "base": os.getpriority(os.PRIO_PROCESS, 0)}))
""")


def _threads(nice: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SWEEP_TRAINING_NICE"}
    env |= {"TF_CPP_MIN_LOG_LEVEL": "3"} | ({"SWEEP_TRAINING_NICE": nice} if nice else {})
    out = subprocess.run([sys.executable, "-c", TRAIN_THEN_LOWER], env=env, check=True,
                         capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_backends_threads_run_at_the_training_nice_and_python_threads_do_not():
    got = _threads("10")
    assert got["changed"] > 0
    native = [(name, nice) for name, nice, python in got["threads"] if not python]
    assert any(name.startswith("tf_Compute") for name, _ in native)  # TensorFlow's compute pool
    assert all(nice == max(10, got["base"]) for _, nice in native)
    assert all(nice == got["base"] for _, nice, python in got["threads"] if python)


def test_without_the_setting_nothing_changes():
    got = _threads(None)
    assert got["changed"] == 0 and all(nice == got["base"] for _, nice, _ in got["threads"])
