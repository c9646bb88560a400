"""The one module that knows both Optuna and Keras: one trial, from its values to its result.

``run_trial`` takes an Optuna trial and the point of the space to train; it builds the model
from the plain config, trains it, and writes what it learns onto the trial (per-epoch values,
snapshot results, provenance). It works with any trial, including ``optuna.trial.FixedTrial``.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import optuna

from sweep import space
from sweep.data import Dataset
from sweep.errors import TrialFailed
from sweep.models import build_model, feature_maps
from sweep.spec import StudySpec
from sweep.train import CHECKPOINT_EVERY_S, device_description, load_checkpoint, train

TENSORBOARD_DIR = Path("tensorboard")  # training.tensorboard: <dir>/<study>/trial-<number>


def run_trial(
    trial: optuna.Trial,
    spec: StudySpec,
    values: dict,
    dataset_for: Callable[[dict, int], Dataset],
    on_epoch: Callable[[dict], None],
    checkpoint: Path | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
) -> float:
    """Train the configuration at ``values`` and return the objective's value.

    Args:
        values: ``{dotted.name: value}`` for each search param (grid point or sampled).
        dataset_for: ``(dataset_cfg, seed) -> Dataset``, cached by the caller so a process
            loads each dataset once.
        on_epoch: called with each epoch's row (storage, progress).
        checkpoint: this point's checkpoint file. When it exists (a worker died while
            training this point) training resumes after its last epoch, whose rows are
            replayed onto this trial. It is rewritten every ``checkpoint_every_s`` seconds.

    Raises:
        TrialFailed: the configuration cannot be built, or the loss became NaN; the message is
            the reason stored on the trial.
    """
    config = space.resolve(spec.config, values)
    seed = config.pop("seed", spec.seed)
    trial.set_user_attr("config", config)
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("provenance", provenance(spec))
    data = dataset_for(config["dataset"], seed)
    if "hypermodel" not in config["model"]:
        feature_maps(config["model"], data.input_shape)  # ConfigError before any training

    def report(row: dict) -> None:
        on_epoch(row)
        if row.get(spec.metric) is not None and np.isfinite(row[spec.metric]):
            trial.report(row[spec.metric], step=row["epoch"])
            if trial.should_prune():  # the study's pruner (search.pruner) gave up on it
                raise optuna.TrialPruned(f"pruned at epoch {row['epoch']}")

    keras.utils.set_random_seed(seed)
    resumed = load_checkpoint(checkpoint) if checkpoint is not None else None
    if resumed is not None:
        model, done = resumed
        trial.set_user_attr("resumed_from_epoch", done[-1]["epoch"])
        for row in done:
            report(row)
    else:
        model, done = _new_model(config, data, spec.source), []
    trial.set_user_attr("param_count", int(model.count_params()))

    training = config["training"]
    try:
        result = train(
            model,
            data,
            optimizer=training["optimizer"],
            learning_rate=training["learning_rate"],
            batch_size=training["batch_size"],
            epochs=training["epochs"],
            snapshots=training["snapshots"],
            on_epoch=report,
            done=done,
            checkpoint=checkpoint,
            checkpoint_every_s=checkpoint_every_s,
            tensorboard_dir=TENSORBOARD_DIR / spec.name / f"trial-{trial.number}"
            if training.get("tensorboard") else None,
        )
    except Exception as err:
        if not out_of_memory(err):
            raise
        raise TrialFailed(f"out of GPU memory: {str(err).splitlines()[0][:200]}") from None
    trial.set_user_attr("train_seconds", result.seconds)
    if result.nan_epoch is not None:
        raise TrialFailed(f"loss became NaN at epoch {result.nan_epoch}")
    trial.set_user_attr("snapshots", list(result.snapshots.values()))
    # A test metric is only known at snapshots: the objective takes the last one.
    final = result.snapshots[max(result.snapshots)] if spec.metric.startswith("test") else (
        result.epochs[-1]
    )
    return final[spec.metric]


def _new_model(config: dict, data: Dataset, study_source: str):
    """sweep's own model, or the study's KerasTuner hypermodel built with the trial's hps."""
    if "hypermodel" in config["model"]:
        from sweep.hypermodel import build_model as build_hypermodel

        return build_hypermodel(config["model"]["hypermodel"], study_source, config["hp"],
                                data.input_shape, data.num_classes)
    return build_model(config["model"], data.input_shape, data.num_classes)


def out_of_memory(err: Exception) -> bool:
    """Whether a backend's exception means the accelerator ran out of memory (TensorFlow's
    ResourceExhaustedError, JAX's RESOURCE_EXHAUSTED, PyTorch's OutOfMemoryError)."""
    text = f"{type(err).__name__} {err}"
    return any(s in text for s in ("ResourceExhausted", "RESOURCE_EXHAUSTED", "OutOfMemory",
                                   "out of memory"))


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
