"""A validated study as plain data: what every later stage reads instead of the study file."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

from sweep.study.plugins import SAMPLERS
from sweep.study.schedule import Halving
from sweep.study.space import ChoiceParam, Param, value_at
from sweep.study.training import TrainingConfig


@dataclass(frozen=True)
class SearchSpec:
    sampler: str  # grid | random | tpe
    params: tuple[Param, ...]
    n_trials: int | None  # None for grid: the grid's size
    pruner: str = "none"
    schedule: Halving | None = None  # successive halving (search.schedule)

    @property
    def enumerates(self) -> bool:
        """The sampler lists its points up front (grid): workers claim them one by one."""
        return SAMPLERS[self.sampler].enumerates


@dataclass(frozen=True)
class StudySpec:
    """A validated study. ``config`` holds the dataset/model/training sections, defaults filled.

    A KerasTuner hypermodel study (``hypermodel`` set) has ``config["model"] ==
    {"hypermodel": ref}`` and its ``hp.*`` search params are known only once its ``build(hp)``
    ran: ``sweep.models.complete_spec`` adds them (and sets ``hp_collected``).
    """

    name: str
    description: str
    source: str
    config: dict
    search: SearchSpec
    metrics: tuple[str, ...]  # one per objective
    directions: tuple[str, ...]
    seed: int
    constraints: dict
    hypermodel: str | None = None  # "path/to/file.py:name", relative to the study file
    hp_collected: bool = False
    at: str = "last"  # objective.at: the metric at the last epoch run, or at its best one

    @property
    def metric(self) -> str:
        """The first objective: reported per epoch (single-objective studies only)."""
        return self.metrics[0]

    @property
    def training(self) -> TrainingConfig:
        """The study's ``training`` section (its fixed values; a searched field's values are
        each trial's own)."""
        return TrainingConfig.from_section(self.config["training"])

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    def at_epochs(self, epochs: int | None) -> StudySpec:
        """The study as a rung of ``epochs`` trains it (``search.schedule``): that many
        epochs, its snapshots those up to there and the rung's end; itself for None."""
        if epochs is None:
            return self
        training = self.config["training"]
        snapshots = training["snapshots"] and sorted(
            {s for s in training["snapshots"] if s <= epochs} | {epochs})
        return replace(self, config=self.config | {
            "training": training | {"epochs": epochs, "snapshots": snapshots}})

    def values_of(self, dotted: str) -> tuple:
        """Every value a field takes in this study: a searched list's values, a range's ends,
        or the fixed value (``training.precision``, ``seed``)."""
        param = next((p for p in self.search.params if p.name == dotted), None)
        if param is None:
            return (self.seed,) if dotted == "seed" else (value_at(self.config, dotted),)
        return param.values if isinstance(param, ChoiceParam) else (param.low, param.high)

    def as_dict(self) -> dict:
        """The resolved study, for provenance and for detecting a changed study on resume."""
        return {
            "name": self.name,
            **copy.deepcopy(self.config),
            "search": {
                "sampler": self.search.sampler,
                "params": {p.name: p.describe() for p in self.search.params},
                "n_trials": self.search.n_trials,
            } | ({"pruner": self.search.pruner} if self.search.pruner != "none" else {})
              | ({"schedule": self.search.schedule.as_dict()} if self.search.schedule else {}),
            "objective": {"metric": list(self.metrics), "direction": list(self.directions),
                          "at": self.at},
            "seed": self.seed,
            "constraints": dict(self.constraints),
        }
