"""``search.schedule``: successive halving (asynchronous, ASHA), as plain data.

Every point trains to the first rung (``min_epochs``); a point among the best ``1/factor`` of
the points that finished a rung is promoted to the next one (``min_epochs * factor**k``, the
last one the study's ``training.epochs``) and continues from its checkpoint there. Which
point a worker takes is decided where claims are (``sweep.store.halving``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweep.study.fields import Bad, integer

KINDS = ("halving",)
_KEYS = {"kind": None, "min_epochs": integer(1), "factor": integer(2)}


@dataclass(frozen=True)
class Halving:
    """The rungs' arithmetic: ``min_epochs`` (the first rung) and ``factor`` (each rung's
    epochs times this, and the share of a rung promoted: its best ``1/factor``)."""

    min_epochs: int = 1
    factor: int = 3

    def rungs(self, epochs: int) -> tuple[int, ...]:
        """The epochs each rung trains to, the last ``epochs``: ``min_epochs``,
        ``min_epochs * factor``, ... below ``epochs``, then ``epochs``."""
        rungs, at = [], self.min_epochs
        while at < epochs:
            rungs.append(at)
            at *= self.factor
        return (*rungs, epochs)

    def as_dict(self) -> dict:
        return {"kind": "halving", "min_epochs": self.min_epochs, "factor": self.factor}


def schedule(v: Any) -> Halving | None:
    """The schema's check of ``search.schedule``: null (every point trains every epoch) or
    ``{kind: halving, min_epochs: R, factor: F}`` (R 1 and F 3 when left out)."""
    if v is None:
        return None
    expected = "a mapping {kind: halving, min_epochs: R, factor: F}, or null"
    if not isinstance(v, dict):
        raise Bad(expected)
    for key in v:
        if key not in _KEYS:
            raise Bad("one of the keys " + ", ".join(_KEYS), key=str(key))
    if v.get("kind") not in KINDS:
        raise Bad("one of " + ", ".join(KINDS), key="kind")
    given = {}
    for key, check in _KEYS.items():
        if check is not None and key in v:
            try:
                given[key] = check(v[key])
            except Bad as bad:
                raise Bad(str(bad), key=key) from None
    return Halving(**given)
