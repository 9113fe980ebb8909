"""``qunmatrix adopt``: bring the groups people built by hand under the bot, in bulk.

``--match`` lists the rooms the bot accounts sit in (as the running bot last listed them)
whose name is an expected group's, written however people write it, with the unit and how
sure the match is; nothing is adopted unless confirmed: ``--yes`` adopts the listed ones,
``--csv FILE`` writes them for editing and ``--import FILE`` adopts what the file says.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.app import Context, app, ctx_of, echo, friendly
from bot.render.templates import render
from matrix.errors import MatrixError

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from sqlalchemy import Connection

    from matrix.provisioning.adopt import Match

HEADER = ("群ID", "群名称", "单位代码", "单位", "群类型", "分群号", "把握")


@app.command()
@friendly
def adopt(
    ctx: typer.Context,
    match: Annotated[
        bool, typer.Option("--match", help="列出机器人所在、群名与应建群相符的群（不认领）")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="与 --match 一起用：认领列出的群")] = False,
    csv_out: Annotated[
        Path | None,
        typer.Option("--csv", help="与 --match 一起用：把列出的群写入 CSV，改好后用 --import 认领"),
    ] = None,
    csv_in: Annotated[
        Path | None,
        typer.Option("--import", help="按 CSV 文件认领：群ID → 单位代码、群类型、分群号"),
    ] = None,
) -> None:
    """认领已有的群：把各单位手工建立的群登记为矩阵中的群（先确认，后认领）。"""
    c = ctx_of(ctx)
    if csv_in is not None:
        _import(c, csv_in)
        return
    if not match:
        raise MatrixError("请指明做什么", fix="qunmatrix adopt --match 列出可认领的群")
    from matrix.provisioning.adopt import match_rooms

    with c.ready_engine().connect() as conn:
        matches, doubtful = match_rooms(conn, c.blueprint)
        seen = _seen_count(conn)
    if csv_out is not None:
        _write_csv(csv_out, matches)
    adopted: list[Match] = []
    failed: list[tuple[str, str]] = []
    if yes:
        for m in matches:
            problem = _adopt_one(c, m.room_id, m.topic, m.unit, m.kind, m.shard)
            if problem:
                failed.append((m.topic, problem))
            else:
                adopted.append(m)
    echo(
        render(
            "adopt/matches.txt.j2",
            matches=matches,
            doubtful=doubtful,
            seen=seen,
            yes=yes,
            adopted=adopted,
            failed=failed,
            csv=str(csv_out) if csv_out else "",
        ).rstrip()
    )


def _seen_count(conn: Connection) -> int:
    from matrix.provisioning.actual import seen_room_count

    return seen_room_count(conn)


def _adopt_one(
    c: Context, room_id: str, topic: str, unit: str, kind: str | None, shard: int | None
) -> str:
    """Adopt one room in its own transaction; the reason it was refused, or ""."""
    from matrix.provisioning.adopt import adopt as adopt_room

    try:
        with c.ready_engine().begin() as conn:
            adopt_room(conn, c.blueprint, room_id, unit, kind, shard, c.actor, topic=topic)
    except MatrixError as exc:
        return str(exc)
    return ""


def _write_csv(path: Path, matches: list[Match]) -> None:
    import csv

    try:
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(HEADER)
            for m in matches:
                out.writerow(
                    (
                        m.room_id,
                        m.topic,
                        m.unit,
                        m.unit_name,
                        m.kind,
                        m.shard,
                        f"{m.confidence:.1f}",
                    )
                )
    except OSError as exc:
        raise MatrixError(f"无法写入 {path}", fix="请检查路径和权限") from exc


def _import(c: Context, path: Path) -> None:
    import csv

    try:
        text = path.read_bytes()
    except OSError as exc:
        raise MatrixError(f"无法读取 {path}", fix="请检查路径") from exc
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            rows = list(csv.reader(text.decode(encoding).splitlines()))
            break
        except UnicodeDecodeError:
            continue
    else:
        raise MatrixError(f"无法识别 {path} 的编码", fix="请另存为 UTF-8")
    if not rows or tuple(x.strip() for x in rows[0][:6]) != HEADER[:6]:
        raise MatrixError(
            f"{path} 的表头应为：" + "、".join(HEADER[:6]),
            fix="请用 qunmatrix adopt --match --csv 文件 生成后修改",
        )
    adopted: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    skipped = 0
    for n, row in enumerate(rows[1:], start=2):
        cells = [x.strip() for x in row] + [""] * 6
        room_id, topic, unit, _, kind, shard = cells[:6]
        if not room_id or not unit:
            skipped += 1
            continue
        where = f"第 {n} 行（{topic or room_id}）"
        if shard and not shard.isdigit():
            failed.append((where, f"分群号“{shard}”应为数字"))
            continue
        problem = _adopt_one(c, room_id, topic, unit, kind or None, int(shard) if shard else None)
        if problem:
            failed.append((where, problem))
        else:
            adopted.append((where, topic or room_id))
    echo(render("adopt/imported.txt.j2", adopted=adopted, failed=failed, skipped=skipped).rstrip())
    if failed:
        raise typer.Exit(1)
