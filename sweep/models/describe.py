"""``sweep describe``: every model a study will train, analysed before any training.

For each distinct model configuration of the search space: each layer's output shape,
receptive field (input pixels) and parameter count, the totals, and whether the
configuration can be built and meets the study's constraints. Pure Python: no Keras.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sweep.data import input_spec
from sweep.errors import ConfigError
from sweep.models.architecture import Architecture, plan
from sweep.study import ChoiceParam, StudySpec, resolve

SHAPE_FIELDS = ("model.", "dataset.")  # searched fields that can change an architecture


@dataclass
class ConfigurationResult:
    """One distinct model of a study: the searched values that pick it, and its analysis."""

    values: dict
    architecture: Architecture | None
    problem: str | None  # why it is rejected before training, or None


def configurations(spec: StudySpec, data_dir: str | None = None) -> list[ConfigurationResult]:
    """The distinct models of the study's search space, in search-space order.

    Only searched model and dataset fields make models differ. A range (random/tpe samplers)
    is described at its low and high ends.
    """
    if spec.hypermodel is not None:
        return [ConfigurationResult({}, None, None)]
    shaping = [p for p in spec.search.params if p.name.startswith(SHAPE_FIELDS)]
    choices = [
        p.values if isinstance(p, ChoiceParam) else (p.low, p.high) for p in shaping
    ]
    results, seen = [], set()
    for combo in itertools.product(*choices):
        values = {p.name: v for p, v in zip(shaping, combo)}
        config = resolve(spec.config, values)
        key = repr((config["model"], config["dataset"]))
        if key in seen:
            continue
        seen.add(key)
        input_shape, num_classes = input_spec(config["dataset"], data_dir, spec.source)
        try:
            architecture = plan(config["model"], input_shape, num_classes)
        except ConfigError as err:
            results.append(ConfigurationResult(values, None, f"cannot be built: {err}"))
            continue
        limit = spec.constraints.get("max_params")
        problem = None
        if limit is not None and architecture.params > limit:
            problem = f"over max_params {limit:,}: rejected before training"
        results.append(ConfigurationResult(values, architecture, problem))
    return results


def format_configurations(spec: StudySpec, results: list[ConfigurationResult]) -> str:
    """The text ``sweep describe`` prints: a layer table per configuration."""
    lines = [f"{spec.name}: {len(results)} distinct model(s)"]
    for i, result in enumerate(results, start=1):
        chosen = ", ".join(f"{k}={v}" for k, v in result.values.items()) or "(no model field searched)"
        lines += ["", f"[{i}/{len(results)}] {chosen}"]
        if result.architecture is not None:
            lines += _table(result.architecture)
        elif result.problem is None:  # a KerasTuner hypermodel: only its build(hp) knows
            lines.append(f"  a KerasTuner hypermodel ({spec.hypermodel}): "
                         "its layers are analysed when each trial builds it")
        if result.problem:
            lines.append(f"  REJECTED: {result.problem}")
    return "\n".join(lines)


def _table(architecture: Architecture) -> list[str]:
    rows = architecture.rows()
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
