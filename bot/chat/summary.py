"""``#汇总`` and ``#登记`` in chat: the summary and media engines behind two command executors.

``#汇总 [单位] [表名] [格式]`` answers with the short chat text (the audit table from what #核查
finds, read afresh); when a file format is asked for,
the file is written to a fresh folder under the export folder and sent after the text through
the platform's ``send_file``. Scope is decided by ``matrix.provisioning.authority``'s policy (the dispatcher
checks that the unit lies under one of the asker's offices); the summary engines then resolve
the unit through ``matrix.scope`` from that office, the requester this module picks by
the same policy.

``#登记 [单位] <类型> <名称或网址>`` records one media account for a city or county unit, in the
command's own transaction; ``#登记 无 公众号`` records that there is none.

A national table takes a while to compute and render: that work runs in a worker thread
(``Services.offload``), with its own connections.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from bot.chat.commands import UNIT, Command, Kind, Param, Who
from bot.chat.context import Call, Reply, Services
from bot.chat.provision import audit_under, refresh_under
from bot.chat.settings import SummaryOptions as SummaryOptions
from bot.render import returns as returns_render
from bot.render.findings import finding_json
from bot.render.summary import FORMATS, TABLES, chat_text, file_name, make_summary, render_file
from matrix.media import MEDIA_KINDS, NONE_WORDS, find_kind, parse_registration, record_media
from matrix.provisioning.findings import Finding
from matrix.returns.table import form_table

# The 表名 and 格式 of #汇总 as offered in chat, and the keys bot.render.summary knows them by;
# every alias it accepts (附件2, 表格, excel …) is accepted here too.
SUMMARY_TABLES = {"建群": "build", "媒体": "media", "通知": "notice", "核查": "audit"}
SUMMARY_FORMATS = {"文本": "text", "xlsx": "xlsx", "csv": "csv", "md": "md", "html": "html"}
_MEDIA = ("网站", "网页", "公众号", "视频号", "抖音", "快手")
# "#登记 无 公众号" records that there is none: 无 stands where the 类型 goes
_NONE = "无"


def _summary_choice(
    key: str, label: str, choices: dict[str, str], aliases: dict[str, tuple[str, ...]]
) -> Param:
    """An optional choice of #汇总 offering ``choices``, accepting each key's ``aliases``."""
    synonyms = tuple((alias, choice) for choice, k in choices.items() for alias in aliases[k])
    return Param(key, label, Kind.CHOICE, False, tuple(choices), synonyms)


def _media_synonyms() -> tuple[tuple[str, str], ...]:
    by_kind = {find_kind(choice): choice for choice in _MEDIA}
    pairs = [
        (name, by_kind[kind])
        for kind in MEDIA_KINDS
        for name in (kind.key, kind.label, *kind.aliases)
    ]
    return (*pairs, *((word, _NONE) for word in sorted(NONE_WORDS)))


def requester_for(call: Call) -> str:
    """The asker's office whose subtree holds the unit acted on (the dispatcher made sure one
    does): the summary engines check scope again from there."""
    assert call.unit is not None  # an office command always acts on a unit
    authority = call.core.authority
    return next(u for u in call.asker.office_units if authority.within(call.unit, u))


async def summary(call: Call) -> Reply:
    """#汇总 [单位] [表名] [格式]: the chat text, and the file when a format is asked for;
    #汇总 F3 [格式]: a form's answers, one row per unit."""
    fmt = SUMMARY_FORMATS[call.args["format"] or "文本"]
    if call.args.get("form"):
        return await _form_summary(call, fmt)
    table = SUMMARY_TABLES[call.args["table"] or "建群"]
    if table == "audit":  # it tabulates what #核查 finds, read afresh from the rooms
        await refresh_under(call)
    options = call.core.summaries
    attached = fmt != "text"
    text, path = await call.core.offload(
        _tabulate,
        call.core,
        table,
        fmt,
        requester=requester_for(call),
        target=call.unit,
        as_of=options.today(call.core.now()),  # on a stage, the stage's day
        bots=frozenset(call.core.accounts),
    )
    context = {"text": text, "attached": attached, "again": _ask_again(call, table)}
    if path is None:
        return Reply("summary.j2", context, audit={"table": table, "format": fmt})
    audit = {"table": table, "format": fmt, "file": str(path)}
    return Reply("summary.j2", context, audit=audit, files=(str(path),))


def _tabulate(
    bot: Services,
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


async def _form_summary(call: Call, fmt: str) -> Reply:
    """#汇总 F3 [格式]: the form's rows of the unit acted on's subtree (the asker's office's)."""
    form_id, options = call.args["form"], call.core.summaries
    text, path = await call.core.offload(
        _form_file,
        call.core,
        form_id,
        fmt,
        within=call.unit or requester_for(call),
        as_of=options.today(call.core.now()),
    )
    context = {"text": text, "attached": True}  # the form's text says how to get the file
    audit = {"form": f"F{form_id}", "format": fmt}
    if path is None:
        return Reply("summary.j2", context, audit=audit)
    return Reply("summary.j2", context, audit=audit | {"file": str(path)}, files=(str(path),))


def _form_file(
    bot: Services, form_id: int, fmt: str, *, within: str, as_of: date
) -> tuple[str, Path | None]:
    """#汇总 F3's work, in a worker thread: one query for the rows, then the text and file."""
    table = form_table(bot.relay.env, form_id, within=within, as_of=as_of)
    attached = fmt != "text"
    text = returns_render.chat_text(table, attached=attached)
    if not attached:
        return text, None
    path = bot.summaries.new_folder() / returns_render.file_name(table, fmt)
    path.write_bytes(returns_render.render_file(table, fmt))
    return text, path


def _named(engine: Engine, found: list[Finding]) -> list[dict[str, Any]]:
    """What #核查 finds, with each person named (the table is read by people, not scripts)."""
    return [finding_json(f) for f in found]


def _ask_again(call: Call, table: str) -> str:
    """The words after #汇总 that ask for this same table (the format is added after them)."""
    words = []
    if call.args["unit"] is not None:
        words.append(call.core.unit_word(call.args["unit"]))
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
        call.core.blueprint,
        registration,
        requester=call.unit,
        actor=call.asker.contact_id,
    )
    return Reply("registered.j2", {"c": change})


SUMMARY = Command(
    "summary",
    "汇总",
    "summary",
    (
        UNIT,
        _summary_choice("table", "表名", SUMMARY_TABLES, TABLES),
        Param("form", "填报编号", Kind.FORM, required=False),
        _summary_choice("format", "格式", SUMMARY_FORMATS, FORMATS),
    ),
    Who.OFFICE,
    "生成本单位及下属单位的建群情况汇总表（附件2）、通知回执情况表、填报汇总表（#汇总 F3）等",
    "#汇总 甲市 建群 xlsx",
    templates=("summary.j2",),
    executor=summary,
)
REGISTER = Command(
    "register",
    "登记",
    "register",
    (
        UNIT,
        Param("platform", "类型", Kind.CHOICE, choices=_MEDIA, synonyms=_media_synonyms()),
        Param("account", "名称或网址", Kind.TEXT),
    ),
    Who.OFFICE,
    "登记本单位（市、县两级）的网站、公众号、视频号、抖音、快手；没有就发 #登记 无 公众号",
    "#登记 公众号 乙1县少先队",
    templates=("registered.j2",),
    executor=register,
)
