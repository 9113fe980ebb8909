"""The architecture (issue 11), read off the source with ``ast`` (tests/architecture.py; nothing
of bot/ or matrix/ is imported): no import cycles among modules or packages, each package imports
only what its ``__init__`` docstring says, no SQL in bot/, no function over 100 lines.

``PENDING`` is empty: nothing is exempt. Should an exception ever be needed while work lands,
it goes there with its reason; an entry that no longer fails makes the test fail too."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.architecture import (
    LONG,
    Import,
    Source,
    cycles,
    import_graph,
    imports,
    long_functions,
    package_graph,
    package_of,
    parse,
    read_worktree,
    sql_uses,
)

ROOT = Path(__file__).resolve().parents[1]

# package → (what it may import besides itself, what it must never import), as the package's
# ``__init__`` docstring says. "matrix" is all of the core; "matrix:top" its top-level modules.
RULES: dict[str, tuple[set[str], set[str]]] = {
    "bot.chat": (
        {"bot.render", "bot.config", "matrix"},
        {"bot.cli", "bot.rehearsal", "bot.platforms"},
    ),
    "bot.platforms": ({"matrix"}, {"bot.chat", "bot.cli"}),
    "bot.render": ({"matrix"}, {"bot.chat", "bot.cli", "bot.platforms"}),
    "bot.rehearsal": (
        {"bot.chat", "bot.platforms", "bot.render", "bot.service", "matrix"},
        {"bot.cli"},
    ),
    "bot.service": ({"bot.chat", "bot.platforms", "bot.render", "matrix"}, {"bot.cli"}),
    "bot.cli": ({"bot.chat", "bot.render", "bot.rehearsal", "bot.service", "matrix"}, set()),
    "matrix.provisioning": ({"matrix:top"}, {"bot", "wechaty", "matrix.relay", "matrix.summary"}),
    "matrix.returns": (
        {"matrix:top", "matrix.provisioning", "matrix.relay"},
        {"bot", "wechaty", "matrix.summary"},
    ),
    "matrix": (set(), {"bot", "wechaty"}),  # the core, every package of it: never the chat layer
}
# the settings and the logging set-up: every package of bot/ reads them (bot.chat's docstring
# names bot.config; bot.cli, bot.rehearsal and bot.service build their settings from it)
BASE = {"bot.config", "bot.logs"}

PENDING: dict[str, set[str]] = {
    "sql": set(),
    "cycle": set(),
    "long": set(),
    "rule": set(),
    "package cycle": set(),
}


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    return parse(read_worktree(ROOT))


def _settle(kind: str, failures: set[str]) -> None:
    """Fail on what is not pending, and on pending entries that no longer fail."""
    pending = PENDING.get(kind, set())
    assert not failures - pending, sorted(failures - pending)
    assert not pending - failures, f"no longer failing, take out of PENDING: {pending - failures}"


# --- cycles ---------------------------------------------------------------------------------


def test_no_import_cycle_among_modules(sources: list[Source]) -> None:
    found = cycles(import_graph(sources))
    pending = PENDING["cycle"]
    assert [c for c in found if not set(c) <= pending] == []
    in_cycles = {m for c in found for m in c}
    assert not pending - in_cycles, f"no longer in a cycle: {pending - in_cycles}"


def test_no_import_cycle_between_packages(sources: list[Source]) -> None:
    found = {", ".join(c) for c in cycles(package_graph(import_graph(sources), sources))}
    _settle("package cycle", found)


# --- each package's import rule ---------------------------------------------------------------


def _allowed(entry: str, target: str) -> bool:
    if entry == "matrix:top":
        return package_of(target) == "matrix"
    return target == entry or target.startswith(entry + ".")


def broken_rules(found: list[Import]) -> set[str]:
    """``module -> target`` for each import that its package's rule does not allow."""
    broken = set()
    for imp in found:
        own = package_of(imp.module)
        rule = RULES.get(own) or (RULES["matrix"] if own.startswith("matrix") else None)
        if rule is None:
            continue
        may, never = rule
        target, top = imp.target, imp.target.split(".")[0]
        if top not in {"bot", "matrix"} and not top.startswith("wechaty"):
            continue  # the standard library and third-party packages other than wechaty
        if top.startswith("wechaty"):
            if not own.startswith("matrix"):
                continue  # bot/'s rules speak of our own packages; the core's of wechaty too
            top = "wechaty"
        if package_of(target) == own:
            continue
        forbidden = any(_allowed(n, target) or n == top for n in never)
        allowed = any(_allowed(m, target) for m in may) or (
            own.startswith("bot") and any(_allowed(b, target) for b in BASE)
        )
        if forbidden or (may and not allowed) or (not may and top in never):
            broken.add(f"{imp.module} -> {target}")
    return broken


