"""#同意, #拒绝, #绑定 and #解绑 in chat: the join review of ``matrix.provisioning.join_review``, the claims
of ``matrix.relay.bind_claims`` and the identity binding of ``matrix.provisioning.binding`` behind four executors.

Numbers are join request numbers, scoped to the group they are typed in; a claim to be an office
person is such a request too, held in the deciding office's own group, so ``#同意 N`` there is the
one way an office confirms an identity. Whatever ``#绑定`` finds, its reply names nobody: the
office learns the details in its own group. Bindings never touch
the roster's 微信号 column: a later roster import cannot undo what an admin or a person decided
in chat. Executors read the platform before they write (nothing waits on the network inside a
write transaction).
"""

from __future__ import annotations

from bot.chat.commands import Command, Kind, Param, Who
from bot.chat.context import Call, Reply
from matrix.errors import MatrixError
from matrix.platform import NotSupported
from matrix.provisioning import binding, join_review
from matrix.relay import bind_claims
from matrix.relay.people import (
    RosterPerson as RosterPerson,
)
from matrix.relay.people import (
    find_person,
    person_name,
    position_units,
    roster_person,
)


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
            name = person_name(call.conn, other)
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
        now=call.core.now(),
    )
    if person is not None:
        announce_bound(call, person.id, request.contact_id)
    audit = {"joiner": request.contact_id, "request": request.id, "person_id": person and person.id}
    return Reply(
        "approved.j2", {"request": request, "person": person}, (request.contact_id,), audit
    )


def _confirm_claim(call: Call, request: join_review.Request) -> Reply:
    """#同意 N on a claim: the office confirms the claimant is the office person claimed."""
    assert request.person_id is not None
    person = roster_person(call.conn, request.person_id)
    assert person is not None
    if call.args["person"]:
        named = find_person(call.conn, call.args["person"], call.require_group().unit_code)
        if named.id != person.id:
            raise MatrixError(
                f"绑定申请 {request.id} 申请的不是“{call.args['person']}”",
                fix=f"核实无误请只回复 #同意 {request.id}；不是本人请回复 #拒绝 {request.id}",
            )
    units = position_units(call.conn, person.id)
    if not any(call.core.authority.covers(call.asker, u) for u in units):
        raise MatrixError(
            "此人不在你所在单位的管辖范围内", fix="请由其所在单位或上级单位办公室核实"
        )
    join_review.approve(
        call.conn, request.id, call.asker.contact_id, person_id=person.id, now=call.core.now()
    )
    env = call.core.relay.env
    join_review.admit_bound(
        call.conn,
        call.core.blueprint,
        request.contact_id,
        now=call.core.now(),
        actor=call.asker.contact_id,
    )
    bind_claims.tell_claimant(call.conn, env, request)
    announce_bound(call, person.id, request.contact_id)
    audit = {"claimant": request.contact_id, "request": request.id, "person_id": person.id}
    return Reply("approved.j2", {"request": request, "person": person}, audit=audit)


def announce_bound(call: Call, person_id: int, contact_id: str) -> None:
    """Tell the person's office about a binding an office made (the reply tells the office
    that typed it, so its own room is left out)."""
    bind_claims.tell_office(
        call.conn,
        call.core.relay.env,
        person_id,
        "bound",
        avoid_rooms=(call.message.room_id,),
        contact=contact_id,
        path=binding.PATHS["admin"],
        group="",
    )
    call.core.relay.poke()


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
    join_review.reject(call.conn, request.id, call.asker.contact_id, now=call.core.now())
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
    limits = call.core.bind_limits
    ask = bind_claims.PhoneClaim(
        asker.contact_id,
        asker.display_name or asker.contact_id,
        call.args["phone"],
        call.group,
        limits,
        call.core.join_policy.hours,
        call.core.now(),
    )
    claim = bind_claims.claim_by_phone(call.conn, call.core.relay.env, ask)
    call.core.relay.poke()  # an office may have been told something
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
            call.core.relay.env,
            person.id,
            "revoked",
            avoid_rooms=(call.message.room_id,),
            contact=gone.contact_id,
            path=gone.path,
            by=call.asker.name,
        )
    call.core.relay.poke()
    audit = {"person_id": person.id, "bindings": [b.id for b in ended]}
    return Reply("unbound.j2", {"person": person, "ended": ended}, audit=audit)


APPROVE = Command(
    "approve",
    "同意",
    "approve",
    (
        Param("number", "编号", Kind.NUMBER),
        Param("person", "人员", Kind.PERSON, required=False),
    ),
    Who.OFFICE,
    "同意待审核的入群人员留在群里；写上手机号或姓名可同时绑定名册人员",
    "#同意 3 13900000001",
    templates=("approved.j2",),
    executor=approve,
)
REJECT = Command(
    "reject",
    "拒绝",
    "reject",
    (Param("number", "编号", Kind.NUMBER), Param("reason", "理由", Kind.TEXT, required=False)),
    Who.OFFICE,
    "拒绝待审核的入群人员，并将其移出本群",
    "#拒绝 3 非本系统人员",
    templates=("rejected.j2",),
    executor=reject,
)
BIND = Command(
    "bind",
    "绑定",
    "bind",
    (Param("phone", "手机号", Kind.PHONE),),
    Who.ANYONE,
    "用名册上登记的手机号把你的微信绑定到名册（办公室人员须由办公室核实）",
    "#绑定 13900000001",
    templates=("bound.j2", "bind_refused.j2"),
    executor=bind,
)
UNBIND = Command(
    "unbind",
    "解绑",
    "unbind",
    (Param("person", "人员", Kind.PERSON),),
    Who.OFFICE,
    "解除本单位或下属单位人员与微信的绑定，该微信随即失去此人的身份和权限",
    "#解绑 13900000012",
    templates=("unbound.j2",),
    executor=unbind,
)
