"""Where a result came from: the resolved study, package and framework versions, the device
(as nanoGPT saves its config in every checkpoint)."""

from __future__ import annotations

import platform

import keras
import numpy as np
import optuna

from sweep.study import StudySpec
from sweep.training.device import device_description


def provenance(spec: StudySpec) -> dict:
    """Where a result came from: the resolved study, versions, device."""
    import sklearn

    return {
        "study": spec.as_dict(),
        "source": spec.source,
        "versions": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "optuna": optuna.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        }
        | _backend_version(),
        "device": device_description(),
        "host": platform.node(),
    }


def _backend_version() -> dict:
    name = keras.backend.backend()
    return {name: getattr(__import__(name), "__version__", "unknown")}
