"""qunmatrix's domain core: units, roster, blueprint, tree, storage. Knows nothing of WeChat."""

from matrix.blueprint import Blueprint, GroupSpec, Selector, load_blueprint
from matrix.errors import BlueprintError, MatrixError, Problem, RosterError, TreeError, UnknownUnit
from matrix.tree import UnitTree

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
