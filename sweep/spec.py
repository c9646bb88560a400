"""Study files: read YAML as data, apply ``--set`` overrides, validate, hand out a StudySpec.

Nothing here imports Keras or touches storage, so a malformed study is rejected in well under
a second and before anything is written anywhere.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sweep.data import DATASETS
from sweep.errors import SpecError
from sweep.fields import (
    REQUIRED, Bad, boolean, choice, int_list, integer, number, one_or_list, optional, text,
)
from sweep.space import PRUNERS, ChoiceParam, Param, RangeParam

STUDIES_DIR = Path(__file__).resolve().parent.parent / "studies"
METRICS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_accuracy", "train_loss",
           "roc_auc", "param_count")
DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("grid", "random", "tpe")

# section -> key -> (validator, default). The keys are the words used in study files.
SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    "dataset": {
        "name": (choice(*DATASETS), REQUIRED),
        "validation_split": (number(0, 1, low_open=True, high_open=True), 0.1),
        "label_mode": (choice("fine", "coarse"), "fine"),  # cifar100 only
        "path": (optional(text()), None),  # folder / npz only
        "max_train": (optional(integer(1)), None),  # keep a seeded sample of N training images
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
        "padding": (choice("valid", "same"), "valid"),
        "dropout": (number(0, 1, high_open=True), 0.0),
        "batch_norm": (boolean, False),
        "head": (choice("flatten", "gap"), "flatten"),  # gap: 1x1 conv to classes + global avg
        "dense": (int_list(1, allow_empty=True), [64]),  # hidden dense units (flatten head)
        # A KerasTuner build(hp) instead of the fields above (see hypermodel.py)
        "hypermodel": (optional(text(r"[^:]+\.py:[A-Za-z_]\w*", "path/to/file.py:function")),
                       None),
    },
    "training": {
        "optimizer": (choice("adam", "sgd", "rmsprop"), "adam"),
        "learning_rate": (number(0, low_open=True), 0.001),  # per step, at epoch 1
        "momentum": (number(0, 1, high_open=True), 0.0),  # sgd and rmsprop
        # constant; inverse_time: lr / (1 + decay * (epoch - 1)); cosine: to 0 at the last epoch
        "schedule": (choice("constant", "inverse_time", "cosine"), "constant"),
        "decay": (number(0), 0.0),  # inverse_time only
        "batch_size": (integer(1), 32),
        "epochs": (integer(1), 10),
        "stop_at_loss": (optional(number(0, low_open=True)), None),  # stop when train loss <=
        "snapshots": (optional(int_list(1, allow_empty=False)), None),  # default: [epochs]
        "tensorboard": (boolean, False),  # TensorBoard logs per trial (logging only)
    },
    "constraints": {
        "max_params": (optional(integer(1)), None),  # reject larger models before training
    },
    "objective": {
        # one metric, or a list for a multi-objective study (a Pareto front)
        "metric": (one_or_list(choice(*METRICS)), ["val_accuracy"]),
        "direction": (optional(one_or_list(choice(*DIRECTIONS))), None),
    },
    "search": {
        "sampler": (choice(*SAMPLERS), "grid"),
        "params": (None, {}),  # validated by _parse_params
        "n_trials": (optional(integer(1)), None),
        "pruner": (choice(*PRUNERS), "none"),  # stop hopeless trials early (space.make_pruner)
    },
}
TOP = {
    "name": (text(r"[A-Za-z0-9_.-]+", "a name of letters, digits, '_', '-', '.'"), REQUIRED),
    "description": (text(), ""),
    "seed": (integer(0), 0),
}
# Search keys may point at any leaf of these sections, or at the top-level seed.
SEARCHABLE = {f"{s}.{k}" for s in ("model", "training") for k in SCHEMA[s]} | {
    "dataset.validation_split",
    "dataset.max_train",
    "seed",
} - {"model.hypermodel"}


@dataclass(frozen=True)
class SearchSpec:
    sampler: str
    params: tuple[Param, ...]
    n_trials: int | None  # None for grid: the grid's size
    pruner: str = "none"


@dataclass(frozen=True)
class StudySpec:
    """A validated study. ``config`` holds the dataset/model/training sections, defaults filled."""

    name: str
    description: str
    source: str
    config: dict
    search: SearchSpec
    metrics: tuple[str, ...]  # one per objective
    directions: tuple[str, ...]
    seed: int
    constraints: dict

    @property
    def metric(self) -> str:
        """The first objective: reported per epoch (single-objective studies only)."""
        return self.metrics[0]

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    def as_dict(self) -> dict:
        """The resolved study, for provenance and for detecting a changed study on resume."""
        return {
            "name": self.name,
            **copy.deepcopy(self.config),
            "search": {
                "sampler": self.search.sampler,
                "params": {p.name: p.describe() for p in self.search.params},
                "n_trials": self.search.n_trials,
            } | ({"pruner": self.search.pruner} if self.search.pruner != "none" else {}),
            "objective": {"metric": list(self.metrics), "direction": list(self.directions)},
            "seed": self.seed,
            "constraints": dict(self.constraints),
        }


def find_study(name_or_path: str) -> Path:
    """A study name (a file in ``studies/``) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        candidate = path
    else:
        candidate = STUDIES_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))
        raise SpecError(
            f"{name_or_path}: no such study file (looked for {candidate}); "
            f"studies in {STUDIES_DIR}: {', '.join(known) or 'none'}"
        )
    return candidate


