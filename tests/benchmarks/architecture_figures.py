"""Figures of the architecture (issue 11), read from the source with ``ast``:

    .venv/bin/python tests/benchmarks/architecture_figures.py [REV]

Without REV it reads the work tree; with REV (a commit, branch or tag) it reads that tree from
git. Prints bot/'s top-level modules, the SQL statements in bot/, the import cycles (strongly
connected components of more than one module, TYPE_CHECKING and function-level imports
counted) and the functions over 100 lines in bot/ and matrix/.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.architecture import (  # noqa: E402  (after the path is set)
    LONG,
    cycles,
    import_graph,
    long_functions,
    package_graph,
    parse,
    read_revision,
    read_worktree,
    sql_runs,
    sql_statements,
    top_level_modules,
)


def main(argv: list[str]) -> None:
    rev = argv[0] if argv else None
    texts = read_revision(rev, ROOT) if rev else read_worktree(ROOT)
    sources = parse(texts)
    print(f"tree: {rev or 'work tree'}")
    top = top_level_modules(texts)
    print(f"bot/ top-level modules: {len(top)}")
    per_module = Counter({s.name: sql_statements(s) for s in sources if s.name.startswith("bot")})
    per_module = +per_module
    print(
        f"SQL statements (select/insert/update/delete/text calls) in bot/: {sum(per_module.values())} in {len(per_module)} modules"
    )
    for name, n in per_module.most_common():
        print(f"  {n:3d} {name}")
    runs = sum(sql_runs(s) for s in sources if s.name.startswith("bot"))
    print(f"conn.execute calls in bot/: {runs}")
    graph = import_graph(sources)
    found = cycles(graph)
    print(
        f"import cycles: {len(found)} (modules in them: {sum(len(c) for c in found)}, "
        f"largest {max((len(c) for c in found), default=0)})"
    )
    for cycle in found:
        print(f"  {len(cycle)}: {', '.join(cycle)}")
    between = cycles(package_graph(graph, sources))
    print(f"cycles between packages: {len(between)}")
    for cycle in between:
        print(f"  {', '.join(cycle)}")
    long = [f for s in sources for f in long_functions(s)]
    print(f"functions over {LONG} lines: {len(long)}")
    for f in sorted(long, key=lambda f: -f.lines):
        print(f"  {f.lines:4d} {f.key}")


if __name__ == "__main__":
    main(sys.argv[1:])
