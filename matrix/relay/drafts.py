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

``定时 明天 8:00`` holds the notice until then, and ``每周五 9:00`` (or ``每天 8:00``) repeats it;
a deadline given as a time alone then falls on the day it goes out, and without one it is due
at the end of that day:

>>> d = parse_notice("定时 明天 8:00 截止 17:00 请报送周报", now)
>>> d.body, d.send_at.strftime("%m-%d %H:%M"), d.deadline.strftime("%m-%d %H:%M")
('请报送周报', '11-25 08:00', '11-25 17:00')
>>> d = parse_notice("请报送周报 每周五 9:00", now)
>>> d.repeat, d.send_at.strftime("%a %m-%d %H:%M"), d.deadline.strftime("%m-%d %H:%M")
('weekly:4:09:00', 'Fri 11-27 09:00', '11-27 23:59')
>>> try:
...     parse_notice("定时 8:00 开会", now)
... except BadCommand as refused:
...     print(refused)
定时 11月24日 08:00 已经过去。请写一个将来的时间，例如：定时 明天 8:00

``附件`` takes the files its sender just sent in the group (``matrix.relay.attachments``), and
``公告`` also sets the notice as the 群公告 where the bot owns the group; each stands apart from
the body (after a space), so that "请见附件" stays body:

>>> d = parse_notice("请查收会议材料 附件 公告", now)
>>> d.body, d.files, d.announce
('请查收会议材料', True, True)
>>> parse_notice("请见附件", now).files
False
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
_TIME = r"(?:(?P<hour>\d{1,2})(?:[:：](?P<minute>\d{2})|点(?:(?P<pm>\d{1,2})分?|(?P<half>半))?))?"
# 定时 明天 8:00: when a held notice goes out (the same day and time forms as 截止)
_AT = (
    r"定时(?:发送)?[:：]?\s*"
    r"(?P<day>今天|今日|明天|明日|后天)?\s*"
    r"(?:(?P<month>\d{1,2})[月/-](?P<date>\d{1,2})日?)?\s*" + _TIME
)
# 每周五 9:00, 每天 8:00: a notice that goes out again and again until #停止
_EVERY = r"每(?:(?:周|星期)(?P<weekday>[一二三四五六日天1-7])|(?P<daily>天|日))\s*" + _TIME
_WEEKDAYS = {c: i for i, c in enumerate("一二三四五六日")} | {"天": 6}
_SEP = r"[，,。；;]"
_DEADLINE = re.compile(rf"^{_WHEN}(?=\s|$|{_SEP}){_SEP}?\s*")
_COMMA = r"[，,；;]"  # eaten before a closing option; a full stop stays with the body
_DEADLINE_AT_END = re.compile(rf"(?:^|\s*{_COMMA}?\s*)[（(]?{_WHEN}[)）]?[。.!！]?\s*$")
_SEND_AT = re.compile(rf"^{_AT}(?=\s|$|{_SEP}){_SEP}?\s*")
_SEND_AT_END = re.compile(rf"(?:^|\s*{_COMMA}?\s*)[（(]?{_AT}[)）]?[。.!！]?\s*$")
_REPEAT = re.compile(rf"^{_EVERY}(?=\s|$|{_SEP}){_SEP}?\s*")
_REPEAT_AT_END = re.compile(rf"(?:^|\s*{_COMMA}?\s*)[（(]?{_EVERY}[)）]?[。.!！]?\s*$")
_ACK_ON_WORDS = r"(?:需回执|要回执|需要回执)"
_ACK_OFF_WORDS = r"(?:无需回执|不需回执|不需要回执|免回执|不用回执)"
_ACK_ON = re.compile(rf"^{_ACK_ON_WORDS}{_SEP}?\s*")
_ACK_OFF = re.compile(rf"^{_ACK_OFF_WORDS}{_SEP}?\s*")
_ACK_ON_AT_END = re.compile(rf"\s*{_COMMA}?\s*{_ACK_ON_WORDS}[。.!！]?\s*$")
_ACK_OFF_AT_END = re.compile(rf"\s*{_COMMA}?\s*{_ACK_OFF_WORDS}[。.!！]?\s*$")
_ACKS = (_ACK_ON, _ACK_OFF, _ACK_ON_AT_END, _ACK_OFF_AT_END)
_FILES_WORDS = r"(?:附件|带附件)"
_ANNOUNCE_WORDS = r"(?:公告|群公告|设为群公告)"
_FILES = re.compile(rf"^{_FILES_WORDS}(?:\s+|$)")
_ANNOUNCE = re.compile(rf"^{_ANNOUNCE_WORDS}(?:\s+|$)")
_FILES_AT_END = re.compile(rf"(?:^|\s+){_FILES_WORDS}\s*$")
_ANNOUNCE_AT_END = re.compile(rf"(?:^|\s+){_ANNOUNCE_WORDS}\s*$")
DEADLINE_FORMS = "截止 17:00、截止 17点半、截止 明天 9:00、截止 11月25日 12:00"
SEND_AT_FORMS = "定时 明天 8:00、定时 11月25日 9:30，或每周五 9:00、每天 8:00"


