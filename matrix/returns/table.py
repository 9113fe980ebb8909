"""What offices read of a form: ``#进度 F3`` (who has answered, per level: the relay's progress
of the form's notice, an answer being the receipt) and ``#汇总 F3`` (one row per unit that owes
an answer, with its latest answer), each seen from the asker's own subtree only.

The table is one SQL query however large the subtree (a national form has some 200,000 rows);
rendering it is the chat layer's business (``bot.render.returns``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, func, select

from matrix.bulk import no_gc
from matrix.provisioning.authority import OUTSIDE
from matrix.relay.acks import Progress, expected_units, notice_progress
from matrix.relay.env import RelayEnv
from matrix.relay.errors import NotAllowed, UnknownCode
from matrix.relay.people import UnitRef, unit
from matrix.returns.forms import form_code
from matrix.tables import FORM, FORM_ANSWER, NOTICE, PERSON, UNIT


@dataclass(frozen=True)
class FormInfo:
    """A form as its table and progress name it."""

    id: int
    code: str
    notice_id: int
    notice_code: str
    title: str
    fields: list[str]
    deadline: datetime  # local
    unit_name: str
    state: str  # its notice's (live, held, withdrawn, …)


@dataclass(frozen=True)
class FormProgress:
    """``#进度 F3`` (``returns/progress.j2``)."""

    form: FormInfo
    progress: Progress


class FormRow(NamedTuple):
    """One unit's line: where it sits, its answer (blank when none), who answered, when. A
    tuple, not a frozen dataclass: a national table builds 200,000 of them, and a frozen
    dataclass's ``__init__`` costs five times as much (about a second)."""

    parent: str
    unit: str
    level: str  # the level's label
    answers: list[str]  # in field order
    person: str
    at: str  # local, to the minute (2026-11-24 10:05); "" when not answered
    revision: int


@dataclass(frozen=True)
class FormTable:
    """``#汇总 F3``: the rows of ``scope``'s subtree, in tree order."""

    form: FormInfo
    scope: UnitRef
    as_of: date
    rows: list[FormRow]

    @property
    def answered(self) -> int:
        return sum(1 for r in self.rows if r.at)


def form_info(conn: Connection, env: RelayEnv, form_id: int) -> FormInfo:
    """The form ``F<form_id>``; ``UnknownCode`` when there is none."""
    row = conn.execute(
        select(FORM, UNIT.c.name.label("unit_name"), NOTICE.c.state)
        .join(UNIT, UNIT.c.code == FORM.c.unit_code)
        .join(NOTICE, NOTICE.c.id == FORM.c.notice_id)
        .where(FORM.c.id == form_id)
    ).first()
    if row is None:
        raise UnknownCode(
            f"没有编号为 {form_code(form_id)} 的填报", fix="请核对填报编号（见填报通知，如 F3）"
        )
    return FormInfo(
        row.id,
        form_code(row.id),
        row.notice_id,
        f"T{row.notice_id}",
        row.title,
        list(json.loads(row.fields)),
        env.local(row.deadline),
        row.unit_name,
        row.state,
    )


def form_progress(env: RelayEnv, form_id: int, *, asker: str) -> FormProgress:
    """Who has answered, as ``asker`` (a contact id) may see it."""
    with env.engine.connect() as conn:
        info = form_info(conn, env, form_id)
    return FormProgress(info, notice_progress(env, info.notice_id, asker=asker))


def form_table(env: RelayEnv, form_id: int, *, within: str, as_of: date) -> FormTable:
    """One row per unit that owes ``F<form_id>`` an answer, in ``within``'s subtree: all of the
    form's units when ``within`` is at or above the issuing unit, its own part when below."""
    with env.engine.connect() as conn:
        info = form_info(conn, env, form_id)
        office, issuer = unit(conn, within), unit(conn, _issuer_code(conn, form_id))
        if office is None or issuer is None:
            raise UnknownCode("单位已不在名册中", fix="请管理员核对名册")
        if office.contains(issuer):
            scope = issuer
        elif issuer.contains(office):
            scope = office
        else:
            raise NotAllowed(
                f"填报 {info.code} 由{info.unit_name}发出，{office.name}不在其范围内",
                fix="只能查看本单位或上级单位下发的填报",
                reason=OUTSIDE,
                action="returns",
            )
        rows = _rows(conn, env, info, scope)
    return FormTable(info, scope, as_of, rows)


def _issuer_code(conn: Connection, form_id: int) -> str:
    return str(conn.execute(select(FORM.c.unit_code).where(FORM.c.id == form_id)).scalar_one())


def _rows(conn: Connection, env: RelayEnv, info: FormInfo, scope: UnitRef) -> list[FormRow]:
    """Every unit's line in one query: the unit, its parent, its answer and who gave it."""
    parent = UNIT.alias("parent")
    labels = {lvl.key: lvl.label for lvl in env.blueprint.levels}
    query = (
        select(
            func.coalesce(parent.c.name, ""),
            UNIT.c.name,
            UNIT.c.level,
            FORM_ANSWER.c.answers,
            func.coalesce(PERSON.c.name, ""),
            _local_minute(conn, env, FORM_ANSWER.c.answered_at),
            func.coalesce(FORM_ANSWER.c.revision, 0),
        )
        .select_from(
            UNIT.outerjoin(parent, parent.c.code == UNIT.c.parent_code)
            .outerjoin(
                FORM_ANSWER,
                and_(FORM_ANSWER.c.form_id == info.id, FORM_ANSWER.c.unit_code == UNIT.c.code),
            )
            .outerjoin(PERSON, PERSON.c.id == FORM_ANSWER.c.person_id)
        )
        .where(UNIT.c.code.in_(expected_units(info.notice_id, scope, env.blueprint)))
        .order_by(UNIT.c.path)
    )
    with no_gc():  # 200,000 rows of strings and lists, none in a cycle
        return _lines(conn.execute(query).all(), info.fields, labels)


def _lines(found: Sequence[Any], fields: list[str], labels: dict[str, str]) -> list[FormRow]:
    """The query's rows as the table's lines, each answer's values in field order."""
    # one parse of every answer at once: 200,000 json.loads calls cost more than the query
    given: list[dict[str, Any]] = json.loads("[" + ",".join(r[3] or "{}" for r in found) + "]")
    blank = dict.fromkeys(fields, "")  # merged with an answer: its values in field order
    width = len(fields)
    return [
        FormRow(
            parent_name,
            name,
            labels.get(level, level),
            [*(blank | answer).values()][:width],
            person,
            at or "",
            revision,
        )
        for (parent_name, name, level, _, person, at, revision), answer in zip(
            found, given, strict=True
        )
    ]


def _local_minute(conn: Connection, env: RelayEnv, at: Any) -> Any:
    """``at`` as local text to the minute, formatted by the database: parsing and formatting
    200,000 datetimes in Python costs about a second."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone(env.tz.key, at), "YYYY-MM-DD HH24:MI")
    offset = env.now().utcoffset()  # SQLite knows no time zones; the local offset now
    seconds = int(offset.total_seconds()) if offset is not None else 0
    return func.strftime("%Y-%m-%d %H:%M", at, f"{seconds:+d} seconds")
