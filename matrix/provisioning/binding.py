"""Identity binding: which roster person a WeChat contact id is.

A contact is bound in one of three ways: its 微信号 matches the roster (automatic), the person
confirms their phone number to the bot, or an office decides (join review, a claim). Bindings
never create persons, so a contact id that changes (an account reconnected) is simply bound
again to the same person: the person's older contact id is kept, marked superseded. An office or
the operator can end a binding (``revoke``): the row stays, marked revoked. Only an *active*
binding (neither superseded nor revoked) says who a contact is for authority (``lookup``); the
others are history, and a contact with history is never bound again from the roster's 微信号 on
its own. A contact with no binding is an unknown member.

Phone and office bindings and every revocation are admin-relevant and go to the audit log;
matches by 微信号 are derived from the roster itself and are not logged one by one (a national
sync makes 750,000).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, insert, select, update

from matrix import audit_log
from matrix.errors import MatrixError
from matrix.models import utcnow
from matrix.platform import Member
from matrix.roster import clean_phone
from matrix.tables import CONTACT_BINDING, MEMBERSHIP, PERSON, POSITION, UNIT

METHODS = ("wechat_id", "phone", "admin")
# a binding that says who the contact is: not replaced by a newer one, not ended by an office
ACTIVE: ColumnElement[bool] = and_(
    CONTACT_BINDING.c.superseded_at.is_(None), CONTACT_BINDING.c.revoked_at.is_(None)
)
PATHS = {"wechat_id": "名册微信号", "phone": "手机号", "admin": "办公室核实"}


class BindingError(MatrixError):
    """A contact cannot be bound as asked (no such person, an ambiguous phone number …)."""


def person_of(conn: Connection, contact_id: str) -> int | None:
    """The roster person ``contact_id`` is actively bound to, or None."""
    found = conn.execute(
        select(CONTACT_BINDING.c.person_id).where(
            CONTACT_BINDING.c.contact_id == contact_id, ACTIVE
        )
    ).scalar()
    return None if found is None else int(found)


def lookup(conn: Connection, contact_id: str) -> int | None:
    """Who ``contact_id`` is, without writing anything: its active binding, else (when it has
    no binding at all, not even a superseded or revoked one) the roster person whose 微信号 it
    is. The bot asks this for every command, so a roster re-import that rewrites 微信号 never
    undoes a binding made in chat, and a replaced or revoked contact has no authority left."""
    row = conn.execute(
        select(CONTACT_BINDING.c.person_id, ACTIVE.label("active")).where(
            CONTACT_BINDING.c.contact_id == contact_id
        )
    ).first()
    if row is not None:
        return int(row.person_id) if row.active else None
    found = conn.execute(
        select(PERSON.c.id)
        .where(PERSON.c.wechat_id == contact_id, PERSON.c.removed_at.is_(None))
        .limit(1)
    ).scalar()
    return None if found is None else int(found)


def has_history(conn: Connection, contact_id: str) -> bool:
    """Whether ``contact_id`` was bound once and no longer is (superseded or revoked)."""
    found = conn.execute(
        select(CONTACT_BINDING.c.id).where(CONTACT_BINDING.c.contact_id == contact_id, ~ACTIVE)
    ).first()
    return found is not None


def contacts_of(conn: Connection, person_ids: Iterable[int]) -> dict[int, str]:
    """How the bots reach each person: their current bound contact, else their 微信号
    (persons with neither are left out: a bot cannot invite or @-mention them)."""
    ids = sorted(set(person_ids))
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        revoked = (
            select(CONTACT_BINDING.c.id)
            .where(
                CONTACT_BINDING.c.contact_id == PERSON.c.wechat_id,
                CONTACT_BINDING.c.revoked_at.is_not(None),
            )
            .exists()
        )
        for pid, wx in conn.execute(
            select(PERSON.c.id, PERSON.c.wechat_id).where(
                PERSON.c.id.in_(chunk), PERSON.c.wechat_id.is_not(None), ~revoked
            )
        ):
            out[int(pid)] = str(wx)
        # the newest live binding wins over the roster's 微信号
        for pid, cid in conn.execute(
            select(CONTACT_BINDING.c.person_id, CONTACT_BINDING.c.contact_id)
            .where(CONTACT_BINDING.c.person_id.in_(chunk), ACTIVE)
            .order_by(CONTACT_BINDING.c.id)
        ):
            out[int(pid)] = str(cid)
    return out


def contact_of(conn: Connection, person_id: int) -> str | None:
    """The person's current contact id (the newest active binding)."""
    found = conn.execute(
        select(CONTACT_BINDING.c.contact_id)
        .where(CONTACT_BINDING.c.person_id == person_id, ACTIVE)
        .order_by(CONTACT_BINDING.c.id.desc())
    ).scalar()
    return None if found is None else str(found)


