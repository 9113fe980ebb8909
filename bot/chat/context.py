"""What an executor receives (``Call``) and returns (``Reply``).

Executors get a narrow context: the parsed command and arguments, who asked (resolved identity
and authority, ``matrix.provisioning.authority.Asker``), the matrix group the message came from, the unit
acted on, the platform account, the open transaction, and ``core``: the named services of the
bot process they use (``Services``), never the ``Bot`` object itself. They return data naming a
template in ``templates/replies/``; the dispatcher renders and sends it (None: say nothing, for
a bare command that did nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from bot.chat.commands import Command, Registry
from bot.chat.recent_files import RecentFiles
from bot.chat.relay_runner import Relay
from bot.chat.settings import SummaryOptions
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.platform import IncomingMessage, Platform
from matrix.provisioning.apply import Applies
from matrix.provisioning.authority import Asker, Authority
from matrix.provisioning.join_review import TimeoutPolicy
from matrix.provisioning.plan import ShownPlans
from matrix.provisioning.schedule import AccountQuota
from matrix.relay.bind_claims import BindLimits
from matrix.relay.people import GroupRef, NotInMatrix, group_for_room
from matrix.tree import UnitTree

P = ParamSpec("P")
T = TypeVar("T")


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


class Sender(Protocol):
    """Where replies go out, paced per account (the dispatcher's ``Outbox``)."""

    async def send(
        self,
        platform: Platform,
        room_id: str,
        text: str,
        mentions: tuple[str, ...] = (),
        *,
        file: str = "",
    ) -> None: ...


class Services(Protocol):
    """The core services of one bot process that executors use, each named and typed: the
    database and blueprint, the unit tree and the authority over it, the relay, the planned
    and running builds (``ShownPlans``, ``Applies``, state of the core), the clocks, the
    accounts and the worker threads. The dispatcher's ``Bot`` provides them."""

    engine: Engine
    blueprint: Blueprint
    tree: UnitTree
    authority: Authority
    relay: Relay
    summaries: SummaryOptions
    shown_plans: ShownPlans
    recent_files: RecentFiles
    applies: Applies
    platforms: dict[str, Platform]
    accounts: set[str]
    join_policy: TimeoutPolicy
    bind_limits: BindLimits
    commands: Registry
    now: Callable[[], datetime]
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]

    @property
    def outbox(self) -> Sender: ...

    @property
    def account_quotas(self) -> list[AccountQuota]: ...

    def unit_word(self, code: str) -> str: ...

    def platform_for(self, room_id: str) -> Platform | None: ...

    async def offload(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...

    async def offload_quick(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T: ...

    def spawn(self, work: Coroutine[Any, Any, None], **context: Any) -> asyncio.Task[None]: ...


@dataclass
class Reply:
    """An executor's answer: ``template`` under templates/replies/, its data, whom to
    @-mention, extra detail for the audit log, and files to send after the text (paths)."""

    template: str
    data: dict[str, Any] = field(default_factory=dict)
    mentions: tuple[str, ...] = ()
    audit: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()


class Transaction:
    """A command's database transaction, begun when the executor first touches ``conn``.

    Most executors hand their work to a worker thread (the relay's, a summary), which opens its
    own connection; holding a pooled one for them while they wait would let a flood of such
    commands from many groups drain the pool, and the next checkout on the event loop would
    freeze the bot. Committed on success, rolled back on an exception."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
            self._conn.begin()
        return self._conn

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if kind is None:
                conn.commit()
            else:
                conn.rollback()
        finally:
            conn.close()


@dataclass
class Call:
    """One accepted command, ready for its executor."""

    command: Command
    args: dict[str, Any]
    asker: Asker
    group: GroupRef | None
    unit: str | None  # the unit acted on: named, else the group's, else the asker's own
    message: IncomingMessage
    platform: Platform
    tx: Transaction
    core: Services
    bare: bool = False  # typed without # (收到): answered only when it does something

    @property
    def conn(self) -> Connection:
        """The command's transaction (begun now if not yet): use it for quick reads and writes
        on the loop, never across an ``await`` of slow work."""
        return self.tx.conn

    def require_group(self) -> GroupRef:
        if self.group is None:
            raise NotAMatrixGroup(self.command)
        return self.group


Executor = Callable[[Call], Awaitable[Reply | None]]
Executors = Mapping[str, Executor]
