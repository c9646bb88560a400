"""Which Keras backend a run trains with, known in the parent before any worker starts and
without importing Keras (a second or more): ``KERAS_BACKEND``, else the backend in Keras'
config file (``$KERAS_HOME/keras.json``, default ``~/.keras``), else TensorFlow, as Keras
itself decides. A backend that is not installed is one line saying what to install, instead
of a traceback from every worker.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from sweep.errors import UsageError

# backend -> (the module it imports, what to install: the versions the project tests)
BACKENDS = {
    "tensorflow": ("tensorflow", "pip install 'tensorflow>=2.16' (make install does)"),
    "jax": ("jax", "pip install 'jax[cpu]==0.10.2' (on an NVIDIA GPU: 'jax[cuda12]==0.10.2')"),
    "torch": ("torch", "pip install torch==2.13.0"),
}
# From `make bench-fused` (docs/benchmark.md, "Fused trials on this CPU"): 4 models fused took
# 21.2 s an epoch against 9.9 s one by one on a 2-core CPU.
FUSED_ON_A_CPU = "about 2x slower than one point at a time there (make bench-fused)"


def keras_backend() -> str:
    """The backend Keras will load in this environment."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        return json.loads((home / "keras.json").read_text()).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def check_backend() -> str:
    """The Keras backend, checked to be one sweep trains with and to be installed.

    Raises:
        UsageError: an unknown backend, or one whose package is missing.
    """
    if "keras" in sys.modules:  # loaded already in this process: its backend is there
        return sys.modules["keras"].backend.backend()
    backend = keras_backend()
    if backend not in BACKENDS:
        raise UsageError(f"KERAS_BACKEND={backend}: sweep trains with "
                         f"{', '.join(BACKENDS)}; set one of them")
    module, install = BACKENDS[backend]
    if importlib.util.find_spec(module) is None:
        raise UsageError(f"KERAS_BACKEND={backend}: {module} is not installed here; {install}")
    return backend
