"""One answer per message when several bot accounts hear it: in one process, or in several
processes on one database.

Every account in a room hears each message; each asks ``claim`` before answering, and only the
one that gets the claim answers. Message ids cannot be the key: each WeChat account sees its
own id for the same message (the in-process Wechaty puppet copies that: its ids carry a
per-account prefix), and puppets differ in what time they stamp a message with. So the key is
a fingerprint of what all accounts see alike (the room, the sender, the text; or a room event),
and the claim is held by an account rather than per message:

- the account holding a fingerprint's claim answers every message with it (a repeated
  ``收到`` is a new message, answered again by the same account);
- another account takes the claim over only when it was last used more than ``window``
  seconds before (the holder left the room or stopped), which must exceed how far apart two
  accounts hear one message.

The claim is one atomic ``INSERT … ON CONFLICT DO UPDATE … WHERE`` on PostgreSQL and SQLite,
so two processes never both win. Claims older than the window are dead; ``prune`` drops them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Engine, delete, or_
from sqlalchemy.dialects import postgresql, sqlite

from matrix.tables import COMMAND_CLAIM

WINDOW = 60.0  # seconds: longer than two accounts hearing one message can be apart
_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def fingerprint(*parts: str) -> str:
    """A short key for one kind of message (what every account hears alike)."""
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


def claim(engine: Engine, key: str, account: str, at: float, window: float = WINDOW) -> bool:
    """Whether ``account`` answers the message ``key`` it heard at ``at`` (seconds since the
    epoch): it holds the claim already, or nobody used it within ``window`` seconds."""
    insert = _INSERTS.get(engine.dialect.name)
    if insert is None:
        raise NotImplementedError(f"claims need PostgreSQL or SQLite, not {engine.dialect.name}")
    stmt = insert(COMMAND_CLAIM).values(fingerprint=key, account=account, at=at)
    mine = or_(
        COMMAND_CLAIM.c.account == stmt.excluded.account,
        COMMAND_CLAIM.c.at < stmt.excluded.at - window,
        COMMAND_CLAIM.c.at > stmt.excluded.at + window,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[COMMAND_CLAIM.c.fingerprint],
        set_={"account": stmt.excluded.account, "at": stmt.excluded.at},
        where=mine,
    ).returning(COMMAND_CLAIM.c.account)
    with engine.begin() as conn:
        return conn.execute(stmt).first() is not None


def prune(engine: Engine, before: float) -> int:
    """Drop the claims last used before ``before``; how many."""
    with engine.begin() as conn:
        return int(conn.execute(delete(COMMAND_CLAIM).where(COMMAND_CLAIM.c.at < before)).rowcount)
