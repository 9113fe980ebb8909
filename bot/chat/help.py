"""``#帮助 [命令]`` in chat: the commands the asker may run here, filtered by the same policy
the commands are checked with (``matrix.provisioning.authority``), or one command's form; and the examples
of #帮助 and of usage errors in the group's own units (``roster_example``)."""

from __future__ import annotations

from bot.chat.adopt import answers_outside
from bot.chat.commands import Command, Kind, Param, Who
from bot.chat.context import Call, Reply
from matrix.tree import UnitTree

# the declarations' examples name the test world's units: a unit under the asker's (乙1县)
# and the asker's own (甲市); #帮助 and usage errors show the units of the loaded roster instead
_BELOW, _OWN = "乙1县", "甲市"


def roster_example(tree: UnitTree, unit: str | None, command: Command) -> str:
    """``command``'s example with the units of the group of ``unit``: its own, its first child.

    An office reads "#核查 道里区第一小学", not the name of a unit it has never heard of."""
    if unit is None or unit not in tree:
        return command.example
    own = tree.name(unit)
    below = next((tree.name(c) for c in tree.children(unit)), own)
    if command.key == "register":  # a unit registers its own accounts
        below = own
    return command.example.replace(_BELOW, below).replace(_OWN, own)


async def help_(call: Call) -> Reply:
    """#帮助: what the asker may run here, or how to use one command."""
    authority = call.core.authority
    unit = call.group.unit_code if call.group else None
    wanted = call.args["command"]
    if wanted is not None:
        return Reply(
            "help_command.j2",
            {
                "command": wanted,
                "allowed": authority.allows(call.asker, wanted.who, unit),
                "example": roster_example(call.core.tree, unit, wanted),
            },
        )
    allowed = [c for c in call.core.commands if authority.allows(call.asker, c.who, unit)]
    if call.group is None:  # outside the matrix only what the bot still answers there
        allowed = [c for c in allowed if answers_outside(c, call.asker)]
    return Reply("help.j2", {"commands": allowed, "asker": call.asker})


HELP = Command(
    "help",
    "帮助",
    "help",
    (Param("command", "命令", Kind.COMMAND, required=False),),
    Who.ANYONE,
    "列出你可以使用的命令，或查看某个命令的用法",
    "#帮助 同意",
    templates=("help.j2", "help_command.j2"),
    executor=help_,
)
