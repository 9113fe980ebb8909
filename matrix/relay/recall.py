"""The last look before a send: a copy (or a reminder) of a notice withdrawn or corrected since
it was queued is not sent, and a withdrawal's announcement first takes the copy back from the
room where the platform lets the bot (``Platform.recall``).

The withdrawal marks every copy not yet claimed in its own transaction; a copy already claimed
(on its way in a worker's batch) is caught here, just before its send, so no copy goes out
after the withdrawal was recorded. Apart from ``matrix.relay.withdraw`` because the delivery
engine calls it, and the withdrawal itself reaches the engine through the notices."""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any, Protocol

from sqlalchemy import Engine, select

from matrix.platform import Platform, PlatformError
from matrix.relay.env import RelayEnv
from matrix.tables import DELIVERY, NOTICE

STOPPED = ("withdrawn", "corrected")  # a notice in these states sends nothing more
_OF_A_NOTICE = ("notice", "file", "announce", "remind", "escalate")


class Row(Protocol):
    """What is read of a claimed delivery row (``matrix.relay.delivery.Claimed``)."""

    kind: str
    notice_id: int | None
    payload: str


def still_wanted(env: RelayEnv, row: Row) -> bool:
    """Whether a copy (or a reminder) of a notice should still go out: read just before its
    send, after everything else is ready."""
    if row.notice_id is None or row.kind not in _OF_A_NOTICE:
        return True
    engine = env.engine
    if engine.url.database in (None, "", ":memory:"):  # one shared connection: keep none apart
        return _pooled_look(engine, row.notice_id) not in STOPPED
    try:
        state = _look(engine, row.notice_id)
    except Exception:  # the kept connection broke (a server restart): look through the pool
        _LOOKS.__dict__.pop("by_engine", None)
        state = _pooled_look(engine, row.notice_id)
    return state not in STOPPED


def _pooled_look(engine: Engine, notice_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(NOTICE.c.state).where(NOTICE.c.id == notice_id)).scalar()


_LOOKS = threading.local()


def _look(engine: Engine, notice_id: int) -> str | None:
    """A notice's state, read on a connection this thread keeps for these looks, out of the
    pool and in autocommit: one round trip. Through the pool a look was three (the pre-ping,
    the read, the rollback), once per copy sent, and the PostgreSQL engine spent most of its
    time on them. Each read ends its own transaction, so it sees every withdrawal committed."""
    kept: weakref.WeakKeyDictionary[Engine, tuple[Any, str]] = _LOOKS.__dict__.setdefault(
        "by_engine", weakref.WeakKeyDictionary()
    )
    if (look := kept.get(engine)) is None:
        pooled = engine.raw_connection()
        driver: Any = pooled.driver_connection
        pooled.detach()  # closed when the engine goes, never handed back to the pool
        if engine.dialect.name == "sqlite":
            driver.isolation_level = None  # sqlite3: no transaction left open by a read
        else:
            driver.rollback()  # the pool's pre-ping may have begun a transaction
            driver.autocommit = True
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        look = kept[engine] = (driver, f"SELECT state FROM {NOTICE.name} WHERE id = {mark}")
    driver, sql = look
    cursor = driver.cursor()
    try:
        cursor.execute(sql, (notice_id,))
        found = cursor.fetchall()  # to the end: a statement left open would hold a snapshot
    finally:
        cursor.close()
    return found[0][0] if found else None


async def prepared(env: RelayEnv, platform: Platform, row: Row) -> bool:
    """Whether the row is ready to compose: an announcement of a withdrawal first tries to
    recall the copy it announces (its context then says whether that worked), and is dropped
    where that copy never went out."""
    if row.kind == "withdraw":
        return await _recall_copy(env, platform, row)
    return True


async def _recall_copy(env: RelayEnv, platform: Platform, row: Row) -> bool:
    """A group the copy never reached (stopped just before its first send) needs no
    announcement; one it may have reached (sent, or its fate unknown) gets it."""
    payload: dict[str, Any] = json.loads(row.payload)
    context = payload["context"]
    with env.engine.connect() as conn:
        copy = conn.execute(
            select(DELIVERY.c.state, DELIVERY.c.message_id, DELIVERY.c.resend).where(
                DELIVERY.c.id == context["copy"]
            )
        ).first()
    # a copy queued again as 补发 (its fate was unknown) may have reached the room before
    if copy is None or not (copy.resend or copy.state in ("sent", "sending")):
        return False
    recalled = False
    if copy.message_id and not context.get("recalled"):
        try:
            await platform.recall(copy.message_id)
            recalled = True
        except PlatformError:
            # too old, another account's message, not supported here; or the platform is
            # away, which the send step below meets too and then tries the row again
            recalled = False
    context["recalled"] = recalled or bool(context.get("recalled"))
    if context.get("files"):
        context["files"] = await _recall_files(env, platform, context["files"])
    row.payload = json.dumps(payload, ensure_ascii=False)
    return True


async def _recall_files(env: RelayEnv, platform: Platform, file_rows: list[int]) -> list[int]:
    """Take back the notice's files in the group where the platform still lets the bot: the
    rows not recalled (tried again if the announcement is)."""
    with env.engine.connect() as conn:
        sent = conn.execute(
            select(DELIVERY.c.id, DELIVERY.c.message_id).where(DELIVERY.c.id.in_(file_rows))
        ).all()
    left = []
    for row in sent:
        try:
            if row.message_id:
                await platform.recall(row.message_id)
                continue
        except PlatformError:
            pass  # too old, or not supported: the announcement says the notice is void anyway
        left.append(row.id)
    return left
