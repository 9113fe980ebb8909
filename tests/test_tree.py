"""The unit tree: an arborescence with subtree / ancestors / children-at-level queries."""

from __future__ import annotations

import networkx as nx
import pytest
from sqlalchemy import Engine

from matrix.blueprint import Blueprint
from matrix.errors import TreeError, UnknownUnit
from matrix.tree import UnitTree, tree_faults


def test_queries(province_db: Engine, bp: Blueprint) -> None:
    tree = UnitTree.load(province_db, bp.level_keys)
    assert tree.root == "P" and len(tree) == 11
    assert tree.children("C1") == ["K1", "K2", "K3"]
    assert tree.parent("K2S1") == "K2" and tree.parent("P") is None
    assert tree.ancestors("K2S1") == ["K2", "C1", "P"]
    assert list(tree.subtree("K2")) == ["K2", "K2S1", "K2S2"]
    assert tree.at_level("C1", "school") == ["K1S1", "K1S2", "K2S1", "K2S2", "K3S1", "K3S2"]
    assert tree.is_within("K2S1", "C1") and not tree.is_within("K2S1", "K1")
    assert tree.name("K1") == "乙1县" and tree.level("K1") == "county"


def test_unknown_code_is_a_clear_error(province_db: Engine, bp: Blueprint) -> None:
    tree = UnitTree.load(province_db, bp.level_keys)
    with pytest.raises(UnknownUnit, match="找不到单位代码 X"):
        tree.children("X")


def test_printed_lines_count_what_lies_below(province_db: Engine, bp: Blueprint) -> None:
    tree = UnitTree.load(province_db, bp.level_keys)
    lines = tree.lines(depth=2)
    assert [(line.depth, line.code) for line in lines] == [
        (0, "P"),
        (1, "C1"),
        (2, "K1"),
        (2, "K2"),
        (2, "K3"),
    ]
    assert lines[0].below == {"city": 1, "county": 3, "school": 6}
    assert lines[2].below == {"school": 2}


def test_a_forest_or_a_cycle_is_rejected() -> None:
    levels = ["province", "city"]
    with pytest.raises(TreeError, match="顶层单位 2 个"):
        UnitTree.from_rows([("A", "甲", "province", None), ("B", "乙", "province", None)], levels)
    graph: nx.DiGraph = nx.DiGraph([("A", "B"), ("B", "A")])
    with pytest.raises(TreeError):
        UnitTree(graph, levels)
    with pytest.raises(TreeError, match="还没有任何单位"):
        UnitTree.from_rows([], levels)


def test_a_loop_or_a_second_parent_is_named() -> None:
    levels = ["province", "city"]
    rows = [("P", "省", "province", None), ("A", "甲", "city", "B"), ("B", "乙", "city", "A")]
    with pytest.raises(TreeError, match="上级关系成环：A → B → A"):
        UnitTree.from_rows(rows, levels)
    graph: nx.DiGraph = nx.DiGraph([("P", "A"), ("P", "B"), ("A", "C"), ("B", "C")])
    with pytest.raises(TreeError, match="C 有多个上级"):
        UnitTree(graph, levels)


def test_tree_faults_finds_each_kind_once() -> None:
    faults = tree_faults(
        {"P": None, "Q": None, "A": "P", "B": "X", "C": "D", "D": "E", "E": "C", "F": "C"}
    )
    assert faults.roots == ["P", "Q"] and faults.orphans == ["B"]
    assert faults.cycles == [["C", "D", "E"]]
    assert faults and not tree_faults({"P": None, "A": "P", "B": "A"})
