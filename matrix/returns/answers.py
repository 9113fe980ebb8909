"""``#填 F3 值1 值2 …`` (or one ``字段=值`` per line): reading an answer and recording answers in
batches.

Who answers is decided as for a 收到 (``matrix.relay.acks``): a roster person, by stable contact
id, of a child unit of the unit leading the group the form reached (or of that unit itself in a
group its own people answer). One answer per unit: the latest wins until the deadline; ``字段=值``
lines change only the fields they name. Every answer is audit-logged, and the first one is also
the unit's receipt of the form's notice, so the relay reminds only units that have not answered.

``record_answers`` takes a batch (the chat coalesces answers arriving together) and writes it in
one transaction with a few multi-row statements: each answer is checked first, a refused one
gets its reason and writes nothing, the others are written together.

>>> parse_answer("F3 12 5")
AnswerDraft(form_id=3, values=('12', '5'), named=())
>>> parse_answer("f3\\n人数 = 12\\n中队数=5").named
(('人数', '12'), ('中队数', '5'))
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

from matrix import audit_log
from matrix.platform import Member
from matrix.provisioning.authority import OUTSIDE, STRANGER
from matrix.provisioning.binding import resolve
from matrix.relay.codes import parse_code
from matrix.relay.env import RelayEnv
from matrix.relay.errors import BadCommand, NotAllowed, RelayError, UnknownCode
from matrix.relay.people import GroupRef, UnitRef
from matrix.relay.targets import answers_for_itself
from matrix.returns.forms import form_code
from matrix.tables import (
    ACKNOWLEDGEMENT,
    DELIVERY,
    FORM,
    FORM_ANSWER,
    GROUP,
    NOTICE,
    PERSON,
    POSITION,
    UNIT,
)

MAX_VALUE = 100  # characters of one answer: a number, a name, a short remark
_NAMED = re.compile(r"^\s*([^=＝\s][^=＝]*?)\s*[=＝]\s*(.*?)\s*$")
_CLOSED = ("withdrawn", "stopped", "corrected")


@dataclass(frozen=True)
class AnswerDraft:
    """What ``#填`` says: the form, and either the values in field order or named ones."""

    form_id: int
    values: tuple[str, ...] = ()
    named: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AnswerRequest:
    """One ``#填`` as the chat got it: where, from whom, what."""

    room_id: str
    contact_id: str
    draft: AnswerDraft


@dataclass(frozen=True)
class Answered:
    """What one ``#填`` did (``returns/answered.j2``)."""

    code: str
    title: str
    units: list[str]
    fields: list[str]
    answers: dict[str, str]
    revision: int  # 1: the first answer; more: a correction
    deadline: datetime  # local
    missing: list[str] = field(default_factory=list)  # fields still empty


def parse_answer(text: str) -> AnswerDraft:
    """The text after ``#填``; ``BadCommand`` when it names no form or holds nothing."""
    first, _, rest = text.strip().partition("\n")
    # the IME's full-width space, a tab or a colon may follow the code as well as a space
    code, _, inline = re.sub(r"^([^\s:：，,]*)[\s:：，,]+", r"\1 ", first.strip()).partition(" ")
    code = code.strip().rstrip("，,：:")
    form_id = parse_code(code, "F") if code[:1].isalpha() else None  # F3, never a bare 3
    if form_id is None:
        raise BadCommand("请写上填报编号", fix="例如：#填 F3 12 5（编号见填报通知）")
    body = "\n".join(p for p in (inline.strip(), rest.strip()) if p)
    if not body:
        raise BadCommand("没有填写内容", fix=f"请这样发送：#填 F{form_id} 值1 值2 …")
    # one value per line when there are several lines (a value may then hold spaces)
    pieces = [p.strip() for p in body.splitlines() if p.strip()] if "\n" in body else body.split()
    named = [_NAMED.match(p) for p in pieces]
    if all(named):
        return AnswerDraft(form_id, named=tuple((m[1], m[2]) for m in named if m))
    if any("=" in p or "＝" in p for p in pieces):
        raise BadCommand(
            "“字段=值”和按顺序填写不能混用",
            fix=f"请每行写一项“字段=值”，或按顺序写全部值：#填 F{form_id} 值1 值2 …",
        )
    return AnswerDraft(form_id, values=tuple(pieces))


@dataclass(frozen=True)
class _Form:
    id: int
    notice_id: int
    unit_code: str
    unit_name: str
    title: str
    fields: tuple[str, ...]
    deadline: datetime
    state: str  # its notice's

    @property
    def code(self) -> str:
        return form_code(self.id)