def bind(conn: Connection, contact_id: str, person_id: int, method: str, actor: str) -> bool:
    """Bind ``contact_id`` to ``person_id``; False if it already was. The person's other
    contact ids are superseded (an id change), never duplicated as a new person; a revoked
    binding of this contact is replaced (an office decided again)."""
    if method not in METHODS:
        raise ValueError(method)
    exists = conn.execute(select(PERSON.c.id).where(PERSON.c.id == person_id)).scalar()
    if exists is None:
        raise BindingError(f"名册中没有编号为 {person_id} 的人员", fix="请核对人员编号")
    now = utcnow()
    current = conn.execute(
        select(CONTACT_BINDING.c.id, CONTACT_BINDING.c.person_id, ACTIVE.label("active")).where(
            CONTACT_BINDING.c.contact_id == contact_id
        )
    ).first()
    if current is not None and current.person_id == person_id and current.active:
        return False
    conn.execute(
        update(CONTACT_BINDING)
        .where(
            CONTACT_BINDING.c.person_id == person_id,
            CONTACT_BINDING.c.contact_id != contact_id,
            ACTIVE,
        )
        .values(superseded_at=now)
    )
    _supersede_roster_wechat(conn, person_id, contact_id, now)
    row = {"person_id": person_id, "method": method, "actor": actor, "bound_at": now}
    if current is None:
        conn.execute(insert(CONTACT_BINDING), [{"contact_id": contact_id, **row}])
    else:
        conn.execute(
            update(CONTACT_BINDING)
            .where(CONTACT_BINDING.c.id == current.id)
            .values(**row, superseded_at=None, revoked_at=None, revoked_by=None)
        )
    if method != "wechat_id":
        # rooms already seat this contact (as an unknown member, or as whom it was bound to
        # before): it is this person now
        conn.execute(
            update(MEMBERSHIP)
            .where(MEMBERSHIP.c.contact_id == contact_id)
            .values(person_id=person_id)
        )
        audit_log.record(
            conn,
            actor,
            "binding.bind",
            None,
            contact=contact_id,
            person=person_id,
            method=method,
            replaced_person=None if current is None else current.person_id,
        )
    return True


def _supersede_roster_wechat(
    conn: Connection, person_id: int, contact_id: str, now: datetime
) -> None:
    """The person's roster 微信号, if no binding records it yet, is an older contact of theirs
    too: record it superseded, or it would still speak for them through the roster."""
    wechat = _unrecorded_wechat(conn, person_id)
    if wechat is not None and wechat != contact_id:
        _record_wechat(conn, person_id, wechat, now, superseded_at=now)


def _unrecorded_wechat(conn: Connection, person_id: int) -> str | None:
    """The person's roster 微信号 when no binding row holds it yet."""
    wechat = conn.execute(select(PERSON.c.wechat_id).where(PERSON.c.id == person_id)).scalar()
    if wechat is None:
        return None
    if conn.execute(
        select(CONTACT_BINDING.c.id).where(CONTACT_BINDING.c.contact_id == wechat)
    ).first():
        return None
    return str(wechat)


def _record_wechat(
    conn: Connection, person_id: int, wechat: str, now: datetime, **state: datetime
) -> None:
    row = {"contact_id": wechat, "person_id": person_id, "method": "wechat_id", "actor": "roster"}
    conn.execute(insert(CONTACT_BINDING), [{**row, "bound_at": now, **state}])


def bind_by_phone(conn: Connection, contact_id: str, phone: str, actor: str) -> int:
    """The person confirmed their phone number to the bot: bind to the one roster person with
    that number. Raises ``BindingError`` when none or several have it."""
    cleaned = clean_phone(phone)
    if cleaned is None:
        raise BindingError(f"手机号 {phone} 格式不对", fix="请发送 11 位手机号，例如 13800138000")
    found = phone_holders(conn, cleaned)
    if not found:
        raise BindingError(
            f"名册中没有手机号 {cleaned}", fix="请核对号码，或请管理员在名册中补录后再试"
        )
    if len(found) > 1:
        raise BindingError(
            f"名册中有 {len(found)} 人使用手机号 {cleaned}", fix="请联系管理员为您确认身份"
        )
    bind(conn, contact_id, found[0], "phone", actor)
    return found[0]


def phone_holders(conn: Connection, phone: str) -> list[int]:
    """The roster persons (not removed) registered with ``phone`` (already cleaned)."""
    query = select(PERSON.c.id).where(PERSON.c.phone == phone, PERSON.c.removed_at.is_(None))
    return [int(r[0]) for r in conn.execute(query.order_by(PERSON.c.id))]


