"""``#汇总`` and ``#登记`` in chat: the summary and media engines behind two command handlers.

``#汇总 [单位] [表名] [格式]`` answers with the short chat text (the audit table from what #核查
finds, read afresh); when a file format is asked for,
the file is written to a fresh folder under the export folder and sent after the text through
the platform's ``send_file``. Scope is checked twice: by the dispatcher's permission choke point
(the unit must lie under one of the asker's offices) and by ``matrix.summary.scope``, which the
summary engines resolve the unit through, with that office as the requester.

``#登记 [单位] <类型> <名称或网址>`` records one media account for a city or county unit, in the
command's own transaction; ``#登记 无 公众号`` records that there is none.

A national table takes a while to compute and render: that work runs in a worker thread
(``Bot.offload``), with its own connections.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from bot.chat.calls import Call, Reply
from bot.chat.commands import SUMMARY_FORMATS, SUMMARY_TABLES
from bot.chat.provision import audit_under, refresh_under
from bot.config import Settings
from bot.render.findings import finding_json
from bot.render.summary import chat_text, file_name, make_summary, render_file
from matrix.media import parse_registration, record_media
from matrix.provisioning.findings import Finding

if TYPE_CHECKING:
    from bot.chat.dispatch import Bot


@dataclass(frozen=True)
class SummaryOptions:
    """What summaries in chat need besides the database: where files go, and what day it is."""

    export_dir: Path | None = None  # None: qunmatrix-exports in the system's temporary folder
    timezone: str = "Asia/Shanghai"
    deadline: date | None = None  # the build deadline the build-status table shows

    def today(self, now: datetime | None = None) -> date:
        """The date in the configured time zone of ``now`` (the bot's clock; default: real now)."""
        return (now or datetime.now(UTC)).astimezone(ZoneInfo(self.timezone)).date()

    def new_folder(self) -> Path:
        """A folder of its own for one file, so that the attachment keeps its readable name
        (微信群矩阵建设情况汇总表_乙1县_20260501.xlsx) however often it is asked for."""
        base = self.export_dir or Path(tempfile.gettempdir()) / "qunmatrix-exports"
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{self.today():%Y%m%d}-", dir=base))

    @classmethod
    def of(cls, settings: Settings) -> SummaryOptions:
        """The options as configured."""
        export_dir = Path(settings.export_dir) if settings.export_dir else None
        return cls(export_dir, settings.timezone, settings.build_deadline)


def requester_for(call: Call) -> str:
    """The asker's office whose subtree holds the unit acted on (the dispatcher made sure one
    does): the summary engines check scope again from there."""
    assert call.unit is not None  # an office command always acts on a unit
    tree = call.bot.tree
    return next(u for u in call.asker.office_units if tree.is_within(call.unit, u))


async def summary(call: Call) -> Reply:
    """#汇总 [单位] [表名] [格式]: the chat text, and the file when a format is asked for."""
    table = SUMMARY_TABLES[call.args["table"] or "建群"]
    fmt = SUMMARY_FORMATS[call.args["format"] or "文本"]
    if table == "audit":  # it tabulates what #核查 finds, read afresh from the rooms
        await refresh_under(call)
    options = call.bot.summaries
    attached = fmt != "text"
    text, path = await call.bot.offload(
        _tabulate,
        call.bot,
        table,
        fmt,
        requester=requester_for(call),
        target=call.unit,
        as_of=options.today(call.bot.now()),  # on a stage, the stage's day
        bots=frozenset(call.bot.accounts),
    )
    context = {"text": text, "attached": attached, "again": _ask_again(call, table)}
    if path is None:
        return Reply("summary.j2", context, audit={"table": table, "format": fmt})
    audit = {"table": table, "format": fmt, "file": str(path)}
    return Reply("summary.j2", context, audit=audit, files=(str(path),))


def _tabulate(
    bot: Bot,
    table: str,
    fmt: str,
    *,
    requester: str,
    target: str | None,
    as_of: date,
    bots: frozenset[str],
) -> tuple[str, Path | None]:
    """#汇总's work, in a worker thread: the chat text, and the file written when ``fmt`` is
    one (its path). Reads only settings of the bot, which never change."""
    options = bot.summaries
    findings = None
    if table == "audit":
        assert target is not None
        findings = _named(bot.engine, audit_under(bot.engine, bot.blueprint, target, bots))
    data = make_summary(
        bot.engine,
        bot.blueprint,
        table,
        requester=requester,
        target=target,
        as_of=as_of,
        deadline=options.deadline,
        relay=bot.relay.env,
        findings=findings,
    )
    attached = fmt != "text"
    text = chat_text(data, attached=attached)
    if not attached:
        return text, None
    path = options.new_folder() / file_name(data, fmt)
    path.write_bytes(render_file(data, fmt))
    return text, path


def _named(engine: Engine, found: list[Finding]) -> list[dict[str, Any]]:
    """What #核查 finds, with each person named (the table is read by people, not scripts)."""
    return [finding_json(f) for f in found]


def _ask_again(call: Call, table: str) -> str:
    """The words after #汇总 that ask for this same table (the format is added after them)."""
    words = []
    if call.args["unit"] is not None:
        words.append(call.bot.unit_word(call.args["unit"]))
    words.append(next(name for name, key in SUMMARY_TABLES.items() if key == table))
    return " ".join(words)


async def register(call: Call) -> Reply:
    """#登记 [单位] <类型> <名称或网址>: one media account of a city or county unit."""
    kind, account = call.args["platform"], call.args["account"]
    # "#登记 无 公众号" reads as the media module's "无 公众号"; otherwise 类型 then 名称
    registration = parse_registration(f"{kind} {account}")
    assert call.unit is not None  # an office command always acts on a unit
    change = record_media(
        call.conn,
        call.bot.blueprint,
        registration,
        requester=call.unit,
        actor=call.asker.contact_id,
    )
    return Reply("registered.j2", {"c": change})
