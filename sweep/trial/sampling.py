"""Optuna's side of the search space: asking a trial for each param's value, the samplers and
the pruners named in study files."""

from __future__ import annotations

from typing import Any

import optuna

from sweep._lazy import resolve
from sweep.study import ChoiceParam, Param
from sweep.study.plugins import PRUNERS, SAMPLERS
from sweep.study.space import active


def suggest_param(trial: optuna.trial.BaseTrial, param: Param) -> Any:
    """One param's value for ``trial`` (decoded from the form Optuna stores)."""
    if isinstance(param, ChoiceParam):
        return param.decode(trial.suggest_categorical(param.name, param.optuna_choices()))
    if param.integer:
        return trial.suggest_int(param.name, int(param.low), int(param.high),
                                 step=int(param.step or 1), log=param.log)
    return trial.suggest_float(param.name, param.low, param.high, step=param.step,
                               log=param.log)


def suggest(trial: optuna.trial.BaseTrial, params: tuple[Param, ...]) -> dict:
    """Ask the trial for a value of each active param (define-by-run: a conditional param
    is asked only when its parents' values allow it); returns ``{dotted.name: value}``."""
    values: dict = {}
    for p in params:
        if active(p, values):
            values[p.name] = suggest_param(trial, p)
    return values


class GridPointSampler(optuna.samplers.BaseSampler):
    """Hands out one grid point (in stored form), and nothing else.

    Workers claim points in ``sweep_claims`` (see ``sweep.store.claims``) instead of enqueuing
    them: Optuna's hand-out of enqueued trials can give one point to two workers on SQLite.
    A worker's grid study has this sampler with no point: each claimed point's trial is
    created holding its params (``sweep.run.worker``), so it is never asked.
    """

    def __init__(self, point: dict | None = None) -> None:
        self.point = dict(point or {})

    def infer_relative_search_space(self, study: optuna.Study, trial: optuna.trial.FrozenTrial
                                    ) -> dict:
        return {}

    def sample_relative(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                        search_space: dict) -> dict:
        return {}

    def sample_independent(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                           param_name: str,
                           param_distribution: optuna.distributions.BaseDistribution) -> Any:
        return self.point[param_name]


def make_sampler(sampler: str, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler for a study's ``search.sampler`` (``sweep.study.plugins.SAMPLERS``); one
    that enumerates its points (grid) is made holding none: a study whose trials come with
    their params. ``seed`` should differ between resumed runs and between workers, so random
    and tpe draws are not repeated."""
    entry = SAMPLERS[sampler]
    return resolve(entry.target)() if entry.enumerates else resolve(entry.target)(seed=seed)


def make_pruner(pruner: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner for a study's ``search.pruner`` (``sweep.study.plugins.PRUNERS``): a budget
    pruner gets ``max_epochs``, the most epochs a trial trains, as its largest budget."""
    entry = PRUNERS[pruner]
    budget = {"max_resource": max_epochs} if entry.budget else {}
    return resolve(entry.target)(**entry.options, **budget)