@dataclass(frozen=True)
class _Accepted:
    """An answer that passed every check: for which units, which fields, how."""

    request: AnswerRequest
    form: _Form
    group_id: int
    person_id: int
    units: list[tuple[str, str]]  # (code, name)
    given: dict[str, str]
    replace: bool  # in field order: the whole answer; ``字段=值``: only the fields named


@dataclass
class _Row:
    row_id: int | None
    answers: dict[str, str]
    revision: int


def record_answers(env: RelayEnv, requests: Sequence[AnswerRequest]) -> list[Answered | RelayError]:
    """Check and record a batch of ``#填`` in one transaction; for each request, in order, what
    it did or why it was refused (a refused one wrote nothing)."""
    now = env.clock.now()
    with env.engine.begin() as conn:
        checked = _check_all(conn, env, requests, now)
        accepted = [c for c in checked if isinstance(c, _Accepted)]
        done = iter(_write(conn, env, accepted, now) if accepted else [])
    return [next(done) if isinstance(c, _Accepted) else c for c in checked]


def _check_all(
    conn: Connection, env: RelayEnv, requests: Sequence[AnswerRequest], now: datetime
) -> list[_Accepted | RelayError]:
    """Each request checked, with the forms, groups, people and copies read once per batch."""
    forms = _forms(conn, {r.draft.form_id for r in requests})
    groups = _groups(conn, {r.room_id for r in requests})
    people = _people(conn, {r.contact_id for r in requests})
    pairs = {
        (forms[r.draft.form_id].notice_id, groups[r.room_id].id)
        for r in requests
        if r.draft.form_id in forms and groups.get(r.room_id) is not None
    }
    delivered = _delivered(conn, pairs)
    out: list[_Accepted | RelayError] = []
    for r in requests:
        person_id, held = people.get(r.contact_id, (None, []))
        try:
            form = forms.get(r.draft.form_id)
            group = groups.get(r.room_id)
            out.append(_check(env, r, form, group, person_id, held, delivered, now))
        except RelayError as refused:
            out.append(refused)
    return out


def _check(
    env: RelayEnv,
    r: AnswerRequest,
    form: _Form | None,
    group: GroupRef | None,
    person_id: int | None,
    held: list[UnitRef],
    delivered: set[tuple[int, int]],
    now: datetime,
) -> _Accepted:
    code = form_code(r.draft.form_id)
    if group is None:
        raise BadCommand("本群不在群矩阵中", fix="请在收到填报的工作群里填写")
    if person_id is None:  # the policy's STRANGER: no roster person behind the contact
        raise NotAllowed(
            "你不在名册中，填报未记录",
            fix="请联系管理员把你的微信号登记到名册",
            reason=STRANGER,
            action="fill",
        )
    if form is None or (form.notice_id, group.id) not in delivered:
        raise UnknownCode(f"本群没有收到过填报 {code}", fix="请核对填报编号（见填报通知，如 F3）")
    if form.state in _CLOSED:
        raise BadCommand(f"填报 {code} 已撤回，不再收取", fix=f"如有疑问请联系{form.unit_name}")
    if now > form.deadline:
        when = env.local(form.deadline)
        raise BadCommand(
            f"填报 {code} 已于 {when.month}月{when.day}日 {when:%H:%M} 截止，不能再填报或更正",
            fix=f"如需补报，请联系{form.unit_name}",
        )
    itself = answers_for_itself(env.blueprint, group.kind)
    units = {
        u.code: u.name for u in held if (u.code if itself else u.parent_code) == group.unit_code
    }
    if not units:
        raise NotAllowed(
            f"只有本群下属单位的人员可以填报 {code}",
            fix="请由本单位在群里的负责同志填写",
            reason=OUTSIDE,
            action="fill",
        )
    given, replace = _given(form, r.draft)
    return _Accepted(r, form, group.id, person_id, list(units.items()), given, replace)