def test_each_package_imports_only_what_its_docstring_allows(sources: list[Source]) -> None:
    _settle("rule", broken_rules(imports(sources)))


def test_the_rules_are_the_ones_the_docstrings_state(sources: list[Source]) -> None:
    # a package whose docstring names no rule, or one the table leaves out, is caught here
    docs = {s.name: s.tree for s in sources if s.path.endswith("__init__.py")}
    for package in RULES:
        if package == "matrix":
            continue
        doc = (docs[package].body[0].value.value or "").replace("\n", " ")  # type: ignore[attr-defined]
        assert "May import" in doc or "may import" in doc.lower(), package
        for name in RULES[package][0] - {"matrix:top"}:
            assert f"``{name}``" in doc or name == "matrix", (package, name)


# --- SQL in bot/ ------------------------------------------------------------------------------


def test_no_sql_in_bot(sources: list[Source]) -> None:
    found = {s.name: sql_uses(s) for s in sources if s.name.startswith("bot")}
    failing = {name for name, uses in found.items() if uses}
    not_pending = {n: [str(u) for u in found[n]] for n in failing - PENDING["sql"]}
    assert not not_pending, not_pending
    assert not PENDING["sql"] - failing, (
        f"no SQL left, take out of PENDING: {PENDING['sql'] - failing}"
    )


# --- long functions ---------------------------------------------------------------------------


def test_no_function_over_100_lines(sources: list[Source]) -> None:
    _settle("long", {f.key for s in sources for f in long_functions(s)})


# --- the checks themselves can fail -----------------------------------------------------------


def _sources(**modules: str) -> list[Source]:
    return parse({name.replace("__", "."): textwrap.dedent(text) for name, text in modules.items()})


def test_a_cycle_through_type_checking_and_a_function_counts() -> None:
    graph = import_graph(
        _sources(
            bot__cli__a="""
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from bot.cli.b import B
            """,
            bot__cli__b="""
            def f():
                from bot.cli import a
            """,
            bot__cli="",
        )
    )
    assert cycles(graph) == [["bot.cli.a", "bot.cli.b"]]


def test_a_cycle_between_packages_counts() -> None:
    graph = import_graph(
        _sources(
            bot__service__process="from bot.cli.app import Context",
            bot__cli__run="def f():\n    from bot.service.process import serve",
            bot__cli__app="",
        )
    )
    assert cycles(graph) == []
    assert cycles(package_graph(graph)) == [["bot.cli", "bot.service"]]


def test_a_forbidden_import_breaks_the_rule() -> None:
    found = imports(
        _sources(
            bot__render__x="from bot.chat.dispatch import Bot",
            bot__platforms__y="from bot.render.templates import render",
            matrix__z="def f():\n    import wechaty",
            matrix__provisioning__w="from matrix.relay.notices import issue_notice",
            matrix__provisioning__v="from matrix.tree import UnitTree\nfrom matrix import tables",
            bot__cli__u="from bot.config import Settings\nfrom bot.service import process",
        )
    )
    assert broken_rules(found) == {
        "bot.render.x -> bot.chat.dispatch",
        "bot.platforms.y -> bot.render.templates",
        "matrix.z -> wechaty",
        "matrix.provisioning.w -> matrix.relay.notices",
    }


def test_sql_in_bot_is_found() -> None:
    (src,) = _sources(
        bot__cli__x="""
        from __future__ import annotations
        from typing import TYPE_CHECKING
        from sqlalchemy import Connection, select
        from matrix.tables import UNIT
        if TYPE_CHECKING:
            from sqlalchemy import Engine

        def f(conn: Connection, engine: Engine, msg, said) -> None:
            conn.execute(select(UNIT))
            UNIT.delete()
            msg.text()
            said.insert(0, 1)
        """
    )
    assert [u.what for u in sql_uses(src)] == [
        "from sqlalchemy import select",
        "from matrix.tables import …",
        "conn.execute(…)",
        "select(…)",
        "UNIT.delete(…)",
    ]


def test_a_function_over_100_lines_is_found() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LONG))
    (src,) = _sources(
        matrix__m=f"class C:\n    def short(self):\n        pass\n\ndef long():\n{body}\n"
    )
    assert [(f.key, f.lines) for f in long_functions(src)] == [("matrix.m:long", LONG + 1)]
