"""A small in-memory WeChat for the provisioning tests: rooms, members, admins, invitations.

It implements ``matrix.platform.Platform`` for one account per ``FakeAccount``, all sharing one
``FakeWeChat``. It copies the behaviours the planner depends on (the 500-member cap, adding to a
room above 40 members sends an invitation the contact must accept) and lets a test break it:
``fail_at`` raises at the n-th call of a method, before or after the call takes effect.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from matrix.platform import AddOutcome, Member, PlatformError, Room

CAP = 500
INVITE_ABOVE = 40


class Crash(Exception):
    """Stands for the process dying during a platform call."""


@dataclass
class FakeRoom:
    room_id: str
    topic: str
    owner: str
    members: dict[str, Member] = field(default_factory=dict)
    invited: set[str] = field(default_factory=set)


@dataclass
class Failure:
    method: str
    at: int  # 1-based call number of that method
    error: Exception
    after: bool = False  # raise after the call took effect


class FakeWeChat:
    """The shared world: rooms, and who has which 微信号."""

    def __init__(self) -> None:
        self.rooms: dict[str, FakeRoom] = {}
        self.calls: list[tuple[str, ...]] = []
        self.failures: list[Failure] = []
        self.nicknames: dict[str, str] = {}
        self._ids = itertools.count(1)

    def account(self, account_id: str) -> FakeAccount:
        return FakeAccount(self, account_id)

    def fail_at(self, method: str, at: int, error: Exception, *, after: bool = False) -> None:
        """Make the ``at``-th call of ``method`` (counted from now) raise ``error``."""
        done = sum(1 for c in self.calls if c[0] == method)
        self.failures.append(Failure(method, done + at, error, after))

    def accept_invitations(self) -> None:
        for room in self.rooms.values():
            for cid in sorted(room.invited):
                room.members[cid] = self._member(cid)
            room.invited.clear()

    def join(
        self, room_id: str, contact_id: str, *, nickname: str = "", wechat_id: str = ""
    ) -> None:
        """Someone joins by themselves (a QR code, a member's invitation)."""
        self.rooms[room_id].members[contact_id] = Member(
            contact_id, name=nickname, nickname=nickname, wechat_id=wechat_id
        )

    def _member(self, contact_id: str) -> Member:
        nick = self.nicknames.get(contact_id, "")
        return Member(contact_id, name=nick, nickname=nick)

    def _call(self, *call: str) -> Failure | None:
        self.calls.append(call)
        n = sum(1 for c in self.calls if c[0] == call[0])
        for f in self.failures:
            if f.method == call[0] and f.at == n:
                self.failures.remove(f)
                if not f.after:
                    raise f.error
                return f
        return None

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c[0] == method)


class FakeAccount:
    """One bot account in the fake world (a ``matrix.platform.Platform``)."""

    def __init__(self, world: FakeWeChat, account_id: str) -> None:
        self.world = world
        self._id = account_id

    @property
    def account_id(self) -> str:
        return self._id

    def _room(self, room_id: str) -> FakeRoom:
        room = self.world.rooms.get(room_id)
        if room is None:
            raise PlatformError(f"no room {room_id}")
        return room

    async def list_rooms(self) -> list[Room]:
        return [
            Room(r.room_id, r.topic, len(r.members) + 1)
            for r in self.world.rooms.values()
            if r.owner == self._id or self._id in r.members
        ]

    async def list_members(self, room_id: str) -> list[Member]:
        room = self._room(room_id)
        return [Member(self._id, is_owner=room.owner == self._id), *room.members.values()]

    async def create_room(self, topic: str, contact_ids: list[str]) -> str:
        late = self.world._call("create_room", topic)
        room_id = f"room{next(self.world._ids)}"
        room = FakeRoom(room_id, topic, self._id)
        for cid in contact_ids[: CAP - 1]:
            room.members[cid] = self.world._member(cid)
        self.world.rooms[room_id] = room
        if late:
            raise late.error
        return room_id

    async def add_member(self, room_id: str, contact_id: str) -> AddOutcome:
        late = self.world._call("add_member", room_id, contact_id)
        room = self._room(room_id)
        if len(room.members) + 1 >= CAP:
            raise PlatformError("room full")
        if len(room.members) + 1 > INVITE_ABOVE:
            room.invited.add(contact_id)
            outcome = AddOutcome.INVITED
        else:
            room.members[contact_id] = self.world._member(contact_id)
            outcome = AddOutcome.ADDED
        if late:
            raise late.error
        return outcome

    async def remove_member(self, room_id: str, contact_id: str) -> None:
        late = self.world._call("remove_member", room_id, contact_id)
        self._room(room_id).members.pop(contact_id, None)
        if late:
            raise late.error

    async def set_admin(self, room_id: str, contact_id: str) -> None:
        late = self.world._call("set_admin", room_id, contact_id)
        room = self._room(room_id)
        if contact_id not in room.members:
            raise PlatformError("not a member")
        m = room.members[contact_id]
        room.members[contact_id] = Member(
            m.contact_id, m.name, m.nickname, True, False, m.wechat_id
        )
        if late:
            raise late.error

    async def set_topic(self, room_id: str, topic: str) -> None:
        late = self.world._call("set_topic", room_id, topic)
        self._room(room_id).topic = topic
        if late:
            raise late.error

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        self.world._call("send_text", room_id, text)
        return f"msg{next(self.world._ids)}"

    async def send_file(self, room_id: str, path: str) -> str:
        self.world._call("send_file", room_id, path)
        return f"msg{next(self.world._ids)}"
