"""The tree of units as a networkx DiGraph (parent → child), checked to be an arborescence.

``tree_faults`` is the one check that units form a tree (one root, every parent present, no
loop of parents): the roster import reports its faults by file and row, ``UnitTree`` refuses
to load a tree that has any.

>>> t = UnitTree.from_rows(
...     [("1", "某省", "province", None), ("11", "甲市", "city", "1"), ("111", "乙县", "county", "11")],
...     ["province", "city", "county"],
... )
>>> t.root, t.children("1"), t.ancestors("111")
('1', ['11'], ['11', '1'])
>>> t.counts_by_level("1")
{'province': 1, 'city': 1, 'county': 1}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import networkx as nx
from sqlalchemy import ColumnElement, Connection, Engine, and_, func, select

from matrix.bulk import no_gc
from matrix.db import raw_rows
from matrix.errors import TreeError, UnknownUnit
from matrix.models import Unit
from matrix.tables import PERSON, UNIT

UnitRow = tuple[str, str, str, str | None]  # code, name, level, parent_code


def within_path(path: ColumnElement[str], prefix: str, dialect: str) -> ColumnElement[bool]:
    """SQL condition: a unit ``path`` lies in the subtree whose path is ``prefix`` ("/a/b/").
    On SQLite a range over the binary-ordered index; elsewhere LIKE, because collations such
    as en_US do not order '/' next to the characters that follow it."""
    if dialect == "sqlite":
        return and_(path >= prefix, path < prefix[:-1] + "0")  # '0' sorts right after '/'
    return path.startswith(prefix, autoescape=True)


@dataclass(frozen=True)
class TreeFaults:
    """What keeps units from forming one tree, each list in the order of the units."""

    roots: list[str]  # units without a parent: a tree has exactly one
    orphans: list[str]  # units whose parent is not among the units
    cycles: list[list[str]]  # loops of parents, each from the unit where the walk entered it

    def __bool__(self) -> bool:
        return len(self.roots) != 1 or bool(self.orphans or self.cycles)


def tree_faults(parents: Mapping[str, str | None]) -> TreeFaults:
    """The faults of the units ``parents`` (code → parent code) as one tree, in one pass: each
    unit is walked up once, as far as a unit already known to reach the top.

    >>> tree_faults({"1": None, "11": "1", "12": "9", "2": None, "a": "b", "b": "a"})
    TreeFaults(roots=['1', '2'], orphans=['12'], cycles=[['a', 'b']])
    >>> bool(tree_faults({"1": None, "11": "1"}))
    False
    """
    roots = [code for code, parent in parents.items() if parent is None]
    orphans = [code for code, p in parents.items() if p is not None and p not in parents]
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current walk, 2 = known to end at a top
    for start in parents:
        walk: list[str] = []
        node: str | None = start
        while node is not None and node in parents and state.get(node) is None:
            state[node] = 1
            walk.append(node)
            node = parents[node]
        if node is not None and state.get(node) == 1:
            cycles.append(walk[walk.index(node) :])
        for n in walk:
            state[n] = 2
    return TreeFaults(roots, orphans, cycles)


@dataclass(frozen=True)
class TreeLine:
    """One printed line of the tree: how deep, which unit, and how many units of each level
    lie under it (itself excluded)."""

    depth: int
    code: str
    name: str
    level: str
    below: dict[str, int]


class UnitTree:
    """Units as a DiGraph with ``name`` and ``level`` node attributes."""

    def __init__(self, graph: nx.DiGraph, levels: list[str]) -> None:
        if graph.number_of_nodes() == 0:
            raise TreeError("名册中还没有任何单位", fix="请先用 `qunmatrix import` 导入名册")
        with no_gc():
            parents = {node: next(iter(above), None) for node, above in graph.pred.items()}
            faults = tree_faults(parents)
        # each unit has at most one parent exactly when there is one edge per unit but the roots
        several = graph.number_of_edges() != len(parents) - len(faults.roots)
        if faults or several:
            raise _not_a_tree(graph, faults)
        self.graph = graph
        self.levels = levels
        self.root: str = faults.roots[0]

    @classmethod
    def from_rows(cls, rows: Iterable[UnitRow], levels: list[str]) -> UnitTree:
        rows = rows if isinstance(rows, list) else list(rows)
        graph: nx.DiGraph = nx.DiGraph()
        with no_gc():
            graph.add_nodes_from((c, {"name": n, "level": lv}) for c, n, lv, _ in rows)
            graph.add_edges_from((p, c) for c, _, _, p in rows if p is not None)
        return cls(graph, levels)

    @classmethod
    def load(cls, engine: Engine, levels: list[str]) -> UnitTree:
        """The current (not removed) units from the database."""
        query = select(Unit.code, Unit.name, Unit.level, Unit.parent_code).where(  # type: ignore[call-overload]
            Unit.removed_at.is_(None)  # type: ignore[union-attr]
        )
        with engine.connect() as conn:
            rows = raw_rows(conn, query).fetchall()  # plain tuples: no Row object per unit
        return cls.from_rows(rows, levels)

    def __contains__(self, code: object) -> bool:
        return code in self.graph

    def __len__(self) -> int:
        return int(self.graph.number_of_nodes())

    def _check(self, code: str) -> None:
        if code not in self.graph:
            raise UnknownUnit(code)

    def name(self, code: str) -> str:
        self._check(code)
        return str(self.graph.nodes[code]["name"])

    def level(self, code: str) -> str:
        self._check(code)
        return str(self.graph.nodes[code]["level"])

    def parent(self, code: str) -> str | None:
        self._check(code)
        return next(iter(self.graph.predecessors(code)), None)

    def children(self, code: str) -> list[str]:
        self._check(code)
        return sorted(self.graph.successors(code))

    def ancestors(self, code: str) -> list[str]:
        """From the parent up to the root."""
        self._check(code)
        chain = []
        node = self.parent(code)
        while node is not None:
            chain.append(node)
            node = next(iter(self.graph.predecessors(node)), None)
        return chain

    def subtree(self, code: str) -> Iterator[str]:
        """The unit and everything under it, parents before children."""
        self._check(code)
        yield from self._walk(code)

    def _walk(self, code: str) -> list[str]:
        # breadth first into one list: a third of what nx.bfs_edges takes on 200,000 units
        succ = self.graph.succ
        order = [code]
        i = 0
        while i < len(order):
            order.extend(succ[order[i]])
            i += 1
        return order

    def at_level(self, code: str, level: str) -> list[str]:
        """Units of ``level`` in the subtree of ``code``."""
        return [n for n in self.subtree(code) if self.graph.nodes[n]["level"] == level]

    def is_within(self, code: str, ancestor: str) -> bool:
        """Whether ``code`` is ``ancestor`` or lies under it (permission checks use this)."""
        self._check(code)
        return code == ancestor or ancestor in self.ancestors(code)

    def counts_by_level(self, code: str) -> dict[str, int]:
        self._check(code)
        nodes = self.graph.nodes
        counts = Counter(nodes[n]["level"] for n in self._walk(code))
        return {lvl: counts[lvl] for lvl in self.levels if counts[lvl]}

    def lines(self, code: str | None = None, depth: int = 2) -> list[TreeLine]:
        """The subtree of ``code`` down to ``depth`` levels below it, with counts under each."""
        start = self.root if code is None else code
        self._check(start)
        below = self._counts_below(start)
        out: list[TreeLine] = []
        stack = [(start, 0)]
        while stack:
            node, d = stack.pop()
            attrs = self.graph.nodes[node]
            out.append(TreeLine(d, node, attrs["name"], attrs["level"], below.get(node, {})))
            if d < depth:
                stack.extend((c, d + 1) for c in reversed(self.children(node)))
        return out

    def _counts_below(self, code: str) -> dict[str, dict[str, int]]:
        """Units under each unit of the subtree that has any, by level: one bottom-up pass, and
        no dict for the leaves (nine units in ten are schools)."""
        nodes, pred = self.graph.nodes, self.graph.pred
        counts: dict[str, dict[str, int]] = {}
        for node in reversed(self._walk(code)):
            if node == code:
                break  # the walk starts at code: everything after it lies under it
            parent = next(iter(pred[node]))
            into = counts.get(parent)
            if into is None:
                into = counts[parent] = {}
            level = nodes[node]["level"]
            into[level] = into.get(level, 0) + 1
            if node in counts:
                for lvl, n in counts[node].items():
                    into[lvl] = into.get(lvl, 0) + n
        return {n: {lvl: c[lvl] for lvl in self.levels if c.get(lvl)} for n, c in counts.items()}


def _not_a_tree(graph: nx.DiGraph, faults: TreeFaults) -> TreeError:
    fix = "每个单位只能有一个上级，且全体单位只能有一个顶层单位"
    if faults.cycles:
        loop = faults.cycles[0]
        chain = " → ".join([*loop, loop[0]])
        return TreeError(f"单位不构成一棵树（上级关系成环：{chain}）", fix=fix)
    if len(faults.roots) != 1:
        roots = faults.roots
        return TreeError(
            f"单位不构成一棵树（顶层单位 {len(roots)} 个：{'、'.join(roots[:5])}）", fix=fix
        )
    several = [node for node, above in graph.pred.items() if len(above) > 1]
    return TreeError(f"单位不构成一棵树（{'、'.join(several[:5])} 有多个上级）", fix=fix)


# Unit look-ups for the command line and the rehearsal, one answer each, without the whole tree


def units_by_code_or_name(conn: Connection, text: str) -> list[tuple[str, str]]:
    """(code, path) of each unit not removed whose code or name is ``text``."""
    rows = conn.execute(
        select(UNIT.c.code, UNIT.c.path).where(
            (UNIT.c.code == text) | (UNIT.c.name == text), UNIT.c.removed_at.is_(None)
        )
    ).all()
    return [(str(code), str(path)) for code, path in rows]


def unit_name(conn: Connection, code: str) -> str | None:
    """The name of the unit with ``code`` (removed ones too), None if there is none."""
    name = conn.execute(select(UNIT.c.name).where(UNIT.c.code == code)).scalar()
    return None if name is None else str(name)


def unit_names(conn: Connection, codes: Iterable[str | None]) -> dict[str, str]:
    """code → name of each of ``codes`` that is a unit; empty codes are skipped."""
    wanted = [c for c in codes if c]
    if not wanted:
        return {}
    rows = conn.execute(select(UNIT.c.code, UNIT.c.name).where(UNIT.c.code.in_(wanted)))
    return {str(code): str(name) for code, name in rows}


def roster_size(conn: Connection) -> tuple[int, int]:
    """How many units and persons the database holds (removed ones included)."""
    units = conn.execute(select(func.count()).select_from(UNIT)).scalar_one()
    persons = conn.execute(select(func.count()).select_from(PERSON)).scalar_one()
    return int(units), int(persons)
