"""Reading the architecture off the source with ``ast``, without importing the code: the import
graph of ``bot/`` and ``matrix/`` (every import: top level, ``TYPE_CHECKING`` and inside
functions), its cycles, SQL in ``bot/`` and long functions. Used by tests/test_architecture.py
and by tests/benchmarks/architecture_figures.py (which reads any git revision).

>>> modules = {"a.x": "import a.y", "a.y": "from a import x", "a": ""}
>>> cycles(import_graph(parse(modules)))
[['a.x', 'a.y']]
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

ROOTS = ("bot", "matrix")
SKIP = ("matrix/migrations/",)  # alembic's scripts: run by alembic, imported by no module

# the packages whose imports among each other must not circle; a module belongs to the longest
SUB_PACKAGES = (
    "bot.chat",
    "bot.cli",
    "bot.platforms",
    "bot.render",
    "bot.rehearsal",
    "bot.service",
    "matrix.provisioning",
    "matrix.relay",
    "matrix.returns",
    "matrix.summary",
)

SQL_BUILDERS = {"select", "insert", "update", "delete", "text"}
SQL_TYPES = {"Engine", "Connection"}  # what bot/ may name, for annotations only
RUNS_SQL = re.compile(r"(conn|connection|engine|session|db)$", re.IGNORECASE)
LONG = 100


@dataclass(frozen=True)
class Import:
    """One imported module (or name of a module) as written, where and how."""

    module: str  # the importing module
    target: str  # the imported module, resolved to one of ours when it is ours
    names: tuple[str, ...]  # the names taken with ``from … import``
    line: int
    type_checking: bool
    in_function: bool


@dataclass(frozen=True)
class Source:
    """One module's name, path and syntax tree."""

    name: str
    path: str
    tree: ast.Module


def module_name(path: str) -> str:
    """``bot/chat/dispatch.py`` → ``bot.chat.dispatch``; ``bot/chat/__init__.py`` → ``bot.chat``."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _wanted(path: str) -> bool:
    return path.endswith(".py") and path.split("/")[0] in ROOTS and not path.startswith(SKIP)


def read_worktree(root: Path) -> dict[str, str]:
    """Path → text of every module of ``bot/`` and ``matrix/`` under ``root``."""
    found = {}
    for top in ROOTS:
        for file in sorted((root / top).rglob("*.py")):
            rel = file.relative_to(root).as_posix()
            if _wanted(rel):
                found[rel] = file.read_text(encoding="utf-8")
    return found


def read_revision(rev: str, repo: Path) -> dict[str, str]:
    """Path → text of every module of ``bot/`` and ``matrix/`` at git revision ``rev``."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout

    paths = [p for p in git("ls-tree", "-r", "--name-only", rev, *ROOTS).splitlines() if _wanted(p)]
    return {p: git("show", f"{rev}:{p}") for p in paths}


def parse(texts: dict[str, str]) -> list[Source]:
    """The syntax trees of ``texts`` (path → text; a dotted name is taken as the module)."""
    sources = []
    for path, text in texts.items():
        name = module_name(path) if path.endswith(".py") else path
        sources.append(Source(name, path, ast.parse(text, filename=path)))
    return sources


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(
    node: ast.AST, type_checking: bool = False, in_function: bool = False
) -> Iterator[tuple[ast.AST, bool, bool]]:
    """Every node under ``node`` with whether it sits under ``if TYPE_CHECKING`` / in a function."""
    for child in ast.iter_child_nodes(node):
        yield child, type_checking, in_function
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, True, in_function
                yield from _walk(stmt, True, in_function)
            for stmt in child.orelse:
                yield stmt, type_checking, in_function
                yield from _walk(stmt, type_checking, in_function)
            continue
        inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        yield from _walk(child, type_checking, inner)


def imports(sources: list[Source]) -> list[Import]:
    """Every import statement of ``sources``, targets resolved to our modules where they are."""
    ours = {s.name for s in sources}
    packages = {s.name for s in sources if s.path.endswith("__init__.py")}
    found = []
    for src in sources:
        package = src.name if src.name in packages else src.name.rpartition(".")[0]
        for node, tc, fn in _walk(src.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(src.name, alias.name, (), node.lineno, tc, fn))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                names = tuple(a.name for a in node.names)
                subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in ours]
                for sub in subs:  # ``from bot.cli import app`` imports the module bot.cli.app
                    found.append(Import(src.name, sub, (), node.lineno, tc, fn))
                rest = tuple(n for n in names if f"{base}.{n}" not in ours)
                if rest or not subs:
                    found.append(Import(src.name, base, rest, node.lineno, tc, fn))
    return found


def import_graph(sources: list[Source]) -> nx.DiGraph:
    """Our modules, an edge for each import of one of ours by another (every kind of import)."""
    graph = nx.DiGraph()
    ours = {s.name for s in sources}
    graph.add_nodes_from(ours)
    for imp in imports(sources):
        if imp.target in ours and imp.target != imp.module:
            graph.add_edge(imp.module, imp.target, line=imp.line)
    return graph


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    """The strongly connected components of more than one node, each sorted, largest first."""
    found = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    return sorted(found, key=lambda c: (-len(c), c))


def package_of(module: str, packages: Collection[str] = SUB_PACKAGES) -> str:
    """The package a module counts for: one of ``packages``, else ``bot`` or ``matrix``."""
    for pkg in sorted(packages, key=len, reverse=True):
        if module == pkg or module.startswith(pkg + "."):
            return pkg
    return module.split(".")[0]


