"""Field validators for study files: each returns the normalised value or raises Bad(expected).

Plain functions over plain YAML values, so a spec section is a dict of (validator, default).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], Any]  # a validator: the normalised value, or Bad(expected)


class Bad(Exception):
    """A value does not match its field; the argument says what was expected. ``key`` names
    the entry of a mapping field that is wrong (``training.augment`` -> ``flip``)."""

    def __init__(self, expected: str, key: str | None = None):
        super().__init__(expected)
        self.key = key


def integer(low: int | None = None, high: int | None = None) -> Check:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise Bad("an integer" + _bounds(low, high))
        if (low is not None and v < low) or (high is not None and v > high):
            raise Bad("an integer" + _bounds(low, high))
        return v

    return check


def number(low: float, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Check:
    def check(v: Any) -> float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if ok:
            ok = (v > low if low_open else v >= low) and (
                high is None or (v < high if high_open else v <= high)
            )
        if not ok:
            lo, hi = "(" if low_open else "[", ")" if high_open else "]"
            raise Bad(f"a number in {lo}{low}, {'inf' if high is None else high}{hi}")
        return float(v)

    return check


def choice(*options: Any) -> Check:
    def check(v: Any) -> Any:
        if v not in options:
            raise Bad("one of " + ", ".join(map(str, options)))
        return v

    return check


def text(pattern: str | None = None, what: str = "a string") -> Check:
    def check(v: Any) -> str:
        if not isinstance(v, str) or (pattern and not re.fullmatch(pattern, v)):
            raise Bad(what)
        return v

    return check


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Bad("true or false")
    return v


def int_list(low: int, allow_empty: bool) -> Check:
    def check(v: Any) -> list[int]:
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v]
        what = f"a {'' if allow_empty else 'non-empty '}list of integers >= {low}"
        if not isinstance(v, list) or (not v and not allow_empty):
            raise Bad(what)
        try:
            return [integer(low)(x) for x in v]
        except Bad:
            raise Bad(what) from None

    return check


def one_or_list(check: Check) -> Check:
    """One value, or a non-empty list of values; always returns a list."""

    def checked(v: Any) -> list[Any]:
        values = v if isinstance(v, list) and v else [v]
        try:
            return [check(x) for x in values]
        except Bad as bad:
            raise Bad(f"{bad}, or a list of them") from None

    return checked


def per_block(check: Check) -> Check:
    """One value for every conv block, or a non-empty list of them, one per block (a list is
    kept a list, one value stays one value: a stored study reads the same)."""

    def checked(v: Any) -> Any:
        try:
            if not isinstance(v, list):
                return check(v)
            if not v:
                raise Bad("a value")
            return [check(x) for x in v]
        except Bad as bad:
            raise Bad(f"{bad}, or a list of them (one per conv block)") from None

    return checked


def mapping(fields: dict[str, tuple[Check, Any]]) -> Check:
    """A mapping of its own fields (``{key: (validator, default)}``), missing keys at their
    defaults. Every key at its default gives None: nothing set, as if the field were null."""

    def check(v: Any) -> dict[str, Any] | None:
        if not isinstance(v, dict):
            raise Bad("a mapping with keys " + ", ".join(fields) + ", or null")
        for key in v:
            if key not in fields:
                raise Bad("one of the keys " + ", ".join(fields), key=str(key))
        out = {}
        for key, (validate, default) in fields.items():
            try:
                out[key] = validate(v[key]) if key in v else default
            except Bad as bad:
                raise Bad(str(bad), key=key) from None
        return None if all(out[k] == d for k, (_, d) in fields.items()) else out

    return check


def optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    return f" >= {low}" if low is not None else (f" <= {high}" if high is not None else "")


REQUIRED = object()  # the default of a field a study must give
