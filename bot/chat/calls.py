"""What a command handler receives (``Call``) and returns (``Reply``).

Handlers get a narrow context: the parsed command and arguments, who asked, the matrix group the
message came from, the unit acted on, the platform account and the open transaction. They
return data naming a template in ``templates/replies/``; the dispatcher renders and sends it
(None: say nothing, for a bare command that did nothing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot.chat.commands import Command
from matrix.authority import Asker
from matrix.errors import MatrixError
from matrix.platform import IncomingMessage, Platform
from matrix.relay.people import GroupRef, NotInMatrix, group_for_room

if TYPE_CHECKING:
    from bot.chat.dispatch import Bot


def group_of(conn: Connection, room_id: str) -> GroupRef | None:
    """The matrix group whose room this is, or None for a room outside the matrix."""
    try:
        return group_for_room(conn, room_id)
    except NotInMatrix:
        return None


class NotAMatrixGroup(MatrixError):
    """The command works on one group's members, and this room is not a matrix group."""

    def __init__(self, command: Command) -> None:
        super().__init__(
            f"本群不在群矩阵中，不能使用 #{command.name}",
            fix="请在本单位牵头建立的群里发送这条命令",
        )


@dataclass
class Reply:
    """A handler's answer: ``template`` under templates/replies/, its data, whom to @-mention,
    extra detail for the audit log, and files to send after the text (paths)."""

    template: str
    data: dict[str, Any] = field(default_factory=dict)
    mentions: tuple[str, ...] = ()
    audit: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()


@dataclass
class Call:
    """One accepted command, ready for its handler."""

    command: Command
    args: dict[str, Any]
    asker: Asker
    group: GroupRef | None
    unit: str | None  # the unit acted on: named, else the group's, else the asker's own
    message: IncomingMessage
    platform: Platform
    conn: Connection
    bot: Bot
    bare: bool = False  # typed without # (收到): answered only when it does something

    def require_group(self) -> GroupRef:
        if self.group is None:
            raise NotAMatrixGroup(self.command)
        return self.group


Handler = Callable[[Call], Awaitable[Reply | None]]
