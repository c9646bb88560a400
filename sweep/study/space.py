"""The search space as plain data: parameters, grid points, and values set into a config.

No Optuna here: ``sweep.trial.sampling`` asks Optuna for values of these params. What Optuna
stores is each value's *stored form* (``ChoiceParam.encode``): Optuna keeps only
None/bool/int/float/str choices, so a list value (``model.filters: [[16, 16], [32, 32]]``) is
stored as its JSON text, e.g. ``"[16, 16]"``, and decoded by looking it up among the axis's
own values, so an axis mixing types (``model.pool_after: [null, [1, 2]]``) round-trips exactly.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sweep.study.schema import SUBFIELDS, default_of

if TYPE_CHECKING:
    from sweep.study.spec import StudySpec

# Fields that say how long or how visibly a trial trains, not what it is: a study may raise its
# epochs (trials continue where they stopped) or change them without retraining anything.
RUN_FIELDS = ("training.epochs", "training.snapshots", "training.tensorboard")


@dataclass(frozen=True)
class ChoiceParam:
    """A list of values: the grid's axis, or a categorical choice for random/tpe."""

    name: str  # dotted path into the study, e.g. "model.kernel"
    values: tuple
    conditions: tuple = ()  # ((parent name, allowed values), ...): see ``active``
    # Optuna's choices, in stored form: every value the study ever had, in order of first use
    # (a stored trial's value is its index here, so a grown axis only appends); () = values.
    choices: tuple = ()

    def describe(self) -> list | dict:
        if self.conditions:
            return {"values": list(self.values), "when": _describe_when(self.conditions)}
        return list(self.values)

    @staticmethod
    def encode(value: Any) -> Any:
        """A value in the form Optuna stores: lists as their JSON text, scalars as they are."""
        return json.dumps(value) if isinstance(value, (list, dict)) else value

    def optuna_choices(self) -> tuple:
        return self.choices or tuple(self.encode(v) for v in self.values)

    def decode(self, stored: Any) -> Any:
        """The axis value whose stored form is ``stored`` (the same type, not only equal:
        ``True`` is not ``1``)."""
        for value in self.values:
            encoded = self.encode(value)
            if type(encoded) is type(stored) and encoded == stored:
                return value
        raise ValueError(f"{self.name}: {stored!r} is not one of {list(self.values)!r}")


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

    @staticmethod
    def encode(value: Any) -> Any:
        return value

    def decode(self, stored: Any) -> Any:
        return stored


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


def grid_points(params: tuple[ChoiceParam, ...]) -> list[dict]:
    """Every combination of the choice params, in a stable order (the first param varies
    slowest). A conditional param is left out of the points where it is not active, so the
    combinations that differ only in it are one point."""
    points, seen = [], set()
    for combo in itertools.product(*(p.values for p in params)):
        point: dict[str, Any] = {}
        for p, value in zip(params, combo, strict=True):
            if active(p, point):
                point[p.name] = value
        key = point_key(encode(params, point))
        if key not in seen:
            seen.add(key)
            points.append(point)
    return points


def encode(params: tuple[Param, ...], point: dict) -> dict:
    """A point in the form Optuna stores its params (see ``ChoiceParam.encode``)."""
    return {p.name: p.encode(point[p.name]) for p in params if p.name in point}


def point_key(stored: dict) -> str:
    """A canonical string for a point (in stored form), to tell whether it was already run."""
    return json.dumps(stored, sort_keys=True)


def resolve(config: dict, values: dict) -> dict:
    """The trial's full config: the study's sections with the searched values set in.

    A searched ``seed`` lands at ``config["seed"]``.
    """
    return _set_in(copy.deepcopy(config), values, copy_path=False)


def _set_in(out: dict, values: dict, copy_path: bool) -> dict:
    """``values`` set into ``out`` (changed in place); with ``copy_path``, ``out`` is a
    shallow copy and each mapping on a value's path is copied before it is changed, the rest
    shared with the original (to read, not to change: ``shared_trial_config``)."""
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = out
        for i, part in enumerate(parents):
            if node[part] is None:  # a mapping field left null, one of whose fields is searched
                node[part] = {k: d for k, (_, d) in SUBFIELDS[".".join(parents[: i + 1])].items()}
            elif copy_path:
                node[part] = dict(node[part])
            node = node[part]
        node[leaf] = value
    return out


