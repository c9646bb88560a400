"""Optuna's side of the search space: asking a trial for each param's value, the samplers and
the pruners named in study files."""

from __future__ import annotations

from typing import Any

import optuna

from sweep.study import ChoiceParam, Param
from sweep.study.space import active


def suggest_param(trial: optuna.Trial, param: Param) -> Any:
    """One param's value for ``trial`` (decoded from the form Optuna stores)."""
    if isinstance(param, ChoiceParam):
        return param.decode(trial.suggest_categorical(param.name, param.optuna_choices()))
    if param.integer:
        return trial.suggest_int(param.name, int(param.low), int(param.high),
                                 step=int(param.step or 1), log=param.log)
    return trial.suggest_float(param.name, param.low, param.high, step=param.step,
                               log=param.log)


def suggest(trial: optuna.Trial, params: tuple[Param, ...]) -> dict:
    """Ask the trial for a value of each active param (define-by-run: a conditional param
    is asked only when its parents' values allow it); returns ``{dotted.name: value}``."""
    values: dict = {}
    for p in params:
        if active(p, values):
            values[p.name] = suggest_param(trial, p)
    return values


class GridPointSampler(optuna.samplers.BaseSampler):
    """Hands out one grid point (in stored form), and nothing else.

    Workers claim points in ``sweep_claims`` (see ``sweep.run.claims``) instead of enqueuing
    them: Optuna's hand-out of enqueued trials can give one point to two workers on SQLite.
    A worker's grid study has this sampler with no point: each claimed point's trial is
    created holding its params (``sweep.run.worker``), so it is never asked.
    """

    def __init__(self, point: dict) -> None:
        self.point = dict(point)

    def infer_relative_search_space(self, study, trial) -> dict:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        return self.point[param_name]


def make_sampler(sampler: str, seed: int, point: dict | None = None):
    """The sampler for a study's ``search.sampler``: for grid, the sampler of one ``point``
    (none: a study whose trials come with their params). ``seed`` should differ between resumed runs and between workers, so random
    and tpe draws are not repeated."""
    if sampler == "grid":
        return GridPointSampler(point or {})
    return SAMPLERS[sampler](seed=seed)


SAMPLERS = {"random": optuna.samplers.RandomSampler, "tpe": optuna.samplers.TPESampler}


def make_pruner(pruner: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner for a study's ``search.pruner``; trials report their metric every epoch.

    ``median``: stop a trial whose value at an epoch is worse than the median of earlier
    trials at that epoch, once 5 trials finished, from epoch 2 (epoch 1 is too noisy;
    ``n_warmup_steps`` counts 1-based epochs here, so 2 allows epoch 2).
    ``hyperband``: successive halving over 1 .. ``max_epochs`` epochs, reduction factor 3.
    """
    return PRUNERS[pruner](max_epochs)


PRUNERS = {
    "none": lambda _: optuna.pruners.NopPruner(),
    "median": lambda _: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    "hyperband": lambda max_epochs: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=max_epochs, reduction_factor=3),
}
