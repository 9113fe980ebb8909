"""qunmatrix's domain core: units, roster, blueprint, tree, storage. Knows nothing of WeChat."""

from typing import TYPE_CHECKING

from matrix.lazy import exports

if TYPE_CHECKING:  # the names for type checkers; at run time they load on first use
    from matrix.blueprint import Blueprint, GroupSpec, Selector, load_blueprint
    from matrix.errors import (
        BlueprintError,
        MatrixError,
        Problem,
        RosterError,
        TreeError,
        UnknownUnit,
    )
    from matrix.tree import UnitTree

# importing the package must stay cheap: `qunmatrix --help` would otherwise load every
# module below (and SQLAlchemy, networkx …) before it prints a line
_HOME = {
    "Blueprint": "matrix.blueprint",
    "GroupSpec": "matrix.blueprint",
    "Selector": "matrix.blueprint",
    "load_blueprint": "matrix.blueprint",
    "BlueprintError": "matrix.errors",
    "MatrixError": "matrix.errors",
    "Problem": "matrix.errors",
    "RosterError": "matrix.errors",
    "TreeError": "matrix.errors",
    "UnknownUnit": "matrix.errors",
    "UnitTree": "matrix.tree",
}

__getattr__ = exports(__name__, _HOME)


__all__ = [
    "Blueprint",
    "BlueprintError",
    "GroupSpec",
    "MatrixError",
    "Problem",
    "RosterError",
    "Selector",
    "TreeError",
    "UnitTree",
    "UnknownUnit",
    "load_blueprint",
]
