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

from sqlalchemy import Connection, insert, select, update

from matrix import audit_log
from matrix.errors import MatrixError
from matrix.models import ContactBinding, Person, utcnow
from matrix.platform import Member
from matrix.roster import clean_phone

METHODS = ("wechat_id", "phone", "admin")
_binding = ContactBinding.__table__  # type: ignore[attr-defined]
_person = Person.__table__  # type: ignore[attr-defined]


class BindingError(MatrixError):
    """A contact cannot be bound as asked (no such person, an ambiguous phone number …)."""


def person_of(conn: Connection, contact_id: str) -> int | None:
    """The roster person bound to ``contact_id``, or None if unknown."""
    found = conn.execute(
        select(_binding.c.person_id).where(_binding.c.contact_id == contact_id)
    ).scalar()
    return None if found is None else int(found)


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
    found = [
        int(r[0])
        for r in conn.execute(
            select(_person.c.id).where(_person.c.phone == cleaned, _person.c.removed_at.is_(None))
        )
    ]
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
    for chunk in _chunks(list(handles)):
        for pid, wx in conn.execute(
            select(_person.c.id, _person.c.wechat_id).where(
                _person.c.removed_at.is_(None), _person.c.wechat_id.in_(chunk)
            )
        ):
            cid = handles[wx]
            if cid not in known:
                bind(conn, cid, int(pid), "wechat_id", actor)
                known[cid] = int(pid)
    return known


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