def bind_by_admin(conn: Connection, contact_id: str, person_id: int, actor: str) -> int:
    """An admin decided who ``contact_id`` is."""
    bind(conn, contact_id, person_id, "admin", actor)
    return person_id


def resolve(
    conn: Connection,
    members: Sequence[Member],
    actor: str = "platform",
    *,
    superseded: bool = True,
) -> dict[str, int]:
    """Contact id → person for the members that are known, binding by 微信号 on the way
    (``Member.wechat_id``, or a contact id that is itself the roster's 微信号).

    ``superseded``: whether a contact the person used before still counts as them. It does for
    the record of who sits in a room (the audit then finds the person twice, DUPLICATE_MEMBER);
    it does not for anything that decides what a contact may do. A revoked contact is nobody,
    and no contact with a binding in its history is bound again by 微信号."""
    ids = [m.contact_id for m in members]
    known: dict[str, int] = {}
    history: set[str] = set()
    for chunk in _chunks(ids):
        for cid, pid, is_active, revoked in conn.execute(
            select(
                CONTACT_BINDING.c.contact_id,
                CONTACT_BINDING.c.person_id,
                ACTIVE.label("active"),
                CONTACT_BINDING.c.revoked_at.is_not(None).label("revoked"),
            ).where(CONTACT_BINDING.c.contact_id.in_(chunk))
        ):
            if is_active or (superseded and not revoked):
                known[cid] = int(pid)
            else:
                history.add(cid)
    unbound = [m for m in members if m.contact_id not in known and m.contact_id not in history]
    if not unbound:
        return known
    handles: dict[str, str] = {}
    for m in unbound:
        for handle in (m.wechat_id, m.contact_id):
            if handle:
                handles.setdefault(handle, m.contact_id)
    matches: dict[str, int] = {}
    for chunk in _chunks(list(handles)):
        for pid, wx in conn.execute(
            select(PERSON.c.id, PERSON.c.wechat_id).where(
                PERSON.c.removed_at.is_(None), PERSON.c.wechat_id.in_(chunk)
            )
        ):
            matches.setdefault(handles[wx], int(pid))
    _bind_by_wechat_id(conn, matches, actor)
    known.update(matches)
    return known


def _bind_by_wechat_id(conn: Connection, matches: dict[str, int], actor: str) -> None:
    """``bind`` for many contacts at once, none of them bound yet (a room read for the first
    time holds hundreds): the persons' other live contacts are superseded, as ``bind`` does."""
    first: dict[int, str] = {}
    again: list[tuple[str, int]] = []  # a second contact of a person in the same batch
    for cid, pid in matches.items():
        if pid in first:
            again.append((cid, pid))
        else:
            first[pid] = cid
    now = utcnow()
    persons = sorted(first)
    for i in range(0, len(persons), 500):
        conn.execute(
            update(CONTACT_BINDING)
            .where(CONTACT_BINDING.c.person_id.in_(persons[i : i + 500]), ACTIVE)
            .values(superseded_at=now)
        )
    if first:
        conn.execute(
            insert(CONTACT_BINDING),
            [
                {
                    "contact_id": cid,
                    "person_id": pid,
                    "method": "wechat_id",
                    "actor": actor,
                    "bound_at": now,
                }
                for pid, cid in first.items()
            ],
        )
    for cid, pid in again:
        bind(conn, cid, pid, "wechat_id", actor)


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(frozen=True)
class Binding:
    """One binding row as offices and the operator read it (``qunmatrix binding list``)."""

    id: int
    contact_id: str
    person_id: int
    person_name: str
    unit_code: str
    unit_name: str
    method: str
    actor: str
    bound_at: datetime
    superseded_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def state(self) -> str:
        """有效, 已替换 (the person bound another contact since) or 已撤销."""
        if self.revoked_at is not None:
            return "已撤销"
        return "已替换" if self.superseded_at is not None else "有效"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.superseded_at is None

    @property
    def path(self) -> str:
        """How it was made, in words: 名册微信号, 手机号 or 办公室核实."""
        return PATHS.get(self.method, self.method)