@dataclass(frozen=True)
class NoticeDraft:
    """What ``#通知`` asked for: the body, when it is due (aware, local), whether 收到 is asked."""

    body: str
    deadline: datetime
    require_ack: bool
    deadline_given: bool
    send_at: datetime | None = None  # held until then (the first time, for a recurring one)
    repeat: str | None = None  # ``weekly:<0-6>:HH:MM`` or ``daily:HH:MM`` (see ``next_time``)
    ack_given: bool = False  # 需回执 / 无需回执 was written (a correction then asks again)
    files: bool = False  # 附件: the files its sender just sent go with it
    announce: bool = False  # 公告: also the 群公告 where the bot owns the group


def end_of_day(now: datetime) -> datetime:
    """23:59 of ``now``'s local day (tomorrow's if that has passed)."""
    end = now.replace(hour=23, minute=59, second=0, microsecond=0)
    return end if end > now else end + timedelta(days=1)


def parse_notice(text: str, now: datetime, *, require_ack: bool = True) -> NoticeDraft:
    """Split ``#通知``'s text into options and body; ``now`` is aware, in the local time zone."""
    rest = text.strip()
    found = _Options(require_ack, now)
    while rest:  # options at the start
        match = found.take_first(rest)
        if match is None:
            break
        rest = rest[match.end() :]
    while rest:  # and at the end; a 截止 without a time there is just part of the body
        match = found.take_last(rest)
        if match is None:
            break
        rest = rest[: match.start()].rstrip()
    if rest.startswith("截止"):
        raise BadCommand(
            "看不懂截止时间", fix=f"请这样写：{DEADLINE_FORMS}，时间后留一个空格再写正文"
        )
    if rest.startswith("定时"):
        raise BadCommand("看不懂定时发送的时间", fix=f"请这样写：{SEND_AT_FORMS}")
    if not rest:
        raise BadCommand("通知没有正文", fix="请这样发送：#通知 截止 17:00 正文内容")
    return found.draft(rest, now)


