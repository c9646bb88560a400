"""The words of a study file: every section, field, validator and default.

Plain data; the plug-in words (datasets, samplers, pruners, optimizers) are the keys of the
registries in ``sweep.study.plugins``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from sweep.study.fields import (
    REQUIRED,
    boolean,
    choice,
    int_list,
    integer,
    mapping,
    number,
    one_or_list,
    optional,
    per_block,
    text,
)
from sweep.study.plugins import DATASETS, OPTIMIZERS, PRUNERS, SAMPLERS
from sweep.study.schedule import schedule

METRICS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_accuracy",
           "train_loss", "roc_auc", "param_count")
DIRECTIONS = ("maximize", "minimize")

# Random changes to the training images (Keras preprocessing layers at the model's input:
# active while fitting, identity in evaluation and prediction). Every field at its default
# means no augmentation; ``augment: null`` says the same.
AUGMENT: dict[str, tuple[Any, Any]] = {
    "flip": (choice("none", "horizontal", "vertical", "horizontal_and_vertical"), "none"),
    "translate": (number(0, 1, high_open=True), 0.0),  # up to this fraction of height/width
    "crop_padding": (integer(0), 0),  # zero-pad by this many pixels, crop back at random
    "rotation": (number(0, 0.5), 0.0),  # up to this fraction of a full turn, either way
    "contrast": (number(0, 1, high_open=True), 0.0),  # contrast scaled by 1 +- this
}
# A study's name is a file and folder name (reports/NAME.html, checkpoints/NAME/, ...): no '/',
# and no leading '.', so neither '.' nor '..' nor a hidden file.
# at most 100 characters: a study's name is part of its files' names (a 300-character name
# trained, then failed with "File name too long")
NAME = r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}"
MAX_EPOCHS = 100_000  # what a run can mean (10^20 was accepted, and then trained)

# section -> key -> (validator, default). The keys are the words used in study files.
SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    "dataset": {
        "name": (choice(*DATASETS), REQUIRED),
        "validation_split": (number(0, 1, low_open=True, high_open=True), 0.1),
        "label_mode": (choice("fine", "coarse"), "fine"),  # cifar100 only
        "path": (optional(text()), None),  # folder / npz only
        "max_train": (optional(integer(1)), None),  # keep a seeded sample of N training images
        "max_test": (optional(integer(1)), None),  # keep N test images, the same for every seed
    },
    "model": {
        # one conv block each; [] gives the flattened-input dense baseline
        "filters": (int_list(1, allow_empty=True), [32, 64, 64]),
        "block": (choice("conv", "separable"), "conv"),  # separable: depthwise + pointwise 1x1
        "kernel": (integer(1), 3),  # conv window width in pixels
        "pooling": (choice("max", "avg", "none"), "max"),  # 2x2, after each conv but the last
        "pool_last": (boolean, False),  # pool after the last conv layer too
        "pool_after": (optional(int_list(1, allow_empty=True)), None),  # blocks to pool after
        "transition": (optional(integer(1)), None),  # filters of a 1x1 conv after each pooling
        # one for every conv block, or a list, one per block (dense layers: the last rate)
        "padding": (per_block(choice("valid", "same")), "valid"),
        "dropout": (per_block(number(0, 1, high_open=True)), 0.0),
        "batch_norm": (boolean, False),
        "head": (choice("flatten", "gap"), "flatten"),  # gap: 1x1 conv to classes + global avg
        "dense": (int_list(1, allow_empty=True), [64]),  # hidden dense units (flatten head)
        # A KerasTuner build(hp) instead of the fields above (see hypermodel.py)
        "hypermodel": (optional(text(r"[^:]+\.py:[A-Za-z_]\w*", "path/to/file.py:function")),
                       None),
    },
    "training": {
        "optimizer": (choice(*OPTIMIZERS), "adam"),
        "learning_rate": (number(0, low_open=True), 0.001),  # per step, at epoch 1
        "momentum": (number(0, 1, high_open=True), 0.0),  # sgd and rmsprop
        # constant; inverse_time: lr / (1 + decay * (epoch - 1)); cosine: to 0 at the last epoch
        "schedule": (choice("constant", "inverse_time", "cosine"), "constant"),
        "decay": (number(0), 0.0),  # inverse_time only
        "batch_size": (integer(1), 32),
        "epochs": (integer(1, MAX_EPOCHS), 10),
        "stop_at_loss": (optional(number(0, low_open=True)), None),  # stop when train loss <=
        "snapshots": (optional(int_list(1, allow_empty=False)), None),  # default: [epochs]
        "tensorboard": (boolean, False),  # TensorBoard logs per trial (logging only)
        # L2 on conv and dense kernels (loss += weight_decay * sum of squares); with adamw,
        # AdamW's decoupled decay instead (each step: w -= learning_rate * weight_decay * w)
        "weight_decay": (number(0), 0.0),
        "label_smoothing": (number(0, 1, high_open=True), 0.0),
        "augment": (optional(mapping(AUGMENT)), None),
        # Keras' dtype policy: mixed_* computes in 16 bits, keeps float32 weights, logits,
        # losses and metrics (mixed_float16 with loss scaling)
        "precision": (choice("float32", "mixed_bfloat16", "mixed_float16"), "float32"),
    },
    "constraints": {
        "max_params": (optional(integer(1)), None),  # reject larger models before training
    },
    "objective": {
        # one metric, or a list for a multi-objective study (a Pareto front)
        "metric": (one_or_list(choice(*METRICS)), ["val_accuracy"]),
        "direction": (optional(one_or_list(choice(*DIRECTIONS))), None),
        # the metric at the last epoch run, or at its best epoch (test metrics: best snapshot)
        "at": (choice("last", "best"), "last"),
    },
    "search": {
        "sampler": (choice(*SAMPLERS), "grid"),
        "params": (None, {}),  # validated by _parse_params
        "n_trials": (optional(integer(1)), None),
        # train every grid point with seeds seed .. seed + repeats - 1 (a ``seed`` axis)
        "repeats": (integer(1), 1),
        # stop hopeless trials early (sweep.trial.sampling.make_pruner)
        "pruner": (choice(*PRUNERS), "none"),
        # successive halving: rungs of epochs, the best 1/factor promoted (study/schedule.py)
        "schedule": (schedule, None),
    },
}
TOP = {
    "name": (text(NAME, "a name of at most 100 letters, digits, '_', '-', '.' (not first)"),
             REQUIRED),
    "description": (text(), ""),
    "seed": (integer(0), 0),
}
# Search keys may point at any leaf of these sections but the hypermodel reference (one study
# is one model family), or at the top-level seed.
# Fields whose value is a mapping of their own fields: each of those is a dotted field too.
SUBFIELDS = {"training.augment": AUGMENT}
SEARCHABLE = (
    {f"{s}.{k}" for s in ("model", "training") for k in SCHEMA[s]}
    | {f"{field}.{k}" for field, sub in SUBFIELDS.items() for k in sub}
    | {"dataset.validation_split", "dataset.max_train", "seed"}
) - {"model.hypermodel"}


_NO_DEFAULT = object()


def field_spec(dotted: str) -> tuple[Any, Any] | None:
    """``(validator, default)`` of a dotted field (``model.kernel``, ``training.augment.flip``,
    ``seed``), or None for a name the schema does not have."""
    if dotted in TOP:
        return TOP[dotted]
    section, _, key = dotted.partition(".")
    parent, _, sub = dotted.rpartition(".")
    if parent in SUBFIELDS:
        return SUBFIELDS[parent].get(sub)
    return SCHEMA.get(section, {}).get(key)
def file_name(study_name: str) -> str:
    """``study_name`` as one safe file name, for the paths built from a name read from storage
    (a study made with stock Optuna may be called ``../x`` or ``my study``): every run of
    other characters becomes ``_``, and a leading ``.`` gets a ``_`` before it. A valid study
    file's name is returned as it is."""
    if re.fullmatch(NAME, study_name):
        return study_name
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", study_name)
    return "_" + safe if safe.startswith(".") or not safe else safe


@cache  # the schema is fixed: identity() asks for every field of a trial
def default_of(dotted: str) -> Any:
    """The schema default of a dotted field (``model.kernel``), or a value equal to nothing
    for fields without one (required fields, hypermodel hps)."""
    default = (field_spec(dotted) or (None, _NO_DEFAULT))[1]
    return _NO_DEFAULT if default is REQUIRED else default