def package_graph(graph: nx.DiGraph, sources: list[Source] | None = None) -> nx.DiGraph:
    """The import graph with each module replaced by its package (``package_of``); given the
    ``sources``, only those of ``SUB_PACKAGES`` that are packages there count (an older tree
    had ``bot/service.py``, a module)."""
    present = SUB_PACKAGES
    if sources is not None:
        present = tuple(s.name for s in sources if s.path.endswith("__init__.py"))
        present = tuple(p for p in SUB_PACKAGES if p in present)
    packages = nx.DiGraph()
    packages.add_nodes_from({package_of(m, present) for m in graph})
    for a, b in graph.edges:
        pa, pb = package_of(a, present), package_of(b, present)
        if pa != pb:
            packages.add_edge(pa, pb)
            packages.edges[pa, pb].setdefault("via", []).append((a, b))
    return packages


def _annotation_names(tree: ast.Module) -> set[int]:
    """The ids of the Name nodes that sit inside an annotation."""
    inside: set[int] = set()
    notes: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            notes.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            notes.append(node.returns)
    for note in notes:
        inside.update(id(n) for n in ast.walk(note) if isinstance(n, ast.Name))
        if isinstance(note, ast.Constant) and isinstance(note.value, str):  # "Engine | None"
            inside.add(id(note))
    return inside


def _string_annotations(tree: ast.Module) -> set[str]:
    """The identifiers that occur in string annotations (``conn: "Connection"``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        note = None
        if isinstance(node, ast.arg | ast.AnnAssign):
            note = node.annotation
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            note = node.returns
        if isinstance(note, ast.Constant) and isinstance(note.value, str):
            found.update(re.findall(r"\w+", note.value))
    return found


@dataclass(frozen=True)
class SqlUse:
    """One piece of SQL in the chat layer: what and where."""

    module: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.what}"


def sql_uses(src: Source) -> list[SqlUse]:
    """The SQL in one module: sqlalchemy names other than annotation-only Engine/Connection, any
    ``matrix.tables`` import, select/insert/update/delete/text calls and ``conn.execute``."""
    found = []
    loads: dict[str, list[ast.Name]] = {}
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.setdefault(node.id, []).append(node)
    in_notes = _annotation_names(src.tree)
    string_notes = _string_annotations(src.tree)
    for node, tc, _fn in _walk(src.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy" or alias.name == "matrix.tables":
                    found.append(SqlUse(src.name, node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if node.module == "matrix.tables" or (
                node.module == "matrix" and any(a.name == "tables" for a in node.names)
            ):
                found.append(SqlUse(src.name, node.lineno, f"from {node.module} import …"))
            elif top == "sqlalchemy":
                for alias in node.names:
                    local = alias.asname or alias.name
                    uses = loads.get(local, [])
                    notes_only = all(id(u) in in_notes for u in uses) and (
                        uses or local in string_notes
                    )
                    if alias.name in SQL_TYPES and (tc or notes_only):
                        continue
                    found.append(
                        SqlUse(src.name, node.lineno, f"from {node.module} import {alias.name}")
                    )
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in SQL_BUILDERS | {"table_of"}:
                found.append(SqlUse(src.name, node.lineno, f"{func.id}(…)"))
            elif isinstance(func, ast.Attribute):
                owner = func.value
                last = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                runs = func.attr in {"execute", "exec_driver_sql"} and bool(RUNS_SQL.search(last))
                builds = func.attr in SQL_BUILDERS and (
                    last.isupper() or last in {"sa", "sqlalchemy"}
                )
                if runs or builds:
                    found.append(SqlUse(src.name, node.lineno, f"{last}.{func.attr}(…)"))
    return sorted(found, key=lambda u: u.line)


def sql_runs(src: Source) -> int:
    """How many times a module runs SQL: its ``conn.execute(…)`` (and ``exec_driver_sql``) calls."""
    return sum(
        1 for use in sql_uses(src) if use.what.endswith(("execute(…)", "exec_driver_sql(…)"))
    )


def sql_statements(src: Source) -> int:
    """How many SQL statements a module builds: its select/insert/update/delete/text calls
    (``select(…)``, ``UNIT.insert()``, ``sa.text(…)``)."""
    return sum(
        1
        for use in sql_uses(src)
        if use.what.removesuffix("(…)").rpartition(".")[2] in SQL_BUILDERS
    )


@dataclass(frozen=True)
class LongFunction:
    """A function (or method) of more than ``LONG`` lines."""

    module: str
    name: str  # qualified: ``Class.method``, ``outer.inner``
    lines: int

    @property
    def key(self) -> str:
        return f"{self.module}:{self.name}"


def long_functions(src: Source, limit: int = LONG) -> list[LongFunction]:
    """The functions and methods of ``src`` longer than ``limit`` lines, ``def`` to last line."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                lines = (child.end_lineno or child.lineno) - child.lineno + 1
                if lines > limit:
                    found.append(LongFunction(src.name, name, lines))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(src.tree, "")
    return found


def top_level_modules(texts: dict[str, str], package: str = "bot") -> list[str]:
    """The modules directly in ``package`` (not in a sub-package), ``__init__`` left out."""
    return sorted(
        p
        for p in texts
        if p.startswith(package + "/") and p.count("/") == 1 and not p.endswith("__init__.py")
    )
