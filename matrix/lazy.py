"""Packages that export their modules' names without importing them: importing ``matrix`` (or
``matrix.relay`` for its options) must stay cheap, or `qunmatrix --help` loads SQLAlchemy and
networkx before it prints a line."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` giving each name of ``homes`` (name → module) on first use."""

    def __getattr__(name: str) -> Any:
        if name in homes:
            return getattr(importlib.import_module(homes[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
