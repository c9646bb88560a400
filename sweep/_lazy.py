"""Lazy re-exports for the packages whose modules import Keras or Optuna: the package's names
are listed (``__all__``) and each module is imported on first use (PEP 562 ``__getattr__``),
so importing one light module of the package does not load TensorFlow."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, list[str]]:
    """``(__getattr__, __all__)`` for ``package``; ``exports`` maps a name to its module."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__, sorted(exports)


def resolve(target: str) -> Any:
    """The object a dotted path names (``"optuna.samplers.TPESampler"``), imported now: the
    plug-in registries (``sweep.study.plugins``) name their implementations this way."""
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)