def _given(form: _Form, draft: AnswerDraft) -> tuple[dict[str, str], bool]:
    """The fields an answer fills in, checked against the form; whether it replaces all."""
    code, fields = form.code, form.fields
    if draft.values:
        if len(draft.values) != len(fields):
            raise BadCommand(
                f"填报 {code} 有 {len(fields)} 项（{'、'.join(fields)}），你填了 "
                f"{len(draft.values)} 项",
                fix=f"请按顺序填写全部 {len(fields)} 项，用空格分开；"
                "值里有空格时请每行写一项“字段=值”",
            )
        pairs = list(zip(fields, draft.values, strict=True))
    else:
        pairs = list(draft.named)
        unknown = [k for k, _ in pairs if k not in fields]
        if unknown:
            raise BadCommand(
                f"填报 {code} 没有“{unknown[0][:MAX_VALUE]}”这一项",
                fix=f"可填的项：{'、'.join(fields)}",
            )
    for name, value in pairs:
        if not value:
            raise BadCommand(f"“{name}”没有填写内容", fix="请写成“字段=值”")
        if len(value) > MAX_VALUE:
            raise BadCommand(
                f"“{name}”的内容太长（{len(value)} 字）", fix=f"每项请在 {MAX_VALUE} 字以内"
            )
    return dict(pairs), bool(draft.values)


def _people(conn: Connection, contacts: set[str]) -> dict[str, tuple[int, list[UnitRef]]]:
    """Contact id → the roster person and the units of their positions, for a whole batch in a
    few queries: resolved as ``matrix.relay.people.relay_asker`` resolves one (binding by 微信号
    on first use; a superseded contact, a removed person or unit counts for nobody)."""
    members = [Member(c) for c in sorted(contacts)]
    found = resolve(conn, members, actor="relay", superseded=False)
    current = set()
    held: dict[int, list[UnitRef]] = {}
    ids = sorted(set(found.values()))
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        current |= set(
            conn.execute(
                select(PERSON.c.id).where(PERSON.c.id.in_(chunk), PERSON.c.removed_at.is_(None))
            ).scalars()
        )
        for r in conn.execute(
            select(UNIT, POSITION.c.person_id)
            .join(POSITION, POSITION.c.unit_code == UNIT.c.code)
            .where(POSITION.c.person_id.in_(chunk), UNIT.c.removed_at.is_(None))
            .order_by(UNIT.c.depth, UNIT.c.code, POSITION.c.seq)
        ):
            held.setdefault(r.person_id, []).append(
                UnitRef(r.code, r.name, r.level, r.depth, r.path, r.parent_code)
            )
    return {c: (p, held.get(p, [])) for c, p in found.items() if p in current}


def _forms(conn: Connection, ids: set[int]) -> dict[int, _Form]:
    rows = conn.execute(
        select(
            FORM.c.id,
            FORM.c.notice_id,
            FORM.c.unit_code,
            UNIT.c.name,
            FORM.c.title,
            FORM.c.fields,
            FORM.c.deadline,
            NOTICE.c.state,
        )
        .join(NOTICE, NOTICE.c.id == FORM.c.notice_id)
        .join(UNIT, UNIT.c.code == FORM.c.unit_code)
        .where(FORM.c.id.in_(sorted(ids)))
    )
    return {
        r.id: _Form(
            r.id,
            r.notice_id,
            r.unit_code,
            r.name,
            r.title,
            tuple(json.loads(r.fields)),
            r.deadline,
            r.state,
        )
        for r in rows
    }


def _groups(conn: Connection, rooms: set[str]) -> dict[str, GroupRef]:
    """The matrix groups of these rooms (a room outside the matrix is left out)."""
    found: dict[str, GroupRef] = {}
    listed = sorted(rooms)
    for i in range(0, len(listed), 500):
        for r in conn.execute(select(GROUP).where(GROUP.c.room_id.in_(listed[i : i + 500]))):
            found[r.room_id] = GroupRef(r.id, r.unit_code, r.kind, r.shard, r.name, r.room_id)
    return found