class _Options:
    """The options found so far; the deadline is read once the sending time is known."""

    def __init__(self, require_ack: bool, now: datetime) -> None:
        self.now = now
        self.ack = require_ack
        self.ack_given = False
        self.deadline: re.Match[str] | None = None
        self.send_at: re.Match[str] | None = None
        self.repeat: re.Match[str] | None = None
        self.files = False
        self.announce = False

    def take_first(self, rest: str) -> re.Match[str] | None:
        if match := _DEADLINE.match(rest):
            _deadline(match, self.now)  # a bad one is refused as soon as it is read
            self.deadline = match
        elif match := _SEND_AT.match(rest):
            self.send_at = match
        elif match := _REPEAT.match(rest):
            self.repeat = match
        elif match := _ACK_OFF.match(rest):
            self.ack = False
        elif match := _ACK_ON.match(rest):
            self.ack = True
        elif match := _FILES.match(rest):
            self.files = True
        elif match := _ANNOUNCE.match(rest):
            self.announce = True
        self.ack_given = self.ack_given or (match is not None and match.re in _ACKS)
        return match

    def take_last(self, rest: str) -> re.Match[str] | None:
        if (match := _DEADLINE_AT_END.search(rest)) and (
            match["hour"] or match["day"] or match["month"]
        ):
            _deadline(match, self.now)
            self.deadline = self.deadline or match
        elif (match := _SEND_AT_END.search(rest)) and match["hour"]:
            self.send_at = self.send_at or match
        elif (match := _REPEAT_AT_END.search(rest)) and match["hour"]:
            self.repeat = self.repeat or match
        elif match := _ACK_OFF_AT_END.search(rest):
            self.ack = False
        elif match := _ACK_ON_AT_END.search(rest):
            self.ack = True
        elif match := _FILES_AT_END.search(rest):
            self.files = True
        elif match := _ANNOUNCE_AT_END.search(rest):
            self.announce = True
        else:
            match = None
        self.ack_given = self.ack_given or (match is not None and match.re in _ACKS)
        return match

    def draft(self, body: str, now: datetime) -> NoticeDraft:
        if self.send_at is not None and self.repeat is not None:
            raise BadCommand("定时和每周重复只能选一个", fix=f"请这样写：{SEND_AT_FORMS}")
        repeat = _repeat(self.repeat) if self.repeat is not None else None
        send_at = None
        if self.send_at is not None:
            if self.send_at["hour"] is None:
                raise BadCommand("定时后面缺少时间", fix=f"请这样写：{SEND_AT_FORMS}")
            send_at = _deadline(self.send_at, now)
            if send_at <= now:
                raise BadCommand(
                    f"定时 {send_at:%m月%d日 %H:%M} 已经过去",
                    fix="请写一个将来的时间，例如：定时 明天 8:00",
                )
        elif repeat is not None:
            send_at = next_time(repeat, now)
        base = send_at or now
        deadline = None
        if self.deadline is not None:
            m = self.deadline
            # a time alone falls on the day the notice goes out; 明天 and dates read as typed
            deadline = _deadline(m, now if m["day"] or m["month"] else base)
        given = deadline is not None
        if deadline is None:
            deadline = end_of_day(base)
        elif deadline <= now:
            raise BadCommand(
                f"截止时间 {deadline:%m月%d日 %H:%M} 已经过去",
                fix="请写一个将来的时间，例如：截止 明天 17:00",
            )
        elif deadline <= base:
            raise BadCommand(
                f"截止时间 {deadline:%m月%d日 %H:%M} 早于发送时间 {base:%m月%d日 %H:%M}",
                fix="请把截止时间写在发送之后",
            )
        return NoticeDraft(
            body,
            deadline,
            self.ack,
            given,
            send_at,
            repeat,
            self.ack_given,
            self.files,
            self.announce,
        )


def _repeat(match: re.Match[str]) -> str:
    """``每周五 9:00`` as ``weekly:4:09:00``."""
    if match["hour"] is None:
        raise BadCommand("每周重复缺少时间", fix=f"请这样写：{SEND_AT_FORMS}")
    at = _clock_time(match)
    if match["daily"]:
        return f"daily:{at:%H:%M}"
    day = match["weekday"]
    weekday = int(day) - 1 if day.isdigit() else _WEEKDAYS[day]
    return f"weekly:{weekday}:{at:%H:%M}"


def next_time(repeat: str, after: datetime) -> datetime:
    """The first time a recurring notice goes out after ``after`` (aware, local).

    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> friday = datetime(2026, 11, 27, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    >>> next_time("weekly:4:09:00", friday).strftime("%m-%d %H:%M")
    '12-04 09:00'
    >>> next_time("daily:08:00", friday).strftime("%m-%d %H:%M")
    '11-28 08:00'
    """
    kind, *rest = repeat.split(":")
    hour, minute = int(rest[-2]), int(rest[-1])
    at = after.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if kind == "weekly":
        at += timedelta(days=(int(rest[0]) - at.weekday()) % 7)
        step = timedelta(days=7)
    else:
        step = timedelta(days=1)
    while at <= after:
        at += step
    return at


def _clock_time(match: re.Match[str]) -> time:
    hour = int(match["hour"])
    minute = 30 if match["half"] else int(match["minute"] or match["pm"] or 0)
    if hour == 24 and minute == 0:
        hour, minute = 23, 59
    if hour > 23 or minute > 59:
        raise BadCommand(
            f"时间 {match['hour']}:{minute:02d} 不存在", fix=f"请这样写：{DEADLINE_FORMS}"
        )
    return time(hour, minute)


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
        at = _clock_time(match)
    return datetime.combine(day, at, tzinfo=now.tzinfo)
