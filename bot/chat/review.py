"""#同意, #拒绝, #绑定 and #解绑 in chat: the join review of ``matrix.provisioning.join_review``, the claims
of ``matrix.provisioning.bind_claims`` and the identity binding of ``matrix.provisioning.binding`` behind four handlers.

Numbers are join request numbers, scoped to the group they are typed in; a claim to be an office
person is such a request too, held in the deciding office's own group, so ``#同意 N`` there is the
one way an office confirms an identity. Whatever ``#绑定`` finds, its reply names nobody: the
office learns the details in its own group. Bindings never touch
the roster's 微信号 column: a later roster import cannot undo what an admin or a person decided
in chat. Handlers read the platform before they write (nothing waits on the network inside a
write transaction).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, select

from bot.chat.calls import Call, Reply
from matrix.errors import MatrixError
from matrix.platform import NotSupported
from matrix.provisioning import bind_claims, binding, join_review
from matrix.roster import clean_phone
from matrix.tables import PERSON, POSITION, UNIT


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


def find_person(
    conn: Connection, text: str, under_unit: str, where: str = "本群所属单位及下属单位的名册"
) -> RosterPerson:
    """The roster person in ``under_unit``'s subtree with this phone number or name
    (``where`` names that roster in the message when there is none)."""
    path = conn.execute(select(UNIT.c.path).where(UNIT.c.code == under_unit)).scalar_one()
    phone = clean_phone(text) or text
    found = _people(
        conn, UNIT.c.path.startswith(path), (PERSON.c.phone == phone) | (PERSON.c.name == text)
    )
    if not found:
        raise MatrixError(
            f"在{where}中找不到“{text}”",
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
    if request.is_claim:
        return _confirm_claim(call, request)
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
    if person is not None:
        _announce_bound(call, person.id, request.contact_id)
    audit = {"joiner": request.contact_id, "request": request.id, "person_id": person and person.id}
    return Reply(
        "approved.j2", {"request": request, "person": person}, (request.contact_id,), audit
    )


def _confirm_claim(call: Call, request: join_review.Request) -> Reply:
    """#同意 N on a claim: the office confirms the claimant is the office person claimed."""
    assert request.person_id is not None
    [person] = _people(call.conn, PERSON.c.id == request.person_id)
    if call.args["person"]:
        named = find_person(call.conn, call.args["person"], call.require_group().unit_code)
        if named.id != person.id:
            raise MatrixError(
                f"绑定申请 {request.id} 申请的不是“{call.args['person']}”",
                fix=f"核实无误请只回复 #同意 {request.id}；不是本人请回复 #拒绝 {request.id}",
            )
    units = [u for u, _ in _positions(call.conn, person.id)]
    if not any(call.bot.authority.covers(call.asker, u) for u in units):
        raise MatrixError(
            "此人不在你所在单位的管辖范围内", fix="请由其所在单位或上级单位办公室核实"
        )
    join_review.approve(
        call.conn, request.id, call.asker.contact_id, person_id=person.id, now=call.bot.now()
    )
    env = call.bot.relay.env
    join_review.admit_bound(
        call.conn,
        call.bot.blueprint,
        request.contact_id,
        now=call.bot.now(),
        actor=call.asker.contact_id,
    )
    bind_claims.tell_claimant(call.conn, env, request)
    _announce_bound(call, person.id, request.contact_id)
    audit = {"claimant": request.contact_id, "request": request.id, "person_id": person.id}
    return Reply("approved.j2", {"request": request, "person": person}, audit=audit)


def _announce_bound(call: Call, person_id: int, contact_id: str) -> None:
    """Tell the person's office about a binding an office made (the reply tells the office
    that typed it, so its own room is left out)."""
    bind_claims.tell_office(
        call.conn,
        call.bot.relay.env,
        person_id,
        "bound",
        avoid_rooms=(call.message.room_id,),
        contact=contact_id,
        path=binding.PATHS["admin"],
        group="",
    )
    call.bot.relay.poke()


async def reject(call: Call) -> Reply:
    """#拒绝 <编号> [理由]: the held joiner is removed from the group."""
    group = call.require_group()
    request = join_review.request_in(call.conn, group.id, call.args["number"])
    removed = True
    if request.is_claim:
        removed = False  # a claim was made elsewhere: there is nobody to remove here
    else:
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
    """#绑定 <手机号>: the sender claims the roster person registered with this phone. The
    reply is the same whatever the phone named, unless it bound the sender (or they are
    bound already, or have used up their attempts)."""
    asker = call.asker
    limits = call.bot.bind_limits
    ask = bind_claims.PhoneClaim(
        asker.contact_id,
        asker.display_name or asker.contact_id,
        call.args["phone"],
        call.group,
        limits,
        call.bot.join_policy.hours,
        call.bot.now(),
    )
    claim = bind_claims.claim_by_phone(call.conn, call.bot.relay.env, ask)
    call.bot.relay.poke()  # an office may have been told something
    if claim.reply == "bound":
        return Reply("bound.j2", {"admitted": bool(claim.admitted)})
    return Reply("bind_refused.j2", {"why": claim.reply, "asker": asker, "limits": limits})


async def unbind(call: Call) -> Reply:
    """#解绑 <人员|手机号>: an office ends the bindings of a person of its subtree."""
    assert call.unit is not None  # an office command always acts on a unit
    person = find_person(call.conn, call.args["person"], call.unit)
    ended = binding.revoke_person(call.conn, person.id, call.asker.contact_id)
    for gone in ended:
        bind_claims.tell_office(
            call.conn,
            call.bot.relay.env,
            person.id,
            "revoked",
            avoid_rooms=(call.message.room_id,),
            contact=gone.contact_id,
            path=gone.path,
            by=call.asker.name,
        )
    call.bot.relay.poke()
    audit = {"person_id": person.id, "bindings": [b.id for b in ended]}
    return Reply("unbound.j2", {"person": person, "ended": ended}, audit=audit)


def _positions(conn: Connection, person_id: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(POSITION.c.unit_code, POSITION.c.role).where(POSITION.c.person_id == person_id)
    )
    return [(r[0], r[1]) for r in rows]
