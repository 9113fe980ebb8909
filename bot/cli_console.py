"""``qunmatrix console``: talk to the bot on the simulated WeChat as any roster person, in any
group, interactively or from a transcript (``--script FILE``, format in ``bot.transcript``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli_app import Context, app, ctx_of, echo, friendly
from bot.render import render
from matrix.errors import MatrixError

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from bot.stage import Line, Stage
    from bot.summary_chat import SummaryOptions
    from bot.transcript import Step


def open_stage(c: Context, summaries: SummaryOptions | None = None) -> Stage:
    """A stage over the configured database, bot accounts and join review policy, with the
    rooms the database already records recreated in the simulated WeChat."""
    from bot.stage import Stage
    from bot.summary_chat import SummaryOptions

    stage = Stage(
        c.ready_engine(),
        c.blueprint,
        accounts=c.settings.account_quotas(),
        burst=c.settings.simulated.burst,
        summaries=summaries or SummaryOptions.of(c.settings),
        join_policy=c.settings.join_policy(),
        relay=c.settings.relay,
        timezone=c.settings.timezone,
    )
    stage.mirror()
    return stage


def bot_lines(lines: list[Line]) -> str:
    from bot.transcript import format_line

    return "\n".join(format_line(x.group, x.sender, x.text) for x in lines if x.by_bot)


def run_script(stage: Stage, steps: list[Step], source: str) -> None:
    """Play every step of a transcript, printing each bot message."""
    from bot.stage import StageError

    for step in steps:
        try:
            said = stage.say(step.group, step.sender, step.text)
        except StageError as exc:
            raise MatrixError(
                exc.message, where=f"{source} 第 {step.line_no} 行", fix=exc.fix
            ) from exc
        out = bot_lines(said)
        if out:
            echo(out)


def _groups(stage: Stage, keyword: str) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from bot.tables import GROUP

    with stage.engine.connect() as conn:
        rows = conn.execute(
            select(GROUP.c.name, GROUP.c.unit_code, GROUP.c.kind, GROUP.c.shard)
            .where(GROUP.c.room_id.is_not(None), GROUP.c.name.contains(keyword))
            .order_by(GROUP.c.id)
            .limit(30)
        ).all()
    return [(r[0], f"{r[1]}:{r[2]}" + (f":{r[3]}" if r[3] else "")) for r in rows]


def interact(stage: Stage) -> None:
    """A line-by-line session; /帮助 lists the console's own commands."""
    from sqlalchemy import select

    from bot.joins import office_contacts
    from bot.tables import GROUP
    from bot.transcript import read_steps

    groups = _groups(stage, "")
    group = groups[0][0]
    with stage.engine.connect() as conn:
        unit = conn.execute(select(GROUP.c.unit_code).where(GROUP.c.name == group)).scalar_one()
        sender = next(iter(office_contacts(conn, stage.bot, unit)), "")
    echo(render("cli/console_help.txt.j2", group=group, sender=sender))
    while True:
        try:
            line = input(render("cli/console_prompt.txt.j2", group=group, sender=sender))
        except (EOFError, KeyboardInterrupt):
            echo("")
            return
        line = line.strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        try:
            if word in ("/退出", "/quit"):
                return
            if word in ("/帮助", "/help"):
                echo(render("cli/console_help.txt.j2", group=group, sender=sender))
            elif word in ("/群", "/group"):
                stage.room_of(rest)
                group = rest
            elif word in ("/人", "/as"):
                sender = stage.contact(rest) if rest else sender
            elif word in ("/群列表", "/groups"):
                echo(render("cli/console_groups.txt.j2", groups=_groups(stage, rest)))
            elif word in ("/成员", "/members"):
                room = stage.world.rooms[stage.room_of(group)]
                names = {c: stage.world.contacts[c].name for c in room.members}
                echo(render("cli/console_members.txt.j2", members=names))
            else:
                where, who, text = (group, sender, line)
                if "\t" in line:
                    step = read_steps([line], "输入")[0]
                    where, who, text = step.group, step.sender, step.text
                out = bot_lines(stage.say(where, who, text))
                if out:
                    echo(out)
        except MatrixError as exc:
            echo(str(exc))


@app.command()
@friendly
def console(
    ctx: typer.Context,
    script: Annotated[
        Path | None,
        typer.Option(
            "--script", help="按脚本逐行执行：群<TAB>发送人<TAB>内容，打印机器人的每条回复"
        ),
    ] = None,
    provision: Annotated[
        bool,
        typer.Option(
            "--provision", help="先按建群计划在模拟微信中建好所有群（同 qunmatrix provision）"
        ),
    ] = False,
) -> None:
    """在模拟微信中以任意名册人员的身份在任意群里发言（演练与测试用）。"""
    from bot.transcript import read_steps, read_transcript

    c = ctx_of(ctx)
    with open_stage(c) as stage:
        if provision:
            stage.provision()
        elif not stage.world.rooms:
            raise MatrixError(
                "数据库里还没有建好的群",
                fix="请加 --provision，按蓝图先在模拟微信中建好所有群（或先运行 qunmatrix provision）",
            )
        if script is not None:
            run_script(stage, read_transcript(script), str(script))
        elif not sys.stdin.isatty():
            run_script(stage, read_steps(sys.stdin, "标准输入"), "标准输入")
        else:
            interact(stage)
