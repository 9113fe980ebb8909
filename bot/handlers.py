"""Command handlers: one async function per command key, each returning a ``Reply``.

``HANDLERS`` maps every key of the command table to its handler. Commands whose engines belong
to later work (provisioning and audit) map to ``not_yet``: they are parsed,
permission-checked and audit-logged like the others, so wiring an engine in is replacing one
entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, select, update

from bot.calls import Call, Handler, Reply
from bot.commands import TABLE
from bot.relay_chat import ack, forward, notice, report, status
from bot.summary_chat import register, summary
from bot.tables import PERSON, POSITION, UNIT
from matrix import held_joiners
from matrix.errors import MatrixError
from matrix.platform import NotSupported


@dataclass(frozen=True)
class RosterPerson:
    id: int
    name: str
    wechat_id: str | None
    unit_code: str
    unit_name: str


def _people(conn: Connection, *conditions: ColumnElement[bool]) -> list[RosterPerson]:
    query = (
        select(PERSON.c.id, PERSON.c.name, PERSON.c.wechat_id, UNIT.c.code, UNIT.c.name)
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
    found = _people(
        conn, UNIT.c.path.startswith(path), (PERSON.c.phone == text) | (PERSON.c.name == text)
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


async def help_(call: Call) -> Reply:
    """#帮助: what the asker may run here, or how to use one command."""
    perms = call.bot.permissions
    unit = call.group.unit_code if call.group else None
    wanted = call.args["command"]
    if wanted is not None:
        return Reply(
            "help_command.j2",
            {
                "command": wanted,
                "allowed": perms.allows(call.asker, wanted, unit),
                "coming": call.bot.is_placeholder(wanted),
            },
        )
    allowed = [c for c in TABLE if perms.allows(call.asker, c, unit)]
    return Reply(
        "help.j2",
        {
            "commands": allowed,
            "coming": {c.key for c in allowed if call.bot.is_placeholder(c)},
            "asker": call.asker,
        },
    )


async def approve(call: Call) -> Reply:
    """#同意 <编号> [人员]: the held joiner stays; with a person, they are bound to the roster."""
    group = call.require_group()
    held = held_joiners.waiting_one(call.conn, group.id, call.args["number"])
    person = None
    if call.args["person"]:
        person = find_person(call.conn, call.args["person"], group.unit_code)
        if person.wechat_id and person.wechat_id != held.contact_id:
            raise MatrixError(
                f"{person.name} 已绑定另一个微信",
                fix="如确为本人换号，请先在名册中更正其微信号后重新导入，再发送 #同意",
            )
        other = _people(call.conn, PERSON.c.wechat_id == held.contact_id, PERSON.c.id != person.id)
        if other:
            raise MatrixError(f"该微信已绑定名册人员 {other[0].name}", fix="只写编号即可同意其入群")
        call.conn.execute(
            update(PERSON).where(PERSON.c.id == person.id).values(wechat_id=held.contact_id)
        )
    person_id = person.id if person else None
    held_joiners.decide(call.conn, held, held_joiners.APPROVED, call.asker.contact_id, person_id)
    audit = {"joiner": held.contact_id, "held_id": held.id, "person_id": person_id}
    return Reply("approved.j2", {"held": held, "person": person}, (held.contact_id,), audit)


async def reject(call: Call) -> Reply:
    """#拒绝 <编号> [理由]: the held joiner is removed from the group."""
    group = call.require_group()
    held = held_joiners.waiting_one(call.conn, group.id, call.args["number"])
    removed = True
    try:
        await call.platform.remove_member(group.room_id, held.contact_id)
    except NotSupported:
        removed = False  # the account is not owner or admin here: a person must remove them
    held_joiners.decide(call.conn, held, held_joiners.REJECTED, call.asker.contact_id)
    audit = {"joiner": held.contact_id, "held_id": held.id, "reason": call.args["reason"]}
    return Reply(
        "rejected.j2",
        {"held": held, "removed": removed, "reason": call.args["reason"]},
        audit=audit,
    )


async def bind(call: Call) -> Reply:
    """#绑定 <手机号>: the sender claims the roster person registered with this phone."""
    asker = call.asker
    if asker.bound:
        return Reply("bind_refused.j2", {"why": "already", "person_name": asker.name})
    found = _people(call.conn, PERSON.c.phone == call.args["phone"])
    if len(found) != 1:
        return Reply("bind_refused.j2", {"why": "none" if not found else "many", "person_name": ""})
    person = found[0]
    if person.wechat_id:
        return Reply("bind_refused.j2", {"why": "taken", "person_name": person.name})
    if call.group is not None:
        # a claim is only believable where the person belongs: their unit under this group's
        tree = call.bot.tree
        units = [u for u, _ in _positions(call.conn, person.id) if u in tree]
        if not any(tree.is_within(u, call.group.unit_code) for u in units):
            return Reply("bind_refused.j2", {"why": "elsewhere", "person_name": person.name})
    call.conn.execute(
        update(PERSON).where(PERSON.c.id == person.id).values(wechat_id=asker.contact_id)
    )
    return Reply("bound.j2", {"person": person}, audit={"person_id": person.id})


def _positions(conn: Connection, person_id: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(POSITION.c.unit_code, POSITION.c.role).where(POSITION.c.person_id == person_id)
    )
    return [(r[0], r[1]) for r in rows]


class Placeholder:
    """A command whose engine is not wired in yet: answers so, from a template."""

    def __init__(self, feature: str) -> None:
        self.feature = feature

    async def __call__(self, call: Call) -> Reply:
        return Reply("not_available.j2", {"command": call.command, "feature": self.feature})


def not_yet(feature: str) -> Handler:
    """A placeholder handler for ``feature`` (its Chinese name, shown to the user)."""
    return Placeholder(feature)


_PROVISIONING = not_yet("建群与核查")

HANDLERS: dict[str, Handler] = {
    "help": help_,
    "provision": _PROVISIONING,
    "confirm": _PROVISIONING,
    "audit": _PROVISIONING,
    "approve": approve,
    "reject": reject,
    "bind": bind,
    "notice": notice,
    "ack": ack,
    "status": status,
    "report": report,
    "forward": forward,
    "summary": summary,
    "register": register,
}
