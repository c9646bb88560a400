"""``sweep describe``: every model a study will train, analysed before any training.

For each distinct model configuration of the search space: each layer's output shape,
receptive field (input pixels) and parameter count, the totals, and whether the
configuration can be built and meets the study's constraints; for the dataset, each split's
images per class. Pure Python: no Keras.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from sweep.data import Dataset, input_spec, load_dataset
from sweep.errors import ConfigError, DataError
from sweep.models.architecture import Architecture, plan
from sweep.study import StudySpec, resolve
from sweep.study.plugins import DATASETS
from sweep.study.training import TrainingConfig

# searched fields that change a model: its layers, its input, its kernels' L2 term
SHAPE_FIELDS = ("model.", "dataset.", "training.augment", "training.weight_decay",
                "training.optimizer")


@dataclass
class ConfigurationResult:
    """One distinct model of a study: the searched values that pick it, and its analysis."""

    values: dict
    architecture: Architecture | None
    problem: str | None  # why it is rejected before training, or None
    l2: float = 0.0  # the L2 factor on its conv and dense kernels


def configurations(spec: StudySpec, data_dir: str | None = None) -> list[ConfigurationResult]:
    """The distinct models of the study's search space, in search-space order.

    Only searched model and dataset fields make models differ. A range (random/tpe samplers)
    is described at its low and high ends.
    """
    if spec.hypermodel is not None:
        return [ConfigurationResult({}, None, None)]
    shaping = [p for p in spec.search.params if p.name.startswith(SHAPE_FIELDS)]
    choices = [spec.values_of(p.name) for p in shaping]  # a range at its two ends
    results, seen = [], set()
    for combo in itertools.product(*choices):
        values = {p.name: v for p, v in zip(shaping, combo, strict=True)}
        config = resolve(spec.config, values)
        training = TrainingConfig.from_section(config["training"])
        l2 = training.kernel_l2
        key = repr((config["model"], config["dataset"], training.augment, l2))
        if key in seen:
            continue
        seen.add(key)
        input_shape, num_classes = input_spec(config["dataset"], data_dir, spec.source)
        try:
            architecture = plan(config["model"], input_shape, num_classes, training.augment)
        except ConfigError as err:
            results.append(ConfigurationResult(values, None, f"cannot be built: {err}"))
            continue
        limit = spec.constraints.get("max_params")
        problem = None
        if limit is not None and architecture.params > limit:
            problem = f"over max_params {limit:,}: rejected before training"
        results.append(ConfigurationResult(values, architecture, problem, l2))
    return results


def format_configurations(spec: StudySpec, results: list[ConfigurationResult]) -> str:
    """The text ``sweep describe`` prints: a layer table per distinct architecture, under the
    points that share it (models that differ only where no layer shows it, a dropout rate,
    print one table)."""
    shared: dict[str, list[str]] = {}  # an analysis -> the points it describes
    for result in results:
        chosen = (", ".join(f"{k}={v}" for k, v in result.values.items())
                  or "(no model field searched)")
        shared.setdefault("\n".join(_analysis(spec, result)), []).append(chosen)
    lines = [f"{spec.name}: {len(results)} distinct model(s)"
             + (f", {len(shared)} distinct architecture(s)" if len(shared) < len(results) else "")]
    for i, (analysis, points) in enumerate(shared.items(), start=1):
        lines += ["", f"[{i}/{len(shared)}] {points[0]}"]
        lines += [f"{' ' * len(f'[{i}/{len(shared)}]')} {chosen}" for chosen in points[1:]]
        lines.append(analysis)
    return "\n".join(lines)


def _analysis(spec: StudySpec, result: ConfigurationResult) -> list[str]:
    """One model's layer table and totals, or why only its trial knows them, and whether it
    is rejected."""
    lines = []
    if result.architecture is not None:
        lines += _table(result.architecture)
        if result.l2:
            lines.append(f"  weight decay: L2 {result.l2:g} on every conv and dense kernel "
                         "(added to the loss)")
    elif result.problem is None:  # a KerasTuner hypermodel: only its build(hp) knows
        lines.append(f"  a KerasTuner hypermodel ({spec.hypermodel}): "
                     "its layers are analysed when each trial builds it")
    if result.problem:
        lines.append(f"  REJECTED: {result.problem}")
    return lines


UNBALANCED = 2.0  # a split whose largest class has more than this times its smallest's images
LISTED_CLASSES = 20  # splits of at most this many classes list every class's count


def dataset_balance(spec: StudySpec, data_dir: str | None = None) -> list[str]:
    """``class_balance`` of the study's dataset, or why it is not counted: describe
    downloads nothing, so a Keras dataset is counted from the archives in ``data_dir``."""
    name = spec.config["dataset"]["name"]
    if DATASETS[name].source == "keras" and not data_dir:
        return [f"class counts: not counted ({name} is read from SWEEP_DATA_DIR or "
                "--data-dir; describe downloads nothing)"]
    try:
        return class_balance(load_dataset(spec.config["dataset"], spec.seed, data_dir,
                                          spec.source))
    except DataError as err:
        return [f"class counts: not available ({err})"]


def class_balance(data: Dataset) -> list[str]:
    """Each split's images per class (the seeds' first look at a dataset), and a warning
    line for a split whose classes differ by more than ``UNBALANCED`` times."""
    names = data.class_names or tuple(str(k) for k in range(data.num_classes))
    lines = [f"{data.name}: {data.num_classes} classes"]
    warnings = []
    for split, labels in (("train", data.y_train), ("val", data.y_val), ("test", data.y_test)):
        counts = np.bincount(labels, minlength=data.num_classes)
        low, high = int(counts.argmin()), int(counts.argmax())
        lines.append(f"  {split:<5} {len(labels):>7,} images, {counts[low]:,} to "
                     f"{counts[high]:,} per class")
        if data.num_classes <= LISTED_CLASSES:
            lines.append("        " + "  ".join(f"{n}: {c:,}"
                                                  for n, c in zip(names, counts, strict=True)))
        if counts[high] > UNBALANCED * counts[low]:
            ratio = "no" if counts[low] == 0 else f"{counts[high] / counts[low]:.1f}x fewer"
            warnings.append(f"WARNING: {split} split is unbalanced: class {names[low]!r} has "
                            f"{counts[low]:,} images, {ratio} than {names[high]!r} "
                            f"({counts[high]:,})")
    return lines + warnings


def _table(architecture: Architecture) -> list[str]:
    rows = architecture.rows()
    # max and avg pooling read apart
    for row, layer in zip(rows, architecture.shown(), strict=True):
        row["layer"] += f" ({layer.args['pool']})" if layer.kind == "pool" else ""
    width = max(len(r["layer"]) for r in rows)
    lines = [f"  {'layer':<{width}}  {'output':>12}  {'RF px':>6}  {'params':>10}"]
    lines += [
        f"  {r['layer']:<{width}}  {r['output']:>12}  {r['receptive_field']:>6}  "
        f"{r['params']:>10,}"
        for r in rows
    ]
    lines.append(
        f"  total {architecture.params:,} parameters ({architecture.trainable_params:,} "
        f"trainable); receptive field {architecture.receptive_field} px before the head"
    )
    return lines
