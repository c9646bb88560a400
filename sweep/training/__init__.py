"""Stage 4, training: fit one Keras model on a Dataset, with snapshot diagnostics and
checkpoints. Knows Keras and numpy; never Optuna or a study file.

The names below load their module (and Keras) on first use.
"""

from sweep._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "SnapshotProbe": "sweep.training.probe",
    "TrainResult": "sweep.training.fit",
    "train": "sweep.training.fit",
    "learning_rate_at": "sweep.training.fit",
    "checkpoint_file": "sweep.training.checkpoints",
    "load_checkpoint": "sweep.training.checkpoints",
    "remove_checkpoint": "sweep.training.checkpoints",
    "device_description": "sweep.training.device",
    "out_of_memory": "sweep.training.device",
})
