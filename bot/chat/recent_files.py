"""The files members sent lately, per room: what ``#通知 … 附件`` takes (the sender's own files of
the last ``window_minutes``) or a quoted ``#通知`` names (any file still remembered in the room).

Kept in memory by the process whose accounts heard the file: a file message is not a command,
nobody answers it, and the platform keeps the file itself (the Wechaty adapter saved it under
its directory). Bounded: at most ``PER_ROOM`` files per room, ``ROOMS`` rooms, each file
remembered ``KEEP_SECONDS`` at most; the relay copies what a notice takes into its own store.

>>> files = RecentFiles(window_minutes=10)
>>> files.heard("r1", "alice", "m1", NoticeFile("通知.pdf", 10, "/tmp/a"), at=0.0)
>>> files.heard("r1", "bob", "m2", NoticeFile("名单.xlsx", 10, "/tmp/b"), at=1.0)
>>> [f.name for f in files.sent_by("r1", "alice", at=60.0)]
['通知.pdf']
>>> files.sent_by("r1", "alice", at=700.0)
[]
>>> files.quoted("r1", "m2").name
'名单.xlsx'
>>> files.heard("r1", "alice", "m1b", NoticeFile("通知.pdf", 10, "/tmp/a2"), at=2.0)  # another account
>>> len(files.sent_by("r1", "alice", at=60.0))
1
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from matrix.relay.attachments import NoticeFile

PER_ROOM = 50
ROOMS = 5000
SAME_SECONDS = 60.0
KEEP_SECONDS = 24 * 3600.0  # a quoted file may be older than the window, not older than this


@dataclass(frozen=True)
class _Heard:
    message_id: str
    sender: str
    file: NoticeFile
    at: float


class RecentFiles:
    """The files heard per room, newest last."""

    def __init__(self, window_minutes: int) -> None:
        self.window = window_minutes * 60.0
        self._rooms: OrderedDict[str, deque[_Heard]] = OrderedDict()

    def heard(
        self, room_id: str, sender: str, message_id: str, file: NoticeFile, at: float
    ) -> None:
        """A member sent ``file`` in the room. Each of the bot's accounts in the room hears
        it (under a message id of its own): the same sender, name and size within
        ``SAME_SECONDS`` is the same file."""
        files = self._rooms.pop(room_id, None) or deque(maxlen=PER_ROOM)
        for h in files:
            same = (h.sender, h.file.name, h.file.size) == (sender, file.name, file.size)
            if same and abs(at - h.at) <= SAME_SECONDS:
                self._rooms[room_id] = files
                return
        files.append(_Heard(message_id, sender, file, at))
        self._rooms[room_id] = files
        while len(self._rooms) > ROOMS:
            self._rooms.popitem(last=False)

    def sent_by(self, room_id: str, sender: str, at: float) -> list[NoticeFile]:
        """The files ``sender`` sent in the room in the last ``window_minutes``, oldest first."""
        return [
            h.file
            for h in self._rooms.get(room_id, ())
            if h.sender == sender and at - h.at <= self.window
        ]

    def quoted(self, room_id: str, message_id: str) -> NoticeFile | None:
        """The file of a message in the room, if it is one still remembered."""
        for h in self._rooms.get(room_id, ()):
            if h.message_id == message_id:
                return h.file
        return None

    def taken(self, room_id: str, files: list[NoticeFile]) -> None:
        """A notice took these: the next ``附件`` does not take them again."""
        room = self._rooms.get(room_id)
        if room is not None:
            kept = [h for h in room if h.file not in files]
            room.clear()
            room.extend(kept)

    def forget_old(self, at: float) -> None:
        """Drop what is older than ``KEEP_SECONDS``."""
        for room_id in list(self._rooms):
            room = self._rooms[room_id]
            while room and at - room[0].at > KEEP_SECONDS:
                room.popleft()
            if not room:
                del self._rooms[room_id]
