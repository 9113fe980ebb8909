"""#同意, #拒绝 and #绑定 in chat: the join review of ``matrix.join_review`` and the identity
binding of ``matrix.binding`` behind three command handlers.

Numbers are join request numbers, scoped to the group they are typed in. Bindings never touch
the roster's 微信号 column: a later roster import cannot undo what an admin or a person decided
in chat. Handlers read the platform before they write (nothing waits on the network inside a
write transaction).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, select

from bot.calls import Call, Reply
from bot.tables import PERSON, POSITION, UNIT
from matrix import binding, join_review
from matrix.errors import MatrixError
from matrix.platform import NotSupported
from matrix.roster import clean_phone


@dataclass(frozen=True)
class RosterPerson:
    id: int
    name: str
    unit_code: str
    unit_name: str


def _people(conn: Connection, *conditions: ColumnElement[bool]) -> list[RosterPerson]:
    query = (
        select(PERSON.c.id, PERSON.c.name, UNIT.c.code, UNIT.c.name)
        .select_from(PERSON.join(POSITION, POSITION.c.person_id == PERSON.c.id).join(UNIT))
        .where(PERSON.c.removed_at.is_(None), UNIT.c.removed_at.is_(None), *conditions)
        .order_by(PERSON.c.id, UNIT.c.depth)
    )
    seen: dict[int, RosterPerson] = {}
    for row in conn.execute(query):
        seen.setdefault(row[0], RosterPerson(*row))
    return list(seen.values())


def find_person(conn: Connection, text: str, under_unit: str) -> RosterPerson:
    """The roster person in ``under_unit``'s subtree with this phone number or name."""
    path = conn.execute(select(UNIT.c.path).where(UNIT.c.code == under_unit)).scalar_one()
    phone = clean_phone(text) or text
    found = _people(
        conn, UNIT.c.path.startswith(path), (PERSON.c.phone == phone) | (PERSON.c.name == text)
    )
    if not found:
        raise MatrixError(
            f"在本群所属单位及下属单位的名册中找不到“{text}”",
            fix="请写名册上登记的手机号或姓名；不在名册上的人可只写编号同意入群",
        )
    if len(found) > 1:
        listed = "、".join(f"{p.name}（{p.unit_name}）" for p in found[:5])
        raise MatrixError(f"“{text}”对应多人：{listed}", fix="请改写手机号")
    return found[0]


async def approve(call: Call) -> Reply:
    """#同意 <编号> [人员]: the held joiner stays; with a person, they are bound to the roster."""
    group = call.require_group()
    request = join_review.request_in(call.conn, group.id, call.args["number"])
    person = None
    if call.args["person"]:
        person = find_person(call.conn, call.args["person"], group.unit_code)
        other = binding.lookup(call.conn, request.contact_id)
        if other is not None and other != person.id:
            name = call.conn.execute(select(PERSON.c.name).where(PERSON.c.id == other)).scalar()
            raise MatrixError(f"该微信已绑定名册人员 {name}", fix="只写编号即可同意其入群")
        current = binding.contacts_of(call.conn, [person.id]).get(person.id)
        if current is not None and current != request.contact_id:
            # a person whose account changed has left with the old one; one still here is
            # someone else claiming their identity
            present = await call.platform.list_members(call.message.room_id)
            if any(m.contact_id == current for m in present):
                raise MatrixError(
                    f"{person.name} 已绑定另一个微信，且该微信就在本群",
                    fix="如确为本人换了微信，请先将旧微信移出本群，再发送 #同意",
                )
    join_review.approve(
        call.conn,
        request.id,
        call.asker.contact_id,
        person_id=person.id if person else None,
        now=call.bot.now(),
    )
    audit = {"joiner": request.contact_id, "request": request.id, "person_id": person and person.id}
    return Reply(
        "approved.j2", {"request": request, "person": person}, (request.contact_id,), audit
    )


async def reject(call: Call) -> Reply:
    """#拒绝 <编号> [理由]: the held joiner is removed from the group."""
    group = call.require_group()
    request = join_review.request_in(call.conn, group.id, call.args["number"])
    removed = True
    try:
        await call.platform.remove_member(call.message.room_id, request.contact_id)
    except NotSupported:
        removed = False  # the account is not owner or admin here: a person must remove them
    join_review.reject(call.conn, request.id, call.asker.contact_id, now=call.bot.now())
    audit = {"joiner": request.contact_id, "request": request.id, "reason": call.args["reason"]}
    return Reply(
        "rejected.j2",
        {"request": request, "removed": removed, "reason": call.args["reason"]},
        audit=audit,
    )


async def bind(call: Call) -> Reply:
    """#绑定 <手机号>: the sender claims the roster person registered with this phone."""
    asker = call.asker
    if asker.bound:
        return Reply("bind_refused.j2", {"why": "already", "person_name": asker.name})
    holders = binding.phone_holders(call.conn, call.args["phone"])
    if len(holders) != 1:
        return Reply("bind_refused.j2", {"why": "many" if holders else "none", "person_name": ""})
    [person] = _people(call.conn, PERSON.c.id == holders[0])
    current = binding.contacts_of(call.conn, [person.id]).get(person.id)
    if current is not None and current != asker.contact_id:
        return Reply("bind_refused.j2", {"why": "taken", "person_name": person.name})
    if call.group is not None:
        # a claim is only believable where the person belongs: their unit under this group's
        tree = call.bot.tree
        units = [u for u, _ in _positions(call.conn, person.id)]
        if not any(u in tree and tree.is_within(u, call.group.unit_code) for u in units):
            return Reply("bind_refused.j2", {"why": "elsewhere", "person_name": person.name})
    binding.bind(call.conn, asker.contact_id, person.id, "phone", asker.contact_id)
    # held when they joined as a stranger: now known, they are let in where they belong
    admitted = join_review.admit_bound(
        call.conn, call.bot.blueprint, asker.contact_id, now=call.bot.now(), actor=asker.contact_id
    )
    return Reply(
        "bound.j2",
        {"person": person, "admitted": bool(admitted)},
        audit={"person_id": person.id, "admitted": admitted},
    )


def _positions(conn: Connection, person_id: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(POSITION.c.unit_code, POSITION.c.role).where(POSITION.c.person_id == person_id)
    )
    return [(r[0], r[1]) for r in rows]
