"""``qunmatrix demo``: the story told on the embedded default (SQLite + sample data)."""

from __future__ import annotations

import tempfile

import typer

from bot.cli_app import app, ctx_of, echo, friendly
from bot.cli_roster import tree
from bot.render import render
from matrix.db import migrate
from matrix.roster import import_roster, read_roster
from matrix.sample import generate


@app.command()
@friendly
def demo(ctx: typer.Context) -> None:
    """演示：用示例省份数据建库，显示单位树和蓝图规定的群。"""
    c = ctx_of(ctx)
    with tempfile.TemporaryDirectory(prefix="qunmatrix-demo-") as tmp:
        c.settings.db = f"sqlite:///{tmp}/demo.db"
        c.__dict__.pop("engine", None)
        units, persons = generate("province", tmp, seed=1)
        echo(f"$ qunmatrix sample --scale province --out {tmp}")
        migrate(c.engine)
        echo("$ qunmatrix import units.csv persons.csv")
        report = import_roster(c.engine, read_roster(units, persons, c.blueprint), c.blueprint)
        echo(render("cli/import_report.txt.j2", report=report))
        echo("\n$ qunmatrix tree --depth 1")
        ctx.invoke(tree, ctx=ctx, code=None, depth=1)
        echo("\n$ qunmatrix blueprint")
        echo(render("cli/blueprint.txt.j2", bp=c.blueprint))
        c.engine.dispose()
