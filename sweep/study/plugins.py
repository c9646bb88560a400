"""The plug-ins a study file names: one registry per kind, keyed by the study file's words.

An entry says what its plug-in is (a sampler that enumerates its points, an optimizer that
takes momentum, a dataset read from a path) and names what implements it as a dotted path,
which the stage that uses it imports (``sweep._lazy.resolve``): the study stage imports no
Keras, Optuna or data code, and the schema's choices are these registries' keys. Cluster
schedulers are not named in study files; their registry is ``sweep.launch.submit.SCHEDULERS``.
A suite runs over every entry of each registry (``tests/study/test_plugins.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplerEntry:
    """``search.sampler``. ``target``: an ``optuna.samplers`` class taking ``seed=``."""

    target: str
    enumerates: bool = False  # lists its points up front; workers claim them one by one
    # how the report tests a knob over the trials it chose (sweep.report.effects.Design):
    # "blocks" (a grid: the other axes cross it), "groups" (drawn independently of the
    # results), "none" (chosen from earlier results: not a designed comparison)
    compared: str = "none"


@dataclass(frozen=True)
class PrunerEntry:
    """``search.pruner``: ``target(**options)``, plus ``max_resource`` = the most epochs a
    trial trains where ``budget`` is set. Trials report their metric every epoch."""

    target: str
    options: dict = field(default_factory=dict)
    budget: bool = False


@dataclass(frozen=True)
class OptimizerEntry:
    """``training.optimizer``: a Keras optimizer class taking ``learning_rate=``."""

    target: str
    momentum: bool = False  # takes training.momentum
    decoupled_decay: bool = False  # training.weight_decay is its own argument, not an L2 term


@dataclass(frozen=True)
class DatasetEntry:
    """``dataset.name``. ``target``: a loader ``(cfg, data_dir) -> Raw``
    (``sweep.data.loaders``). A fixed dataset also says its image ``shape`` and class count
    (so that a study's models are analysed, ``sweep describe``, without loading any data)
    and where its class ``names`` are (a dotted tuple in ``sweep.data.classes``)."""

    target: str
    source: str  # "package": ships with a package; "keras": downloaded; "path": dataset.path
    shape: tuple[int, ...] | None = None  # None: found by loading it (folder, npz)
    num_classes: int = 0
    names: str | None = None


SAMPLERS = {
    # sweep's own: the grid's points are claimed in sweep_claims, each trial made holding its
    # point (sweep.run.worker), so this sampler is never asked for a value
    "grid": SamplerEntry("sweep.trial.sampling.GridPointSampler", enumerates=True,
                         compared="blocks"),
    "random": SamplerEntry("optuna.samplers.RandomSampler", compared="groups"),
    "tpe": SamplerEntry("optuna.samplers.TPESampler"),
}

PRUNERS = {
    "none": PrunerEntry("optuna.pruners.NopPruner"),
    # stop a trial worse than the median of earlier trials at the same epoch, once 5 trials
    # finished, from epoch 2 (epoch 1 is too noisy; steps are 1-based epochs here)
    "median": PrunerEntry("optuna.pruners.MedianPruner",
                          {"n_startup_trials": 5, "n_warmup_steps": 2}),
    # successive halving over 1 .. the most epochs, reduction factor 3
    "hyperband": PrunerEntry("optuna.pruners.HyperbandPruner",
                             {"min_resource": 1, "reduction_factor": 3}, budget=True),
}

OPTIMIZERS = {
    "adam": OptimizerEntry("keras.optimizers.Adam"),
    "adamw": OptimizerEntry("keras.optimizers.AdamW", decoupled_decay=True),
    "sgd": OptimizerEntry("keras.optimizers.SGD", momentum=True),
    "rmsprop": OptimizerEntry("keras.optimizers.RMSprop", momentum=True),
}

DATASETS = {
    # 8x8 digits, each pixel a 4x4 block (sweep.data.loaders.DIGITS_SCALE): 32x32, as CIFAR
    "digits": DatasetEntry("sweep.data.loaders.digits", "package", (32, 32, 1), 10,
                           "sweep.data.classes.DIGITS"),
    "cifar10": DatasetEntry("sweep.data.loaders.cifar10", "keras", (32, 32, 3), 10,
                            "sweep.data.classes.CIFAR10"),
    # label_mode coarse: 20 classes (sweep.data.classes.CIFAR100_COARSE)
    "cifar100": DatasetEntry("sweep.data.loaders.cifar100", "keras", (32, 32, 3), 100,
                             "sweep.data.classes.CIFAR100_FINE"),
    "fashion_mnist": DatasetEntry("sweep.data.loaders.fashion_mnist", "keras", (28, 28, 1), 10,
                                  "sweep.data.classes.FASHION_MNIST"),
    "mnist": DatasetEntry("sweep.data.loaders.mnist", "keras", (28, 28, 1), 10,
                          "sweep.data.classes.DIGITS"),
    "folder": DatasetEntry("sweep.data.loaders.folder", "path"),
    "npz": DatasetEntry("sweep.data.loaders.npz", "path"),
}
