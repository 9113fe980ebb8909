"""Command handlers: one async function per command key, each returning a ``Reply``.

``HANDLERS`` maps every key of the command table to its handler; each engine's handlers live in
a module of their own (``bot.chat.provision``: #建群 #确认 #核查; ``bot.chat.review``: #同意
#拒绝 #绑定 #解绑; ``bot.chat.relay``: #通知 收到 #进度 #上报 #转报; ``bot.chat.summary``: #汇总 #登记;
``bot.chat.log``: #日志).
"""

from __future__ import annotations

from bot.chat import provision as provision_chat
from bot.chat import review as review_chat
from bot.chat.calls import Call, Handler, Reply
from bot.chat.commands import TABLE, Command
from bot.chat.log import log
from bot.chat.relay import ack, forward, notice, report, status
from bot.chat.summary import register, summary

# the command table's examples name the test world's units: a unit under the asker's (乙1县)
# and the asker's own (甲市); #帮助 shows the units of the loaded roster instead
_BELOW, _OWN = "乙1县", "甲市"


def roster_example(call: Call, command: Command) -> str:
    """``command``'s example with the units of this group: its own unit, its first child.

    An office reads "#核查 道里区第一小学", not the name of a unit it has never heard of."""
    unit = call.group.unit_code if call.group else None
    tree = call.bot.tree
    if unit is None or unit not in tree:
        return command.example
    own = tree.name(unit)
    below = next((tree.name(c) for c in tree.children(unit)), own)
    if command.key == "register":  # a unit registers its own accounts
        below = own
    return command.example.replace(_BELOW, below).replace(_OWN, own)


async def help_(call: Call) -> Reply:
    """#帮助: what the asker may run here, or how to use one command."""
    perms = call.bot.authority
    unit = call.group.unit_code if call.group else None
    wanted = call.args["command"]
    if wanted is not None:
        return Reply(
            "help_command.j2",
            {
                "command": wanted,
                "allowed": perms.allows(call.asker, wanted.who, unit),
                "example": roster_example(call, wanted),
            },
        )
    allowed = [c for c in TABLE if perms.allows(call.asker, c.who, unit)]
    return Reply(
        "help.j2",
        {
            "commands": allowed,
            "asker": call.asker,
        },
    )


HANDLERS: dict[str, Handler] = {
    "help": help_,
    "provision": provision_chat.provision,
    "confirm": provision_chat.confirm,
    "audit": provision_chat.audit_,
    "approve": review_chat.approve,
    "reject": review_chat.reject,
    "bind": review_chat.bind,
    "unbind": review_chat.unbind,
    "notice": notice,
    "ack": ack,
    "status": status,
    "report": report,
    "forward": forward,
    "summary": summary,
    "register": register,
    "log": log,
}
