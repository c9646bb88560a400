"""A trial's ``training`` section as one typed, frozen value: what ``sweep.training.train``
takes, built once from the validated study (defaults filled) instead of read key by key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweep.study.plugins import OPTIMIZERS
from sweep.study.schema import SCHEMA

_SECTION = SCHEMA["training"]


def _default(name: str) -> Any:
    """The schema's default of ``training.NAME`` (scalars and None only): the schema is the
    one home for defaults."""
    return _SECTION[name][1]


@dataclass(frozen=True)
class TrainingConfig:
    """How one model trains. Field names are the study file's ``training.*`` keys (a test
    checks that the two sets agree); see ``sweep.study.schema`` for their meaning."""

    optimizer: str = _default("optimizer")  # a key of sweep.study.plugins.OPTIMIZERS
    learning_rate: float = _default("learning_rate")  # per optimizer step, at epoch 1
    momentum: float = _default("momentum")  # sgd and rmsprop
    schedule: str = _default("schedule")  # constant | inverse_time | cosine
    decay: float = _default("decay")  # inverse_time's
    batch_size: int = _default("batch_size")
    epochs: int = _default("epochs")
    stop_at_loss: float | None = _default("stop_at_loss")  # stop once train loss <= this
    snapshots: tuple[int, ...] | None = _default("snapshots")  # None: the last epoch
    tensorboard: bool = _default("tensorboard")
    weight_decay: float = _default("weight_decay")  # L2 factor, or AdamW's decoupled decay
    label_smoothing: float = _default("label_smoothing")
    augment: dict | None = _default("augment")  # training.augment's fields, or None
    precision: str = _default("precision")  # Keras dtype policy

    @classmethod
    def from_section(cls, section: dict) -> TrainingConfig:
        """From a validated config's ``training`` mapping (every key present)."""
        snapshots = section.get("snapshots")
        return cls(**section | {"snapshots": None if snapshots is None else tuple(snapshots)})

    @property
    def snapshot_epochs(self) -> tuple[int, ...]:
        """Epochs (1-based) after which the test set is evaluated."""
        return self.snapshots or (self.epochs,)

    @property
    def kernel_l2(self) -> float:
        """The L2 factor on conv and dense kernels that ``weight_decay`` means: a loss term,
        except under AdamW, whose decay is decoupled from the loss (the optimizer's own)."""
        return 0.0 if OPTIMIZERS[self.optimizer].decoupled_decay else self.weight_decay
