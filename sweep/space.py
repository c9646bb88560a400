"""The search space: parameters, grid points, samplers, and turning values into a trial config.

Optuna lives behind this door for sampling; everything handed out is a plain dict.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from typing import Any

import optuna


@dataclass(frozen=True)
class ChoiceParam:
    """A list of values: the grid's axis, or a categorical choice for random/tpe."""

    name: str  # dotted path into the study, e.g. "model.kernel"
    values: tuple
    conditions: tuple = ()  # ((parent name, allowed values), ...): see ``active``

    def describe(self) -> list | dict:
        if self.conditions:
            return {"values": list(self.values), "when": _describe_when(self.conditions)}
        return list(self.values)

    def suggest(self, trial: optuna.Trial) -> Any:
        choices = [self.to_optuna(v) for v in self.values]
        return self.from_optuna(trial.suggest_categorical(self.name, choices))

    # Optuna stores only None/bool/int/float/str choices; a list value (``model.filters:
    # [[16, 16], [32, 32]]``) is stored as its JSON text, e.g. "[16, 16]".
    @staticmethod
    def to_optuna(value: Any) -> Any:
        return json.dumps(value) if isinstance(value, list) else value

    def from_optuna(self, value: Any) -> Any:
        return json.loads(value) if isinstance(self.values[0], list) else value


@dataclass(frozen=True)
class RangeParam:
    """A numeric range for random/tpe sampling."""

    name: str
    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False
    conditions: tuple = ()  # ((parent name, allowed values), ...): see ``active``

    def describe(self) -> dict:
        out = {"low": self.low, "high": self.high, "log": self.log}
        out |= {"step": self.step} if self.step is not None else {}
        return out | ({"when": _describe_when(self.conditions)} if self.conditions else {})

    def to_optuna(self, value: Any) -> Any:
        return value

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.integer:
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


Param = ChoiceParam | RangeParam


def _describe_when(conditions: tuple) -> dict:
    return {parent: list(allowed) for parent, allowed in conditions}


def active(param: Param, values: dict) -> bool:
    """Whether a conditional param takes part, given the values chosen before it: every
    parent (an earlier param) has a value among the allowed ones (KerasTuner's
    ``parent_name``/``parent_values``). A param without conditions always does."""
    return all(values.get(parent) in allowed for parent, allowed in param.conditions)


def described(stored: dict) -> tuple[ChoiceParam, ...]:
    """The choice params of a stored study's ``search.params`` (``describe()`` output), to
    count its grid points; ranges are left out."""
    out = []
    for name, d in stored.items():
        if isinstance(d, list) or "values" in d:
            values, when = (d, {}) if isinstance(d, list) else (d["values"], d["when"])
            out.append(ChoiceParam(name, tuple(values),
                                   tuple((k, tuple(v)) for k, v in when.items())))
    return tuple(out)


def grid_points(params: tuple[Param, ...]) -> list[dict]:
    """Every combination of the choice params, in a stable order (the first param varies
    slowest). A conditional param is left out of the points where it is not active, so the
    combinations that differ only in it are one point."""
    points, seen = [], set()
    for combo in itertools.product(*(p.values for p in params)):
        point = {}
        for p, value in zip(params, combo):
            if active(p, point):
                point[p.name] = value
        key = json.dumps(to_optuna(params, point), sort_keys=True)
        if key not in seen:
            seen.add(key)
            points.append(point)
    return points


def to_optuna(params: tuple[Param, ...], point: dict) -> dict:
    """A point as Optuna stores its params (see ``ChoiceParam.to_optuna``)."""
    return {p.name: p.to_optuna(point[p.name]) for p in params if p.name in point}


def point_key(optuna_params: dict) -> str:
    """A canonical string for a point (in Optuna's form), to tell whether it was already run."""
    return json.dumps(optuna_params, sort_keys=True)


def suggest(trial: optuna.Trial, params: tuple[Param, ...]) -> dict:
    """Ask the trial for a value of each active param (define-by-run: a conditional param
    is asked only when its parents' values allow it); returns ``{dotted.name: value}``."""
    values: dict = {}
    for p in params:
        if active(p, values):
            values[p.name] = p.suggest(trial)
    return values


class GridPointSampler(optuna.samplers.BaseSampler):
    """Hands out the grid point this worker claimed (``point``, in Optuna's form).

    Workers claim points in ``sweep_claims`` (see claims.py) instead of enqueuing them:
    Optuna's hand-out of enqueued trials can give one point to two workers on SQLite.
    """

    def __init__(self) -> None:
        self.point: dict = {}

    def infer_relative_search_space(self, study, trial) -> dict:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        return self.point[param_name]


def make_sampler(sampler: str, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler for a study's ``search.sampler``. ``seed`` should differ between resumed
    runs and between workers, so random and tpe draws are not repeated."""
    if sampler == "grid":
        return GridPointSampler()
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


PRUNERS = ("none", "median", "hyperband")


def make_pruner(pruner: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner for a study's ``search.pruner``; trials report their metric every epoch.

    ``median``: stop a trial whose value at an epoch is worse than the median of earlier
    trials at that epoch, once 5 trials finished, from epoch 2 (epoch 1 is too noisy;
    ``n_warmup_steps`` counts 1-based epochs here, so 2 allows epoch 2).
    ``hyperband``: successive halving over 1 .. ``max_epochs`` epochs, reduction factor 3.
    """
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs,
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


def resolve(config: dict, values: dict) -> dict:
    """The trial's full config: the study's sections with the searched values set in.

    A searched ``seed`` lands at ``config["seed"]``.
    """
    out = copy.deepcopy(config)
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[leaf] = value
    return out
