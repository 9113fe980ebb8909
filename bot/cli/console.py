"""``qunmatrix console``: talk to the bot on the simulated WeChat as any roster person, in any
group, interactively or from a transcript (``--script FILE``, format in ``bot.rehearsal.transcript``)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from bot.cli.app import Context, app, ctx_of, echo, friendly
from bot.render.templates import render
from matrix.errors import MatrixError

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from bot.chat.summary import SummaryOptions
    from bot.rehearsal.stage import Line, Stage
    from bot.rehearsal.transcript import Step


def open_stage(
    c: Context, summaries: SummaryOptions | None = None, *, start: datetime | None = None
) -> Stage:
    """A stage over the configured database, bot accounts and join review policy, with the
    rooms the database already records recreated in the simulated WeChat."""
    from bot.chat.summary import SummaryOptions
    from bot.rehearsal.stage import Stage

    stage = Stage(
        c.ready_engine(),
        c.blueprint,
        accounts=c.settings.account_quotas(),
        burst=c.settings.simulated.burst,
        summaries=summaries or SummaryOptions.of(c.settings),
        join_policy=c.settings.join_policy(),
        bind_limits=c.settings.bind_limits(),
        relay=c.settings.relay,
        timezone=c.settings.timezone,
        limits=c.settings.limits,
        start=start,
    )
    stage.mirror()
    return stage


def bot_lines(lines: list[Line], stage: Stage) -> str:
    """The bot's messages as the transcript prints them: with whom they @-mention, as WeChat
    shows it, and where a sent file was saved."""
    from bot.rehearsal.transcript import format_line

    names = {cid: c.name for cid, c in stage.world.contacts.items()}
    return "\n".join(
        format_line(
            x.group,
            x.sender,
            render(
                "cli/console_text.txt.j2",
                text=x.text,
                mentions=[names.get(m, m) for m in x.mentions],
                file=x.file,
            ).rstrip("\n"),
        )
        for x in lines
        if x.by_bot
    )


def run_script(stage: Stage, steps: list[Step], source: str) -> None:
    """Play every step of a transcript, printing each bot message."""
    from bot.rehearsal.stage import StageError

    for step in steps:
        try:
            said = play(stage, step.group, step.sender, step.text)
        except StageError as exc:
            raise MatrixError(
                exc.message, where=f"{source} 第 {step.line_no} 行", fix=exc.fix
            ) from exc
        out = bot_lines(said, stage)
        if out:
            echo(out)


def play(stage: Stage, group: str, sender: str, text: str) -> list[Line]:
    """One step: ``<建群 微信号 …>`` builds room ``group`` by hand, owned by ``sender``, with
    those members and the bot accounts invited in; anything else is said (``Stage.say``)."""
    from bot.rehearsal.stage import Line, StageError
    from bot.rehearsal.transcript import build_members

    members = build_members(text)
    if members is None:
        return stage.say(group, sender, text)
    if stage.world.find_room(group) is not None:
        raise StageError(f"已有名为“{group}”的群", fix="请换一个群名称")
    mark = len(stage.world.messages())
    people = [stage.contact(c) for c in dict.fromkeys([sender, *members])]
    room_id = stage.world.create_room(sender, group, people)
    for account in stage.bot.accounts:  # the owner invites the bot, which hears it joined
        stage.run(stage.world.join(room_id, account, inviter_id=sender))
    stage.settle()
    said = [
        Line(group, m.contact_id, m.text, m.contact_id in stage.bot.accounts, m.mentions, m.file)
        for m in stage.world.messages(since=mark)
    ]
    return [Line(group, sender, text.strip(), False), *said]


def _groups(stage: Stage, keyword: str) -> list[tuple[str, str]]:
    from matrix.relay.people import groups_with_rooms

    with stage.engine.connect() as conn:
        rows = groups_with_rooms(conn, containing=keyword, limit=30)
    return [(g.name, f"{g.unit_code}:{g.kind}" + (f":{g.shard}" if g.shard else "")) for g in rows]


@dataclass
class Session:
    """An interactive console session: the stage, and the group and sender now speaking."""

    stage: Stage
    group: str
    sender: str


@dataclass(frozen=True)
class ConsoleCommand:
    """One of the console's own commands (a line starting with /), declared once: its names
    (Chinese first), what follows them, a summary for /帮助 (``{group}`` and ``{sender}`` name
    the current ones), and what it does (False: end the session)."""

    names: tuple[str, ...]
    usage: str
    summary: str
    run: Callable[[Session, str], bool]


def _quit(session: Session, rest: str) -> bool:
    return False


def _help(session: Session, rest: str) -> bool:
    echo(console_help(session))
    return True


def _switch_group(session: Session, rest: str) -> bool:
    session.stage.room_of(rest)
    session.group = rest
    return True


def _switch_sender(session: Session, rest: str) -> bool:
    session.sender = session.stage.contact(rest) if rest else session.sender
    return True


def _list_groups(session: Session, rest: str) -> bool:
    echo(render("cli/console_groups.txt.j2", groups=_groups(session.stage, rest)))
    return True


def _members(session: Session, rest: str) -> bool:
    world = session.stage.world
    room = world.rooms[session.stage.room_of(session.group)]
    names = {c: world.contacts[c].name for c in room.members}
    echo(render("cli/console_members.txt.j2", members=names))
    return True


CONSOLE_COMMANDS: tuple[ConsoleCommand, ...] = (
    ConsoleCommand(
        ("/群", "/group"), "群名或单位代码:群类型", "切换群（当前：{group}）", _switch_group
    ),
    ConsoleCommand(
        ("/人", "/as"), "微信号", "切换发言人（当前：{sender}），新微信号即陌生人", _switch_sender
    ),
    ConsoleCommand(("/群列表", "/groups"), "[关键字]", "列出已建的群", _list_groups),
    ConsoleCommand(("/成员", "/members"), "", "列出当前群的成员", _members),
    ConsoleCommand(("/帮助", "/help"), "", "显示本说明", _help),
    ConsoleCommand(("/退出", "/quit"), "", "结束控制台", _quit),
)
_CONSOLE_BY_NAME = {name: c for c in CONSOLE_COMMANDS for name in c.names}


def _padded(text: str, width: int = 29) -> str:
    """``text`` padded to ``width`` columns as a terminal shows them (a Chinese character
    takes two)."""
    shown = sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)
    return text + " " * max(1, width - shown)


def console_help(session: Session) -> str:
    """The console's help, from its declarations."""
    rows = [
        (
            _padded(f"{c.names[0]} {c.usage}".strip()),
            c.summary.format(group=session.group, sender=session.sender or "未选择"),
        )
        for c in CONSOLE_COMMANDS
    ]
    return render("cli/console_help.txt.j2", rows=rows)


