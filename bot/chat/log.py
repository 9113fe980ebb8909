"""``#日志 [单位]`` in chat: an office reads the newest audit entries about its unit and the
units under it (the dispatcher has checked that the unit lies in the asker's subtree). The
answer is bounded: the newest ``CHAT_LINES`` entries, each cut to one short line; the operator
reads further with ``qunmatrix log show``."""

from __future__ import annotations

from bot.chat.commands import UNIT, Command, Who
from bot.chat.context import Call, Reply
from bot.render.log import log_lines
from matrix import audit_log

CHAT_LINES = 10  # entries in one answer: a chat message, not a report
DETAIL_WIDTH = 30  # characters of an entry's detail shown in chat


async def log(call: Call) -> Reply:
    """#日志 [单位]: the newest entries of the unit's subtree."""
    assert call.unit is not None  # an office command always acts on a unit
    page = audit_log.search(call.conn, unit_code=call.unit, limit=CHAT_LINES)
    lines = log_lines(call.conn, page, call.core.summaries.timezone, width=DETAIL_WIDTH)
    return Reply(
        "log.j2",
        {
            "lines": lines,
            "total": page.total,
            "unit": call.core.tree.name(call.unit),
            "code": call.unit,
        },
        audit={"shown": len(lines)},
    )


LOG = Command(
    "log",
    "日志",
    "log",
    (UNIT,),
    Who.OFFICE,
    "查看本单位及下属单位最近的审计日志：谁在何时做了什么",
    "#日志 乙1县",
    templates=("log.j2",),
    executor=log,
)
