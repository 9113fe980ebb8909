"""The transcript format of ``qunmatrix console --script``: one event per line, tab-separated.

Input ``GROUP<TAB>SENDER<TAB>TEXT``: GROUP is a group's name or ``UNITCODE:KIND[:SHARD]``,
SENDER a roster wechat_id (or any new id, for a stranger), TEXT the message, or ``<加入>`` /
``<退出>`` for the sender joining or leaving, ``<文件 通知.pdf 2MB>`` for the sender sending a file
(``<引用 通知.pdf> TEXT`` quotes it), or ``<快进 17:00>`` / ``<快进 30分钟>`` to let the
simulated clock run on (reminders and deadlines fall due; GROUP and SENDER are not used), or
``<建群 微信号 微信号 …>`` for SENDER building a room by hand, named GROUP, with those members and
the bot accounts (the way most of a matrix exists before the bot: to rehearse #认领). Blank
lines are skipped.

Output ``GROUP<TAB>BOT_ACCOUNT<TAB>TEXT`` per bot message; the further lines of a multi-line
text follow indented by four spaces, so a line that starts with a space continues the last one.

>>> [s.text for s in read_steps(["K1:county-counselors\\twxK1n008\\t#帮助", ""], "t.txt")]
['#帮助']
>>> build_members("<建群 wxK1n008  wxK1S1n012>"), build_members("#建群")
(['wxK1n008', 'wxK1S1n012'], None)
>>> format_line("乙1县群", "bot-1", "第一行\\n第二行").split("\\n")
['乙1县群\\tbot-1\\t第一行', '    第二行']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from matrix.errors import MatrixError

INDENT = "    "
BUILD = re.compile(r"^<建群((?:\s+[^\s<>]+)*)\s*>$")


@dataclass(frozen=True)
class Step:
    line_no: int
    group: str
    sender: str
    text: str


def read_steps(lines: Iterable[str], source: str) -> list[Step]:
    """Every step of a transcript; a malformed line fails naming its number, before any runs."""
    steps = []
    for n, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise MatrixError(
                "应为三列，用 Tab 分隔：群<TAB>发送人<TAB>内容",
                where=f"{source} 第 {n} 行",
                fix="群写群名称或 单位代码:群类型[:分群号]，发送人写微信号，内容可为 <加入> 或 <退出>",
            )
        steps.append(Step(n, parts[0].strip(), parts[1].strip(), parts[2].strip()))
    return steps


def read_transcript(path: Path) -> list[Step]:
    """The steps of a transcript file (UTF-8, with or without BOM, or GB18030 as Windows saves)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MatrixError(f"无法读取脚本文件 {path}", fix="请检查路径") from exc
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return read_steps(data.decode(encoding).splitlines(), str(path))
        except UnicodeDecodeError:
            continue
    raise MatrixError(f"无法识别脚本文件 {path} 的编码", fix="请另存为 UTF-8")


def format_line(group: str, account: str, text: str) -> str:
    """One bot message in the output format."""
    first, *rest = text.split("\n")
    return "\n".join([f"{group}\t{account}\t{first}", *(INDENT + line for line in rest)])


def build_members(text: str) -> list[str] | None:
    """The members of a ``<建群 微信号 …>`` step, or None when ``text`` is not one."""
    found = BUILD.match(text.strip())
    return None if found is None else found[1].split()
