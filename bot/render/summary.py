"""Summaries as people receive them: a short chat text that fits one WeChat message, and a
file (xlsx, csv, md, html) to attach or save. Text formats come from ``templates/summary/``,
XLSX from ``bot.render.summary_xlsx``.

``#汇总 [单位] [表名] [格式]`` in chat and ``qunmatrix summary`` on the CLI both go through
``make_summary`` → ``chat_text`` / ``render_file``.

>>> parse_table("建设情况"), parse_format("表格")
('build', 'xlsx')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from sqlalchemy import Engine

from bot.render import summary_xlsx
from bot.render.templates import csv_bytes, label, render
from matrix.blueprint import Blueprint, normalize_label
from matrix.errors import MatrixError
from matrix.media import MEDIA_KINDS, MediaTable, media_table
from matrix.relay.env import RelayEnv
from matrix.summary import AuditTable, BuildStatus, audit_table, build_status
from matrix.summary.notice import NoticeTable, notice_table

Summary = BuildStatus | MediaTable | AuditTable | NoticeTable

# One WeChat message: the client takes far longer texts, but past about a screen people stop
# reading in a group chat; the full table goes in the attached file.
CHAT_LIMIT = 800

TABLES: dict[str, tuple[str, ...]] = {
    "build": ("build", "建设", "建群", "建设情况", "汇总表", "附件2", "矩阵"),
    "media": ("media", "自媒体", "媒体", "网站", "公众号", "附表", "新媒体"),
    "notice": ("notice", "通知", "回执", "通知回执", "下发"),
    "audit": ("audit", "审计", "问题", "检查"),
}
FORMATS: dict[str, tuple[str, ...]] = {
    "text": ("text", "txt", "文本", "文字"),
    "xlsx": ("xlsx", "excel", "表格", "电子表格"),
    "csv": ("csv",),
    "md": ("md", "markdown"),
    "html": ("html", "网页", "打印"),
}
_CONTEXT = {"build": "s", "media": "t", "audit": "a", "notice": "n"}


class SummaryRequestError(MatrixError):
    """An unknown table or format name."""


def _lookup(text: str, table: dict[str, tuple[str, ...]], what: str) -> str:
    folded = normalize_label(text).lower()
    for key, names in table.items():
        if folded in (normalize_label(n).lower() for n in names):
            return key
    choices = "、".join(
        f"{names[1] if len(names) > 1 else key}({key})" for key, names in table.items()
    )
    raise SummaryRequestError(f"不认识{what} {text!r}", fix=f"可用：{choices}")


def parse_table(text: str) -> str:
    """build | media | notice | audit, from a key or a Chinese name."""
    return _lookup(text, TABLES, "表名")


def parse_format(text: str) -> str:
    """text | xlsx | csv | md | html, from a key or a Chinese name."""
    return _lookup(text, FORMATS, "格式")


def make_summary(
    engine: Engine,
    bp: Blueprint,
    table: str,
    *,
    requester: str,
    target: str | None = None,
    as_of: date,
    deadline: date | None = None,
    findings: Iterable[Any] | None = None,
    relay: RelayEnv | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> Summary:
    """Compute one table for ``target`` (default: the requester's unit), scope-checked. The
    notice table reads the relay's data on ``relay``'s clock (default: the real one).
    ``on_step`` hears the build table's count (``build_status``)."""
    if table == "build":
        return build_status(
            engine,
            bp,
            requester=requester,
            target=target,
            as_of=as_of,
            deadline=deadline,
            on_step=on_step,
        )
    if table == "media":
        return media_table(engine, bp, requester=requester, target=target, as_of=as_of)
    if table == "audit":
        return audit_table(engine, findings or [], requester=requester, target=target, as_of=as_of)
    if table == "notice":
        env = relay or RelayEnv(engine, bp)
        return notice_table(env, requester=requester, target=target, as_of=as_of)
    raise SummaryRequestError(f"不认识表名 {table!r}", fix="可用：build、media、notice、audit")


def table_kind(summary: Summary) -> str:
    if isinstance(summary, BuildStatus):
        return "build"
    if isinstance(summary, MediaTable):
        return "media"
    if isinstance(summary, NoticeTable):
        return "notice"
    return "audit"


def _render(summary: Summary, fmt: str, **extra: Any) -> str:
    table = table_kind(summary)
    kinds = [(k.key, k.label) for k in MEDIA_KINDS]
    return render(f"summary/{table}.{fmt}.j2", **{_CONTEXT[table]: summary}, kinds=kinds, **extra)


def chat_text(summary: Summary, limit: int = CHAT_LIMIT, *, attached: bool = True) -> str:
    """The short text for one WeChat message: naming fewer units until it fits ``limit``.
    ``attached``: the full table goes along as a file (the text then says so)."""
    shown = 12
    while True:
        text = _render(summary, "txt", shown=shown, attached=attached).strip()
        if len(text) <= limit or shown == 0:
            return text
        shown = shown // 2 if shown > 3 else shown - 1


def render_file(summary: Summary, fmt: str) -> bytes:
    """The file contents in ``fmt`` (xlsx, csv, md, html; text is the chat text)."""
    if fmt == "xlsx":
        if isinstance(summary, BuildStatus):
            return summary_xlsx.build_xlsx(summary)
        if isinstance(summary, MediaTable):
            return summary_xlsx.media_xlsx(summary)
        if isinstance(summary, NoticeTable):
            return summary_xlsx.notice_xlsx(summary)
        return summary_xlsx.audit_xlsx(summary)
    if fmt == "text":
        return (chat_text(summary, attached=False) + "\n").encode("utf-8")
    if fmt not in ("csv", "md", "html"):
        raise SummaryRequestError(f"不认识格式 {fmt!r}", fix="可用：text、xlsx、csv、md、html")
    body = _render(summary, fmt)
    if fmt == "csv":
        return csv_bytes(body)
    return (body.rstrip("\n") + "\n").encode("utf-8")


def file_name(summary: Summary, fmt: str) -> str:
    """A name to save or attach the file under, e.g. 微信群矩阵建设情况汇总表_示范省_20260501.xlsx."""
    ext = "txt" if fmt == "text" else fmt
    unit = _UNSAFE_IN_NAMES.sub("_", summary.unit.name)[:40].strip(". ") or summary.unit.code
    return f"{label('files.' + table_kind(summary))}_{unit}_{summary.as_of:%Y%m%d}.{ext}"


# a unit name is roster text: in a file name it must not make a path (/, ..), nor hold what
# Windows refuses in names, nor control characters
_UNSAFE_IN_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