def flatten(node: dict, prefix: str = "") -> dict:
    """A nested config as ``{dotted.path: value}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def value_at(config: dict, dotted: str) -> Any:
    """The value at a dotted path of a config (None where there is none)."""
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def trial_config(config: dict, values: dict, seed: int) -> tuple[dict, int]:
    """A trial's full config and seed: the study's sections with the searched values set in
    (a searched ``seed`` overrides the study's)."""
    resolved = resolve(config, values)
    return resolved, resolved.pop("seed", seed)


def shared_trial_config(config: dict, values: dict, seed: int) -> tuple[dict, int]:
    """``trial_config(config, values, seed)`` without copying all of ``config`` (the study's
    sections): the mappings off the values' paths are ``config``'s own, to read, not to
    change (for thousands of stored trials at a time)."""
    resolved = _set_in(dict(config), values, copy_path=True)
    return {k: v for k, v in resolved.items() if k != "seed"}, resolved.get("seed", seed)


def identity(config: dict, seed: int, axes: frozenset | set = frozenset()) -> str:
    """What a trial means, as a key: its config and seed, less the run fields (unless they
    are axes) and the fields left at their defaults. Two trials with the same identity train
    the same model the same way; so a point keeps its identity when an axis is added at the
    old fixed value, when the epochs grow, or when a newer sweep adds a field."""
    return identity_of(identity_fields(config, seed, axes))


def identity_fields(config: dict, seed: int, axes: frozenset | set = frozenset()) -> dict:
    """What ``identity`` hashes: the config's dotted fields it keeps, and ``seed``."""
    flat = {k: v for k, v in flatten(config).items()
            if (k not in RUN_FIELDS or k in axes) and v != default_of(k)}
    return flat | {"seed": seed}


def identity_of(fields: dict) -> str:
    """``identity`` of ``identity_fields``' result."""
    text = json.dumps(fields, sort_keys=True, default=str)
    return "cfg:" + hashlib.sha1(text.encode()).hexdigest()[:24]


class PointFields:
    """``identity_fields(*trial_config(config, values, seed), axes)`` for the values of many
    trials of one study: the study's own fields are flattened once, and each trial's values
    set into a copy of them (where a value would add or replace a mapping, the long way)."""

    def __init__(self, config: dict, seed: int, axes: frozenset | set):
        self._config, self._seed, self._axes = config, seed, axes
        self._base = identity_fields(config, seed, axes)
        flat = flatten(config)
        self._plain = {  # axes whose value replaces one leaf of the flat config
            name for name in axes if name == "seed" or (
                "." in name and isinstance(value_at(config, name.rpartition(".")[0]), dict)
                and not isinstance(value_at(config, name), dict)
                and not any(k.startswith(name + ".") for k in flat))}

    def of(self, values: dict) -> dict:
        if not all(k in self._plain and not isinstance(v, dict) for k, v in values.items()):
            return identity_fields(*shared_trial_config(self._config, values, self._seed),
                                   self._axes)
        fields = dict(self._base)
        for name, value in values.items():
            if name == "seed":
                fields["seed"] = value
            elif value != default_of(name):  # an axis: kept unless at its default
                fields[name] = value
            else:
                fields.pop(name, None)
        return fields


def point_text(values: dict) -> str:
    """A point in words, as progress lines, legends and captions name it: ``pooling=max
    kernel=3`` (each param by the last part of its dotted name, unless two params share it)."""
    short = [name.rsplit(".", 1)[-1] for name in values]
    names = [s if short.count(s) == 1 else name for s, name in zip(short, values, strict=True)]
    return " ".join(f"{n}={v}" for n, v in zip(names, values.values(), strict=True))


def study_points(spec: StudySpec) -> dict[str, dict | None]:
    """The study's points by claim key: grid points (in stored form) keyed by what each trial
    means (``identity``: the same key after an axis is added at the old fixed value, or the
    epochs grow), or ``n_trials`` numbered slots (``"#0"``, ...) whose values the sampler
    draws."""
    if not spec.search.enumerates:
        assert spec.search.n_trials is not None  # load requires it of random and tpe
        return {f"#{i}": None for i in range(spec.search.n_trials)}
    # A sampler that lists its points takes lists only (search_section._parse_range).
    params = cast("tuple[ChoiceParam, ...]", spec.search.params)
    axes = frozenset(p.name for p in params)
    points: dict[str, dict | None] = {}
    for point in grid_points(params):
        config, seed = trial_config(spec.config, point, spec.seed)
        points[identity(config, seed, axes)] = encode(params, point)
    return points
