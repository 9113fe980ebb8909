"""``#填报 <标题> 字段 <字段1> <字段2> … 截止 <时间>``: reading a form and sending it down.

A form is a notice whose body says what to fill in and how (``compose``, the chat layer's
template, words it); it goes through ``matrix.relay.notices.issue_notice``, so a large one waits
for #确认, copies are paced and can be withdrawn, and reminders are the relay's. The form row is
written in the notice's own transaction (``on_write``): both or neither.

>>> from datetime import datetime
>>> from zoneinfo import ZoneInfo
>>> now = datetime(2026, 11, 24, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
>>> d = parse_form("少先队员人数统计 字段 学校 人数、中队数 截止 明天 17:00", now)
>>> d.title, d.fields, d.deadline.strftime("%m-%d %H:%M")
('少先队员人数统计', ('学校', '人数', '中队数'), '11-25 17:00')
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from matrix import audit_log
from matrix.relay.drafts import DEADLINE_FORMS, parse_notice
from matrix.relay.env import RelayEnv
from matrix.relay.errors import BadCommand
from matrix.relay.notices import NoticePlan, issue_notice
from matrix.tables import FORM, NOTICE, UNIT

MAX_TITLE = 40  # characters: a title is a line, not a paragraph
MAX_FIELDS = 20  # a form people fill in by typing in a chat
MAX_FIELD = 16  # characters of one field's name
_FORM = re.compile(r"^(?P<title>.*?)\s*字段[:：]?\s*(?P<fields>.*?)\s*(?P<when>截止.*)$", re.S)
_FIELD_SEP = re.compile(r"[\s、，,；;]+")
_MARK = "FORM"  # what stands after the deadline when it is read by the notice's parser


@dataclass(frozen=True)
class FormDraft:
    """What ``#填报`` asked for: the title, the fields in order, when answers are due (local),
    and the deadline as typed (the notice reads it again, the same way)."""

    title: str
    fields: tuple[str, ...]
    deadline: datetime
    when: str


@dataclass(frozen=True)
class FormCard:
    """What the form's notice says (``returns/form_notice.j2``)."""

    code: str
    title: str
    fields: tuple[str, ...]
    deadline: datetime  # local
    unit_name: str


@dataclass(frozen=True)
class FormIssued:
    """``#填报``'s answer: the form's id and its notice's plan (``relay/notice_plan.j2``)."""

    code: str
    title: str
    fields: tuple[str, ...]
    deadline: datetime  # local
    plan: NoticePlan


def form_code(form_id: int) -> str:
    """What people type for a form."""
    return f"F{form_id}"


def parse_form(text: str, now: datetime) -> FormDraft:
    """Split ``#填报``'s text; ``BadCommand`` (in Chinese, with the right form) when it cannot."""
    match = _FORM.match(text.strip())
    if match is None:
        raise BadCommand(
            "填报需要写明字段和截止时间",
            fix="请这样发送：#填报 少先队员人数统计 字段 学校 人数 截止 明天 17:00",
        )
    title = match["title"].strip()
    fields = tuple(f for f in _FIELD_SEP.split(match["fields"].strip()) if f)
    if not title:
        raise BadCommand("填报缺少标题", fix="请在“字段”前写上标题，例如：#填报 人数统计 字段 …")
    if len(title) > MAX_TITLE:
        raise BadCommand(f"填报标题太长（{len(title)} 字）", fix=f"请控制在 {MAX_TITLE} 字以内")
    if not fields:
        raise BadCommand("填报没有字段", fix="请在“字段”后列出要填的项，用空格分开")
    if len(fields) > MAX_FIELDS:
        raise BadCommand(
            f"填报最多 {MAX_FIELDS} 个字段，你写了 {len(fields)} 个", fix="请拆成几份填报"
        )
    long = [f for f in fields if len(f) > MAX_FIELD or "=" in f or "＝" in f]
    if long:
        raise BadCommand(
            f"字段名“{long[0][:MAX_FIELD]}”不可用",
            fix=f"字段名请在 {MAX_FIELD} 字以内，不含“=”",
        )
    twice = sorted({f for f in fields if fields.count(f) > 1})
    if twice:
        raise BadCommand(f"字段“{twice[0]}”重复了", fix="每个字段只写一次")
    when = match["when"].strip()
    draft = parse_notice(f"{when} {_MARK}", now)  # past deadlines are refused there
    if draft.body != _MARK or not draft.deadline_given or draft.send_at is not None:
        raise BadCommand("看不懂截止时间", fix=f"请这样写：{DEADLINE_FORMS}")
    return FormDraft(title, fields, draft.deadline, when)


Compose = Callable[[FormCard], str]
"""The chat layer's wording of a form's notice (a template)."""


def issue_form(
    env: RelayEnv,
    room_id: str,
    contact_id: str,
    text: str,
    *,
    compose: Compose,
    confirm: bool = False,
) -> FormIssued:
    """``#填报`` from ``contact_id`` in ``room_id``: the form and its notice, in one transaction.
    Who may send it, and where it goes, is the notice's rule (an office of the unit leading
    the group, to every relay group below). Raises a ``RelayError`` (nothing written)."""
    draft = parse_form(text, env.now())
    if parse_notice(f"{draft.when} 正文", env.now()).files:
        raise BadCommand(
            "填报不能带附件", fix="文件请先用 #通知 … 附件 下发，再发 #填报（通知里写明见上条附件）"
        )
    written: list[str] = []

    def write_form(conn: Connection, notice_id: int) -> None:
        unit_code, unit_name = conn.execute(
            select(NOTICE.c.unit_code, UNIT.c.name)
            .join(UNIT, UNIT.c.code == NOTICE.c.unit_code)
            .where(NOTICE.c.id == notice_id)
        ).one()
        inserted = conn.execute(
            insert(FORM).values(
                notice_id=notice_id,
                unit_code=unit_code,
                title=draft.title,
                fields=json.dumps(draft.fields, ensure_ascii=False),
                deadline=draft.deadline,
                issuer_contact=contact_id,
                created_at=env.clock.now(),
            )
        ).inserted_primary_key
        assert inserted is not None
        code = form_code(int(inserted[0]))
        card = FormCard(code, draft.title, draft.fields, draft.deadline, unit_name)
        conn.execute(update(NOTICE).where(NOTICE.c.id == notice_id).values(body=compose(card)))
        audit_log.record(
            conn,
            contact_id,
            "returns.form",
            unit_code,
            form=code,
            notice_id=notice_id,
            title=draft.title,
            fields=list(draft.fields),
            deadline=draft.deadline.isoformat(),
        )
        written.append(code)

    # the guard reads the words every copy will carry (the id is not known yet)
    preview = compose(FormCard("F", draft.title, draft.fields, draft.deadline, ""))
    plan = issue_notice(
        env,
        room_id,
        contact_id,
        f"{draft.when} {preview}",
        confirm=confirm,
        on_write=write_form,
    )
    return FormIssued(written[0], draft.title, draft.fields, draft.deadline, plan)