def _delivered(conn: Connection, pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which (notice, group) pairs had a copy (sent or still owed: an outage does not stop a
    unit that heard of the form from answering)."""
    if not pairs:
        return set()
    notices = sorted({n for n, _ in pairs})
    rows = conn.execute(
        select(DELIVERY.c.notice_id, DELIVERY.c.group_id).where(
            DELIVERY.c.kind == "notice",
            DELIVERY.c.notice_id.in_(notices),
            DELIVERY.c.group_id.in_(sorted({g for _, g in pairs})),
        )
    )
    return {(n, g) for n, g in rows} & pairs


_UPDATE = (
    update(FORM_ANSWER)
    .where(FORM_ANSWER.c.id == bindparam("row_id"))
    .values(
        answers=bindparam("new_answers"),
        group_id=bindparam("new_group"),
        person_id=bindparam("new_person"),
        contact_id=bindparam("new_contact"),
        revision=bindparam("new_revision"),
        answered_at=bindparam("new_at", type_=FORM_ANSWER.c.answered_at.type),
    )
)


def _write(
    conn: Connection, env: RelayEnv, accepted: list[_Accepted], now: datetime
) -> list[Answered]:
    """Apply the answers in order (a later one for the same unit wins), then write the final
    rows, the receipts and the audit entries with one statement per kind."""
    keys = {(a.form.id, code) for a in accepted for code, _ in a.units}
    rows = _existing(conn, keys)
    touched: dict[tuple[int, str], tuple[_Row, _Accepted]] = {}
    results = []
    for a in accepted:
        first: _Row | None = None
        for code, _ in a.units:
            key = (a.form.id, code)
            current = rows.get(key)
            answers = dict(a.given) if a.replace or current is None else current.answers | a.given
            revision = (current.revision if current else 0) + 1
            row = _Row(current.row_id if current else None, answers, revision)
            rows[key] = row
            touched[key] = (row, a)
            first = first or row
            audit_log.record(
                conn,
                a.request.contact_id,
                "returns.answer",
                code,
                form=a.form.code,
                group_id=a.group_id,
                answers=answers,
                revision=row.revision,
            )
        assert first is not None
        results.append(
            Answered(
                a.form.code,
                a.form.title,
                [name for _, name in a.units],
                list(a.form.fields),
                first.answers,
                first.revision,
                env.local(a.form.deadline),
                [f for f in a.form.fields if not first.answers.get(f)],
            )
        )
    _store(conn, touched, now)
    _receipts(conn, touched, now)
    return results


def _existing(conn: Connection, keys: set[tuple[int, str]]) -> dict[tuple[int, str], _Row]:
    """The answers already recorded for these (form, unit) pairs."""
    rows = conn.execute(
        select(
            FORM_ANSWER.c.id,
            FORM_ANSWER.c.form_id,
            FORM_ANSWER.c.unit_code,
            FORM_ANSWER.c.answers,
            FORM_ANSWER.c.revision,
        ).where(
            FORM_ANSWER.c.form_id.in_(sorted({f for f, _ in keys})),
            FORM_ANSWER.c.unit_code.in_(sorted({u for _, u in keys})),
        )
    )
    return {
        (r.form_id, r.unit_code): _Row(r.id, json.loads(r.answers), r.revision)
        for r in rows
        if (r.form_id, r.unit_code) in keys
    }


def _store(
    conn: Connection, touched: dict[tuple[int, str], tuple[_Row, _Accepted]], now: datetime
) -> None:
    new, changed = [], []
    for (form_id, unit_code), (row, a) in touched.items():
        text = json.dumps(row.answers, ensure_ascii=False)
        if row.row_id is None:
            new.append(
                {
                    "form_id": form_id,
                    "unit_code": unit_code,
                    "answers": text,
                    "group_id": a.group_id,
                    "person_id": a.person_id,
                    "contact_id": a.request.contact_id,
                    "revision": row.revision,
                    "answered_at": now,
                }
            )
        else:
            changed.append(
                {
                    "row_id": row.row_id,
                    "new_answers": text,
                    "new_group": a.group_id,
                    "new_person": a.person_id,
                    "new_contact": a.request.contact_id,
                    "new_revision": row.revision,
                    "new_at": now,
                }
            )
    if new:
        conn.execute(insert(FORM_ANSWER), new)
    if changed:
        conn.execute(_UPDATE, changed)


def _receipts(
    conn: Connection, touched: dict[tuple[int, str], tuple[_Row, _Accepted]], now: datetime
) -> None:
    """A unit's first answer is its receipt of the form's notice (the relay's reminders then
    pass it by)."""
    wanted = {(a.form.notice_id, unit_code): a for (_, unit_code), (_, a) in touched.items()}
    have = {
        (n, u)
        for n, u in conn.execute(
            select(ACKNOWLEDGEMENT.c.notice_id, ACKNOWLEDGEMENT.c.unit_code).where(
                ACKNOWLEDGEMENT.c.notice_id.in_(sorted({n for n, _ in wanted})),
                ACKNOWLEDGEMENT.c.unit_code.in_(sorted({u for _, u in wanted})),
            )
        )
    }
    missing = [
        {
            "notice_id": notice_id,
            "unit_code": unit_code,
            "group_id": a.group_id,
            "person_id": a.person_id,
            "contact_id": a.request.contact_id,
            "at": now,
        }
        for (notice_id, unit_code), a in wanted.items()
        if (notice_id, unit_code) not in have
    ]
    if missing:
        conn.execute(insert(ACKNOWLEDGEMENT), missing)