def interact(stage: Stage, starter: tuple[str, str] | None = None) -> None:
    """A line-by-line session; /帮助 lists the console's own commands."""
    from bot.chat.joins import office_contacts
    from bot.rehearsal.transcript import read_steps
    from matrix.relay.people import group_named

    groups = _groups(stage, "")
    group, sender = starter or ("", "")
    if groups:
        group = groups[0][0]
        with stage.engine.connect() as conn:
            found = group_named(conn, group)
            assert found is not None, "the group was just listed"
            sender = next(iter(office_contacts(conn, stage.bot, found.unit_code)), "")
    session = Session(stage, group, sender)
    echo(console_help(session))
    while True:
        try:
            prompt = render("cli/console_prompt.txt.j2", group=session.group, sender=session.sender)
            line = input(prompt)
        except (EOFError, KeyboardInterrupt):
            echo("")
            return
        line = line.strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        try:
            command = _CONSOLE_BY_NAME.get(word)
            if command is not None:
                if not command.run(session, rest.strip()):
                    return
                continue
            where, who, text = (session.group, session.sender, line)
            if "\t" in line:
                step = read_steps([line], "输入")[0]
                where, who, text = step.group, step.sender, step.text
            out = bot_lines(play(stage, where, who, text), stage)
            if out:
                echo(out)
        except MatrixError as exc:
            echo(str(exc))


