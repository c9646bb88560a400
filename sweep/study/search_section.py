"""A study file's ``search`` section: the parameters searched (a list of values, or a range
for the random and tpe samplers) and ``search.repeats`` as the seed axis it means. Each
problem is one ``fail(field, message)`` call, as everywhere in ``sweep.study.load``."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import NoReturn

from sweep.study.fields import Bad, Check
from sweep.study.plugins import SAMPLERS
from sweep.study.schema import SEARCHABLE, field_spec
from sweep.study.space import ChoiceParam, Param, RangeParam

Fail = Callable[[str, str], NoReturn]  # fail(field, message): one line naming the field

def reject_unknown(given: dict, known: list[str], prefix: str, fail: Fail) -> None:
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else (
                f"; expected one of {', '.join(known)}")
            fail(f"{prefix}{key}", "unknown key" + hint)


def parse_params(search: dict, sampler: str, fail: Fail) -> tuple[Param, ...]:
    given = search.get("params") or {}
    if not isinstance(given, dict):
        fail("search.params", f"expected a mapping of dotted.path: values, got {given!r}")
    params: list[Param] = []
    for name, values in given.items():
        field = f"search.params.{name}"
        if name not in SEARCHABLE:
            close = difflib.get_close_matches(str(name), sorted(SEARCHABLE), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            fail(field, f"does not point at a searchable field of the study{hint}")
        parent = name.rpartition(".")[0]
        if parent in given:
            fail(field, f"{parent} is searched too; search one or the other")
        spec = field_spec(name)
        assert spec is not None  # every searchable field is one of the schema's
        check = spec[0]
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


def with_repeats(params: tuple[Param, ...], search: dict, seed: int,
                  fail: Fail) -> tuple[Param, ...]:
    """``search.repeats: N`` as the grid axis it means: ``seed`` over seed .. seed + N - 1."""
    if search["repeats"] > 1 and not SAMPLERS[search["sampler"]].enumerates:
        fail("search.repeats", f"needs the grid sampler ({search['sampler']} draws each "
                               "trial's values); search seed as a parameter instead")
    if search["repeats"] > 1 and any(p.name == "seed" for p in params):
        fail("search.repeats", "seed is searched already (search.params.seed); give one")
    extra = (ChoiceParam("seed", tuple(range(seed, seed + search["repeats"]))),)
    return params if search["repeats"] == 1 else (*params, *extra)


def check_schedule(search: dict, objective: dict, params: tuple[Param, ...], training: dict,
                   hypermodel: str | None, fail: Fail) -> None:
    """``search.schedule`` against what it cannot halve: each refusal one line."""
    halving = search["schedule"]
    if halving is None:
        return
    if search["pruner"] != "none":
        fail("search.pruner", "a schedule stops points itself; use pruner: none with "
                              "search.schedule")
    if len(objective["metric"]) > 1:
        fail("search.schedule", f"halving ranks points by one metric, not "
                                f"{len(objective['metric'])} objective metrics")
    if hypermodel is not None:
        fail("search.schedule", "a model.hypermodel's own fit may train other epochs than a "
                                "rung gives it; halve a study of sweep's model fields")
    if any(p.name == "training.epochs" for p in params):
        fail("search.params.training.epochs", "the schedule gives each point its epochs "
                                              "(rungs up to training.epochs); give one")
    if halving.min_epochs >= training["epochs"]:
        fail("search.schedule.min_epochs", f"expected fewer than training.epochs "
                                           f"({training['epochs']}), got {halving.min_epochs}")


def _parse_range(name: str, given: dict, check: Check, sampler: str,
                 fail: Fail) -> RangeParam:
    field = f"search.params.{name}"
    if SAMPLERS[sampler].enumerates:
        fail(field, f"a range needs the random or tpe sampler; the {sampler} sampler takes a list")
    reject_unknown(given, ["low", "high", "log", "step"], field + ".", fail)
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