def load_study(name_or_path: str, overrides: list[str] = ()) -> StudySpec:
    """Read, override and validate a study file. Raises SpecError with one actionable line."""
    path = find_study(name_or_path)
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.constructor.ConstructorError as err:
        raise SpecError(
            f"{source}: line {err.problem_mark.line + 1}: YAML tag not allowed "
            f"({err.problem.split(' ')[-1] if err.problem else 'python object'}); "
            "study files are plain data"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(f"{source}: {where}invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: expected a mapping of study fields, got {type(raw).__name__}")
    for item in overrides:
        _apply_override(raw, item, source)
    return validate(raw, source)


def _apply_override(raw: dict, item: str, source: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SpecError(f"{source}: --set {item}: expected dotted.path=value")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    parts = key.split(".")
    if parts[:2] == ["search", "params"] and len(parts) > 2:
        parts = ["search", "params", ".".join(parts[2:])]
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SpecError(f"{source}: --set {key}: '{part}' is not a section")
    node[parts[-1]] = parsed


def validate(raw: dict, source: str) -> StudySpec:
    """Validate the plain study dict; every problem names ``source`` and the dotted field."""

    def fail(field: str, message: str):
        raise SpecError(f"{source}: {field}: {message}")

    _reject_unknown(raw, list(TOP) + list(SCHEMA), "", fail)
    top = {k: _field(raw, k, TOP[k], k, fail) for k in TOP}
    sections = {}
    for section, fields in SCHEMA.items():
        given = raw.get(section, {})
        if given is None:
            given = {}
        if not isinstance(given, dict):
            fail(section, f"expected a mapping, got {given!r}")
        _reject_unknown(given, list(fields), section + ".", fail)
        sections[section] = {
            k: _field(given, k, spec, f"{section}.{k}", fail)
            for k, spec in fields.items()
            if spec[0] is not None
        }
    search = sections.pop("search")
    objective = sections.pop("objective")
    constraints = sections.pop("constraints")
    config = sections
    params = _parse_params(raw.get("search", {}) or {}, search["sampler"], fail)
    if config["model"].pop("hypermodel") is not None:
        from sweep.hypermodel import study_params

        params = study_params(raw, config, params, search["sampler"], source)
    _check_dataset(config["dataset"], fail)
    _check_snapshots(config["training"], params, fail)
    _check_training(config["training"], params, fail)

    if search["sampler"] == "grid":
        if search["n_trials"] is not None:
            fail("search.n_trials", "not used by the grid sampler (the grid sets the count)")
    elif search["n_trials"] is None:
        fail("search.n_trials", f"expected an integer >= 1 for the {search['sampler']} sampler")
    metrics = objective["metric"]
    directions = objective["direction"] or [
        "minimize" if m.endswith("loss") or m == "param_count" else "maximize" for m in metrics
    ]
    if len(directions) != len(metrics):
        fail("objective.direction", f"expected one direction per metric ({len(metrics)}), "
                                    f"got {objective['direction']!r}")
    if len(set(metrics)) != len(metrics):
        fail("objective.metric", f"expected distinct metrics, got {metrics!r}")
    if len(metrics) > 1 and search["pruner"] != "none":
        fail("search.pruner", "Optuna prunes single-objective studies only; use pruner: none "
                              f"with {len(metrics)} objective metrics")
    return StudySpec(
        name=top["name"],
        description=top["description"],
        source=source,
        config=config,
        search=SearchSpec(search["sampler"], params, search["n_trials"], search["pruner"]),
        metrics=tuple(metrics),
        directions=tuple(directions),
        seed=top["seed"],
        constraints=constraints,
    )


def _field(given: dict, key: str, spec, field: str, fail):
    check, default = spec
    if key not in given:
        if default is REQUIRED:
            fail(field, "missing (required)")
        return copy.deepcopy(default)
    try:
        return check(given[key])
    except Bad as bad:
        fail(field, f"expected {bad}, got {given[key]!r}")


def _reject_unknown(given: dict, known: list[str], prefix: str, fail) -> None:
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of {', '.join(known)}"
            fail(f"{prefix}{key}", "unknown key" + hint)


def _field_check(dotted: str):
    if dotted == "seed":
        return TOP["seed"][0]
    section, key = dotted.split(".", 1)
    return SCHEMA[section][key][0]


def _parse_params(search: dict, sampler: str, fail) -> tuple[Param, ...]:
    given = search.get("params") or {}
    if not isinstance(given, dict):
        fail("search.params", f"expected a mapping of dotted.path: values, got {given!r}")
    params = []
    for name, values in given.items():
        field = f"search.params.{name}"
        if name not in SEARCHABLE:
            close = difflib.get_close_matches(str(name), sorted(SEARCHABLE), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            fail(field, f"does not point at a searchable field of the study{hint}")
        check = _field_check(name)
        if isinstance(values, list):
            if not values:
                fail(field, "empty list; expected at least one value")
            try:
                checked = [check(v) for v in values]
            except Bad as bad:
                fail(field, f"every value must be {bad}, got {values!r}")
            if len({repr(v) for v in checked}) != len(checked):
                fail(field, f"duplicate values in {values!r}")
            params.append(ChoiceParam(name, tuple(checked)))
        elif isinstance(values, dict):
            params.append(_parse_range(name, values, check, sampler, fail))
        else:
            fail(field, f"expected a list of values or {{low, high}}, got {values!r}")
    return tuple(params)


def _parse_range(name: str, given: dict, check, sampler: str, fail) -> RangeParam:
    field = f"search.params.{name}"
    if sampler == "grid":
        fail(field, "a range needs the random or tpe sampler; the grid sampler takes a list")
    _reject_unknown(given, ["low", "high", "log", "step"], field + ".", fail)
    if "low" not in given or "high" not in given:
        fail(field, "a range needs both low and high")
    try:
        low, high = check(given["low"]), check(given["high"])
    except Bad as bad:
        fail(field, f"low and high must be {bad}, got {given['low']!r}, {given['high']!r}")
    if not isinstance(low, (int, float)) or low >= high:
        fail(field, f"expected numbers with low < high, got {given['low']!r}, {given['high']!r}")
    log = given.get("log", False)
    if not isinstance(log, bool) or (log and low <= 0):
        fail(field + ".log", "expected true or false, and low > 0 for a log range")
    step = given.get("step")
    if step is not None and (not isinstance(step, (int, float)) or step <= 0 or log):
        fail(field + ".step", "expected a positive number, and no step with log: true")
    is_int = isinstance(check(given["low"]), int) and isinstance(check(given["high"]), int)
    return RangeParam(name, low, high, log=log, step=step, integer=is_int)


def _check_dataset(dataset: dict, fail) -> None:
    needs_path = dataset["name"] in ("folder", "npz")
    if needs_path and not dataset["path"]:
        fail("dataset.path", f"required for dataset {dataset['name']}")
    if not needs_path and dataset["path"]:
        fail("dataset.path", f"only folder and npz datasets take a path, not {dataset['name']}")


def _check_snapshots(training: dict, params: tuple[Param, ...], fail) -> None:
    snapshots = training["snapshots"]
    if snapshots is None:
        return
    epochs = [training["epochs"]]
    for p in params:
        if p.name == "training.epochs":
            epochs = list(p.values) if isinstance(p, ChoiceParam) else [p.low]
    if sorted(set(snapshots)) != snapshots:
        fail("training.snapshots", f"expected increasing epochs, got {snapshots}")
    if snapshots[-1] > min(epochs):
        fail(
            "training.snapshots",
            f"snapshot at epoch {snapshots[-1]} is past the last epoch ({min(epochs)})",
        )


def _check_training(training: dict, params: tuple[Param, ...], fail) -> None:
    """Settings that only mean something with another setting's fixed value."""
    searched = {p.name for p in params}

    def fixed(key, value):
        return f"training.{key}" not in searched and training[key] == value

    if (training["momentum"] or "training.momentum" in searched) and fixed("optimizer", "adam"):
        fail("training.momentum", "applies to the sgd and rmsprop optimizers, not adam")
    if (training["decay"] or "training.decay" in searched) and not (
        "training.schedule" in searched or training["schedule"] == "inverse_time"
    ):
        fail("training.decay", "applies to schedule: inverse_time only")