def build_start(c: Context) -> datetime:
    """When a rehearsal with --provision starts: as many days before 09:00 today as building
    takes, so that the build ends this morning and 截止 17:00 means today, as the office means."""
    from matrix.provisioning.membership import survey
    from matrix.provisioning.plan import build_plan

    quotas = c.settings.account_quotas()
    with c.ready_engine().connect() as conn:
        days = build_plan(survey(conn, c.blueprint, bots=[q.id for q in quotas]), quotas)
    today = datetime.now(ZoneInfo(c.settings.timezone)).date()
    morning = datetime.combine(today, time(9), ZoneInfo(c.settings.timezone))
    return morning - timedelta(days=max(1, days.schedule.days))


@contextmanager
def rehearsal(c: Context, write: bool) -> Iterator[Context]:
    """The context a rehearsal runs in: a copy of the database (a temporary SQLite file made by
    ``matrix.backup``), so that notices, receipts and #登记 said on the stage never reach the
    real one; with ``write``, the database itself."""
    from matrix.backup import backup

    if write:
        yield c
        return
    with tempfile.TemporaryDirectory(prefix="qunmatrix-rehearsal-") as tmp:
        path = Path(tmp) / "rehearsal.db"
        backup(c.ready_engine(), path)
        copy = Context(c.settings.model_copy(update={"db": f"sqlite:///{path}"}))
        try:
            yield copy
        finally:
            copy.engine.dispose()


def starter_room(stage: Stage) -> tuple[str, str] | None:
    """A matrix with no groups yet begins as a real one does: a group of the top unit's office
    and the bot accounts, where the office sends #建群 and #确认. Returns (group, office); None
    when the office has no 微信号 (the rehearsal runs all the same: rooms can be built by hand
    with ``<建群 …>`` steps)."""
    from bot.chat.joins import office_contacts
    from matrix.errors import TreeError
    from matrix.scope import top_unit

    with stage.engine.connect() as conn:
        try:
            top = top_unit(conn)
        except TreeError:
            raise MatrixError("数据库里还没有名册", fix="请先导入名册：qunmatrix import") from None
        top_code, top_name = top.code, top.name
        office = next(iter(office_contacts(conn, stage.bot, top_code)), None)
    if office is None:
        return None
    topic = render("cli/console_starter_room.txt.j2", unit=top_name).strip()
    stage.world.create_room(office, topic, [stage.contact(office), *stage.bot.accounts])
    return topic, office


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
    write: Annotated[
        bool,
        typer.Option("--write", help="直接写入数据库（默认在数据库的副本上演练，不留痕迹）"),
    ] = False,
) -> None:
    """在模拟微信中以任意名册人员的身份在任意群里发言（演练与测试用，默认在数据库副本上）。"""
    from bot.rehearsal.transcript import read_steps, read_transcript

    with (
        rehearsal(ctx_of(ctx), write) as c,
        open_stage(c, start=build_start(c) if provision else None) as stage,
    ):
        starter = None
        empty = False
        if provision:
            stage.provision()
        elif not stage.world.rooms:
            starter = starter_room(stage)
            empty = starter is None
        typer.echo(
            render("cli/console_start.txt.j2", write=write, starter=starter, empty=empty), err=True
        )
        if script is not None:
            run_script(stage, read_transcript(script), str(script))
        elif not sys.stdin.isatty():
            run_script(stage, read_steps(sys.stdin, "标准输入"), "标准输入")
        else:
            interact(stage, starter)
