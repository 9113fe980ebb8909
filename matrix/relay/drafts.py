"""Reading the text of ``#通知``: options and the body.

Options stand at the start or at the end of the text, in any order: a deadline (``截止 17:00``,
``截止 明天 9点半``, ``截止 11月25日 12:00``) and ``需回执`` / ``无需回执``. Without a deadline the
notice is due at the end of the day, in the configured time zone; that is what "the same day"
means. The body is kept exactly as written.

>>> from datetime import datetime
>>> from zoneinfo import ZoneInfo
>>> now = datetime(2026, 11, 24, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
>>> d = parse_notice("截止 17:00 无需回执 请各校报送名单", now)
>>> d.body, d.deadline.strftime("%m-%d %H:%M"), d.require_ack
('请各校报送名单', '11-24 17:00', False)
>>> parse_notice("请各校报送名单", now).deadline.strftime("%m-%d %H:%M")
'11-24 23:59'
>>> parse_notice("截止明天9点半 开会", now).deadline.strftime("%m-%d %H:%M")
'11-25 09:30'
>>> d = parse_notice("请于今天17:00前报送建群情况，截止 17:00", now)
>>> d.body, d.deadline.strftime("%H:%M")
('请于今天17:00前报送建群情况', '17:00')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from matrix.relay.errors import BadCommand

_DAY_WORDS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2}
# \d and \s match full-width digits and spaces too, so １８：００ reads like 18:00
_WHEN = (
    r"截止(?:时间)?[:：]?\s*"
    r"(?P<day>今天|今日|明天|明日|后天)?\s*"
    r"(?:(?P<month>\d{1,2})[月/-](?P<date>\d{1,2})日?)?\s*"
    r"(?:(?P<hour>\d{1,2})(?:[:：](?P<minute>\d{2})|点(?:(?P<pm>\d{1,2})分?|(?P<half>半))?))?"
)
_SEP = r"[，,。；;]"
_DEADLINE = re.compile(rf"^{_WHEN}(?=\s|$|{_SEP}){_SEP}?\s*")
_COMMA = r"[，,；;]"  # eaten before a closing option; a full stop stays with the body
_DEADLINE_AT_END = re.compile(rf"(?:^|\s*{_COMMA}?\s*)[（(]?{_WHEN}[)）]?[。.!！]?\s*$")
_ACK_ON_WORDS = r"(?:需回执|要回执|需要回执)"
_ACK_OFF_WORDS = r"(?:无需回执|不需回执|不需要回执|免回执|不用回执)"
_ACK_ON = re.compile(rf"^{_ACK_ON_WORDS}{_SEP}?\s*")
_ACK_OFF = re.compile(rf"^{_ACK_OFF_WORDS}{_SEP}?\s*")
_ACK_ON_AT_END = re.compile(rf"\s*{_COMMA}?\s*{_ACK_ON_WORDS}[。.!！]?\s*$")
_ACK_OFF_AT_END = re.compile(rf"\s*{_COMMA}?\s*{_ACK_OFF_WORDS}[。.!！]?\s*$")
DEADLINE_FORMS = "截止 17:00、截止 17点半、截止 明天 9:00、截止 11月25日 12:00"


@dataclass(frozen=True)
class NoticeDraft:
    """What ``#通知`` asked for: the body, when it is due (aware, local), whether 收到 is asked."""

    body: str
    deadline: datetime
    require_ack: bool
    deadline_given: bool


def end_of_day(now: datetime) -> datetime:
    """23:59 of ``now``'s local day (tomorrow's if that has passed)."""
    end = now.replace(hour=23, minute=59, second=0, microsecond=0)
    return end if end > now else end + timedelta(days=1)


def parse_notice(text: str, now: datetime, *, require_ack: bool = True) -> NoticeDraft:
    """Split ``#通知``'s text into options and body; ``now`` is aware, in the local time zone."""
    rest = text.strip()
    deadline: datetime | None = None
    ack = require_ack
    while rest:  # options at the start
        if match := _DEADLINE.match(rest):
            deadline = _deadline(match, now)
        elif match := _ACK_OFF.match(rest):
            ack = False
        elif match := _ACK_ON.match(rest):
            ack = True
        else:
            break
        rest = rest[match.end() :]
    while rest:  # and at the end; a 截止 without a time there is just part of the body
        if (match := _DEADLINE_AT_END.search(rest)) and (
            match["hour"] or match["day"] or match["month"]
        ):
            deadline = _deadline(match, now) if deadline is None else deadline
        elif match := _ACK_OFF_AT_END.search(rest):
            ack = False
        elif match := _ACK_ON_AT_END.search(rest):
            ack = True
        else:
            break
        rest = rest[: match.start()].rstrip()
    if rest.startswith("截止"):
        raise BadCommand(
            "看不懂截止时间", fix=f"请这样写：{DEADLINE_FORMS}，时间后留一个空格再写正文"
        )
    if not rest:
        raise BadCommand("通知没有正文", fix="请这样发送：#通知 截止 17:00 正文内容")
    given = deadline is not None
    if deadline is None:
        deadline = end_of_day(now)
    elif deadline <= now:
        raise BadCommand(
            f"截止时间 {deadline:%m月%d日 %H:%M} 已经过去",
            fix="请写一个将来的时间，例如：截止 明天 17:00",
        )
    return NoticeDraft(rest, deadline, ack, given)


def _deadline(match: re.Match[str], now: datetime) -> datetime:
    day = now.date() + timedelta(days=_DAY_WORDS.get(match["day"] or "", 0))
    if match["month"]:
        try:
            day = day.replace(month=int(match["month"]), day=int(match["date"]))
        except ValueError:
            raise BadCommand(
                f"日期 {match['month']}月{match['date']}日 不存在",
                fix=f"请这样写：{DEADLINE_FORMS}",
            ) from None
    if match["hour"] is None:
        if not (match["day"] or match["month"]):
            raise BadCommand("截止后面缺少时间", fix=f"请这样写：{DEADLINE_FORMS}")
        at = time(23, 59)
    else:
        hour = int(match["hour"])
        minute = 30 if match["half"] else int(match["minute"] or match["pm"] or 0)
        if hour == 24 and minute == 0:
            hour, minute = 23, 59
        if hour > 23 or minute > 59:
            raise BadCommand(
                f"时间 {match['hour']}:{minute:02d} 不存在", fix=f"请这样写：{DEADLINE_FORMS}"
            )
        at = time(hour, minute)
    return datetime.combine(day, at, tzinfo=now.tzinfo)