def bindings(
    conn: Connection,
    *,
    under_path: str | None = None,
    person_ids: Sequence[int] | None = None,
    binding_ids: Sequence[int] | None = None,
    contact_id: str | None = None,
    history: bool = False,
    limit: int = 200,
) -> list[Binding]:
    """Bindings, newest first: of persons with a position under the unit whose path is
    ``under_path``, of ``person_ids``, exactly ``binding_ids``, or of ``contact_id``; active
    ones only unless ``history``."""
    query = select(CONTACT_BINDING, PERSON.c.name).join(
        PERSON, PERSON.c.id == CONTACT_BINDING.c.person_id
    )
    if under_path is not None:
        placed = (
            select(POSITION.c.id)
            .join(UNIT, UNIT.c.code == POSITION.c.unit_code)
            .where(POSITION.c.person_id == PERSON.c.id, UNIT.c.path.startswith(under_path))
            .exists()
        )
        query = query.where(placed)
    if person_ids is not None:
        query = query.where(CONTACT_BINDING.c.person_id.in_(sorted(set(person_ids))))
    if binding_ids is not None:
        query = query.where(CONTACT_BINDING.c.id.in_(sorted(set(binding_ids))))
    if contact_id is not None:
        query = query.where(CONTACT_BINDING.c.contact_id == contact_id)
    if not history:
        query = query.where(ACTIVE)
    rows = conn.execute(query.order_by(CONTACT_BINDING.c.id.desc()).limit(limit)).all()
    homes = _home_units(conn, {int(r.person_id) for r in rows})
    return [
        Binding(
            int(r.id),
            r.contact_id,
            int(r.person_id),
            r.name,
            *homes.get(int(r.person_id), ("", "")),
            r.method,
            r.actor,
            r.bound_at,
            r.superseded_at,
            r.revoked_at,
            r.revoked_by,
        )
        for r in rows
    ]


def _home_units(conn: Connection, person_ids: set[int]) -> dict[int, tuple[str, str]]:
    """Each person's highest unit (code, name), to say whose person a binding is."""
    out: dict[int, tuple[str, str]] = {}
    ids = sorted(person_ids)
    for i in range(0, len(ids), 500):
        for pid, code, name in conn.execute(
            select(POSITION.c.person_id, UNIT.c.code, UNIT.c.name)
            .join(UNIT, UNIT.c.code == POSITION.c.unit_code)
            .where(POSITION.c.person_id.in_(ids[i : i + 500]))
            .order_by(UNIT.c.depth.desc(), UNIT.c.code.desc())
        ):
            out[int(pid)] = (code, name)  # the highest unit comes last and wins
    return out


def revoke(conn: Connection, binding_id: int, actor: str) -> Binding:
    """End an active binding: the contact is nobody from now on (rooms that seat it hold an
    unknown member again). The row stays, marked revoked. Raises ``BindingError``."""
    found = bindings(conn, binding_ids=[binding_id], history=True, limit=1)
    if not found:
        raise BindingError(f"没有编号为 {binding_id} 的绑定", fix="请用 binding list 查看编号")
    current = found[0]
    if not current.active:
        raise BindingError(
            f"绑定 {binding_id} 已不是有效绑定（{current.state}）", fix="无需再次解除"
        )
    now = utcnow()
    conn.execute(
        update(CONTACT_BINDING)
        .where(CONTACT_BINDING.c.id == binding_id)
        .values(revoked_at=now, revoked_by=actor)
    )
    conn.execute(
        update(MEMBERSHIP)
        .where(MEMBERSHIP.c.contact_id == current.contact_id)
        .values(person_id=None)
    )
    audit_log.record(
        conn,
        actor,
        "binding.revoke",
        current.unit_code or None,
        binding=binding_id,
        contact=current.contact_id,
        person=current.person_id,
        method=current.method,
    )
    return bindings(conn, binding_ids=[binding_id], history=True, limit=1)[0]


def revoke_person(conn: Connection, person_id: int, actor: str) -> list[Binding]:
    """End every binding that gives ``person_id``'s authority to a contact: their active
    bindings, else the roster's 微信号 itself (recorded as a revoked binding, so it no longer
    counts until an office binds it again). Raises ``BindingError`` when there is none."""
    active = bindings(conn, person_ids=[person_id])
    if not active:
        wechat = _unrecorded_wechat(conn, person_id)
        if wechat is None:
            raise BindingError("此人目前没有绑定任何微信", fix="无需解绑")
        _record_wechat(conn, person_id, wechat, utcnow())
        active = bindings(conn, person_ids=[person_id])
    return [revoke(conn, b.id, actor) for b in active]


def names_of_contacts(conn: Connection, contact_ids: Iterable[str]) -> dict[str, str]:
    """contact id → the roster name it is bound to (the newest binding, revoked ones too), for
    naming the actors of the audit log."""
    wanted = set(contact_ids)
    if not wanted:
        return {}
    rows = conn.execute(
        select(CONTACT_BINDING.c.contact_id, PERSON.c.name)
        .join(PERSON, PERSON.c.id == CONTACT_BINDING.c.person_id)
        .where(CONTACT_BINDING.c.contact_id.in_(wanted))
        .order_by(CONTACT_BINDING.c.id)
    )
    return {str(contact): str(name) for contact, name in rows}
