"""``qunmatrix match``: the operator's #匹配 and #确认匹配, with a CSV to edit.

``--unit CODE`` suggests a roster person for every member bound to nobody in the groups the unit
leads (as the bot last read their rooms: the 群昵称 it recorded), keeps the numbered suggestions
as #匹配 does and prints the counts; ``--csv FILE`` also writes them. In that file the operator
marks the rows to confirm (确认: 是) and may fill in a person's 人员编号 where none was found;
``--import FILE`` binds what the file marks, each person checked against the group's expected
members, and puts the strangers to join review. The operator decides row by row, so a person
with office authority is bound when their row is marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.app import Context, app, ctx_of, echo, friendly
from bot.render.templates import render
from matrix.errors import MatrixError

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from matrix.provisioning.matching import Shown


@app.command()
@friendly
def match(
    ctx: typer.Context,
    unit: Annotated[
        str | None, typer.Option("--unit", help="单位代码：为该单位牵头的群列出匹配建议")
    ] = None,
    csv_out: Annotated[
        Path | None,
        typer.Option(
            "--csv", help="与 --unit 一起用：把建议写入 CSV，在“确认”列填“是”后用 --import 导入"
        ),
    ] = None,
    csv_in: Annotated[
        Path | None, typer.Option("--import", help="导入改好的 CSV：绑定“确认”列为“是”的行")
    ] = None,
) -> None:
    """按群昵称把群里未绑定的成员与名册对应起来（先列出，确认后绑定）。"""
    c = ctx_of(ctx)
    if csv_in is not None:
        _import(c, csv_in)
        return
    if unit is None:
        raise MatrixError("请指明单位", fix="qunmatrix match --unit 单位代码 [--csv 文件]")
    tables = _suggest(c, unit)
    if csv_out is not None:
        from bot.render.match import suggestions_csv

        try:
            csv_out.write_bytes(suggestions_csv(tables))
        except OSError as exc:
            raise MatrixError(f"无法写入 {csv_out}", fix="请检查路径和权限") from exc
    echo(render("match/cli.txt.j2", tables=tables, csv=str(csv_out or "")).rstrip())


def _suggest(c: Context, unit: str) -> list[tuple[int, str, Shown]]:
    from matrix.models import utcnow
    from matrix.provisioning import matching

    hours = c.settings.join_policy().hours
    with c.ready_engine().begin() as conn:
        groups = matching.groups_of(conn, unit)
        if not groups:
            raise MatrixError(
                f"单位 {unit} 没有已建或已认领的群", fix="请核对单位代码，或先认领该单位的群"
            )
        now = utcnow()
        tables = []
        for gid, name in groups:
            found = matching.suggest(conn, c.blueprint, gid)
            shown = matching.store(conn, gid, found, actor=c.actor, now=now, hours=hours)
            tables.append((gid, name, shown))
    return tables


def _import(c: Context, path: Path) -> None:
    from bot.render.match import read_picks
    from matrix.models import utcnow
    from matrix.provisioning import matching

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MatrixError(f"无法读取 {path}", fix="请检查路径") from exc
    picks = read_picks(raw)  # the whole file is read before anything is written
    by_group: dict[int, list[tuple[str, int]]] = {}
    for pick in picks:
        by_group.setdefault(pick.group_id, []).append((pick.contact_id, pick.person_id))
    policy = c.settings.join_policy()
    results = []
    with c.ready_engine().begin() as conn:
        for gid, chosen in sorted(by_group.items()):
            done = matching.bind_chosen(
                conn, c.blueprint, gid, chosen, actor=c.actor, now=utcnow(), policy=policy
            )
            results.append((gid, done))
    echo(render("match/imported.txt.j2", results=results, picks=len(picks)).rstrip())
    if any(done.rejected for _, done in results):
        raise typer.Exit(1)
