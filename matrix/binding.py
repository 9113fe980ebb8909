"""Identity binding: which roster person a WeChat contact id is.

A contact is bound in one of three ways: its 微信号 matches the roster (automatic), the person
confirms their phone number to the bot, or an admin decides (join review). Bindings never create
persons, so a contact id that changes (an account reconnected) is simply bound again to the same
person: the person's older contact id is kept, marked superseded, and still resolves to them.
A contact with no binding is an unknown member.

Phone and admin bindings are admin-relevant and go to the audit log; matches by 微信号 are
derived from the roster itself and are not logged one by one (a national sync makes 750,000).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, func, insert, select, update

from matrix import audit_log
from matrix.errors import MatrixError
from matrix.models import ContactBinding, Membership, Person, utcnow
from matrix.platform import Member
from matrix.roster import clean_phone
from matrix.tables import table_of

METHODS = ("wechat_id", "phone", "admin")
_binding = table_of(ContactBinding)
_person = table_of(Person)
_member = table_of(Membership)


class BindingError(MatrixError):
    """A contact cannot be bound as asked (no such person, an ambiguous phone number …)."""


def person_of(conn: Connection, contact_id: str) -> int | None:
    """The roster person bound to ``contact_id``, or None if unknown."""
    found = conn.execute(
        select(_binding.c.person_id).where(_binding.c.contact_id == contact_id)
    ).scalar()
    return None if found is None else int(found)


def lookup(conn: Connection, contact_id: str) -> int | None:
    """Who ``contact_id`` is, without writing anything: its binding (a superseded one too),
    else the roster person whose 微信号 it is. The bot asks this for every command, so a
    roster re-import that rewrites 微信号 never undoes a binding made in chat."""
    bound = select(_binding.c.person_id).where(_binding.c.contact_id == contact_id)
    by_wechat = (
        select(_person.c.id)
        .where(_person.c.wechat_id == contact_id, _person.c.removed_at.is_(None))
        .limit(1)
    )
    found = conn.execute(
        select(func.coalesce(bound.scalar_subquery(), by_wechat.scalar_subquery()))
    ).scalar()
    return None if found is None else int(found)


def contacts_of(conn: Connection, person_ids: Iterable[int]) -> dict[int, str]:
    """How the bots reach each person: their current bound contact, else their 微信号
    (persons with neither are left out: a bot cannot invite or @-mention them)."""
    ids = sorted(set(person_ids))
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for pid, wx in conn.execute(
            select(_person.c.id, _person.c.wechat_id).where(
                _person.c.id.in_(chunk), _person.c.wechat_id.is_not(None)
            )
        ):
            out[int(pid)] = str(wx)
        # the newest live binding wins over the roster's 微信号
        for pid, cid in conn.execute(
            select(_binding.c.person_id, _binding.c.contact_id)
            .where(_binding.c.person_id.in_(chunk), _binding.c.superseded_at.is_(None))
            .order_by(_binding.c.id)
        ):
            out[int(pid)] = str(cid)
    return out


def contact_of(conn: Connection, person_id: int) -> str | None:
    """The person's current contact id (the newest binding not superseded)."""
    found = conn.execute(
        select(_binding.c.contact_id)
        .where(_binding.c.person_id == person_id, _binding.c.superseded_at.is_(None))
        .order_by(_binding.c.id.desc())
    ).scalar()
    return None if found is None else str(found)


def bind(conn: Connection, contact_id: str, person_id: int, method: str, actor: str) -> bool:
    """Bind ``contact_id`` to ``person_id``; False if it already was. The person's other
    contact ids are superseded (an id change), never duplicated as a new person."""
    if method not in METHODS:
        raise ValueError(method)
    exists = conn.execute(select(_person.c.id).where(_person.c.id == person_id)).scalar()
    if exists is None:
        raise BindingError(f"名册中没有编号为 {person_id} 的人员", fix="请核对人员编号")
    now = utcnow()
    current = conn.execute(
        select(_binding.c.id, _binding.c.person_id, _binding.c.superseded_at).where(
            _binding.c.contact_id == contact_id
        )
    ).first()
    if current is not None and current.person_id == person_id and current.superseded_at is None:
        return False
    conn.execute(
        update(_binding)
        .where(
            _binding.c.person_id == person_id,
            _binding.c.contact_id != contact_id,
            _binding.c.superseded_at.is_(None),
        )
        .values(superseded_at=now)
    )
    row = {"person_id": person_id, "method": method, "actor": actor, "bound_at": now}
    if current is None:
        conn.execute(insert(_binding), [{"contact_id": contact_id, **row}])
    else:
        conn.execute(
            update(_binding).where(_binding.c.id == current.id).values(**row, superseded_at=None)
        )
    if method != "wechat_id":
        # rooms already seat this contact (as an unknown member, or as whom it was bound to
        # before): it is this person now
        conn.execute(
            update(_member).where(_member.c.contact_id == contact_id).values(person_id=person_id)
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
    query = select(_person.c.id).where(_person.c.phone == phone, _person.c.removed_at.is_(None))
    return [int(r[0]) for r in conn.execute(query.order_by(_person.c.id))]


def bind_by_admin(conn: Connection, contact_id: str, person_id: int, actor: str) -> int:
    """An admin decided who ``contact_id`` is."""
    bind(conn, contact_id, person_id, "admin", actor)
    return person_id


def resolve(conn: Connection, members: Sequence[Member], actor: str = "platform") -> dict[str, int]:
    """Contact id → person for the members that are known, binding by 微信号 on the way
    (``Member.wechat_id``, or a contact id that is itself the roster's 微信号)."""
    ids = [m.contact_id for m in members]
    known: dict[str, int] = {}
    for chunk in _chunks(ids):
        for cid, pid in conn.execute(
            select(_binding.c.contact_id, _binding.c.person_id).where(
                _binding.c.contact_id.in_(chunk)
            )
        ):
            known[cid] = int(pid)
    unbound = [m for m in members if m.contact_id not in known]
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
            select(_person.c.id, _person.c.wechat_id).where(
                _person.c.removed_at.is_(None), _person.c.wechat_id.in_(chunk)
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
            update(_binding)
            .where(
                _binding.c.person_id.in_(persons[i : i + 500]),
                _binding.c.superseded_at.is_(None),
            )
            .values(superseded_at=now)
        )
    if first:
        conn.execute(
            insert(_binding),
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
