"""The last look before a send: a copy (or a reminder) of a notice withdrawn or corrected since
it was queued is not sent, and a withdrawal's announcement first takes the copy back from the
room where the platform lets the bot (``Platform.recall``).

The withdrawal marks every copy not yet claimed in its own transaction; a copy already claimed
(on its way in a worker's batch) is caught here, by a look made as the copy is composed and
read just before its send. A look made for an earlier copy of the same notice less than
``[relay] look_fresh_ms`` ago (20 ms) serves instead; closing a notice in this process voids
those at once. So a withdrawal stops every copy whose look begins that long after it is
recorded, and in this process every copy whose look begins after it; one recorded later, as
one during the send itself, comes too late for that copy and stops every later one. A paced
account sends further apart than that and looks before every copy; an unpaced one would spend
a round trip to the database on each (a quarter of the engine's time on PostgreSQL).

Apart from ``matrix.relay.withdraw`` because the delivery engine calls it, and the withdrawal
itself reaches the engine through the notices."""

from __future__ import annotations

import json
import select as select_module
import threading
import weakref
from collections.abc import Callable
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
    return look(env, row)()


def look(env: RelayEnv, row: Row) -> Callable[[], bool]:
    """Start the last look before a send; the function returned gives its answer, to be asked
    for just before the send. A recent enough look at the same notice answers at once. On
    PostgreSQL the question goes to the server now and its answer is read when asked for, so
    the round trip passes while the copy is composed; elsewhere the look is made when asked."""
    if row.notice_id is None or row.kind not in _OF_A_NOTICE:
        return _wanted
    notice_id, answers, now = row.notice_id, _answers(env.engine), env.clock()
    known = answers.recent(notice_id, env.clock, now, env.options.look_fresh_ms / 1000)
    if known is not None:
        return _wanted if known else _unwanted
    state, generation = _ask(env.engine, notice_id), answers.generation

    def answer() -> bool:
        wanted = state() not in STOPPED
        answers.keep(notice_id, wanted, env.clock, now, generation)
        return wanted

    return answer


def forget_looks(engine: Engine) -> None:
    """A notice was closed (withdrawn, corrected, stopped): no look made before serves again."""
    _answers(engine).void()


def _wanted() -> bool:
    return True


def _unwanted() -> bool:
    return False


def _ask(engine: Engine, notice_id: int) -> Callable[[], str | None]:
    """The notice's state, read when the function returned is called."""
    if engine.url.database in (None, "", ":memory:"):  # one shared connection: keep none apart
        return lambda: _pooled_look(engine, notice_id)
    if engine.dialect.name != "postgresql":
        return lambda: _kept(engine, notice_id, lambda: _sqlite_look(engine, notice_id))
    try:
        asked = _asker(engine).ask(notice_id)
    except Exception:  # the kept connection broke (a server restart): look through the pool
        _forget(engine)
        return lambda: _pooled_look(engine, notice_id)
    return lambda: _kept(engine, notice_id, asked)


def _kept(engine: Engine, notice_id: int, read: Callable[[], str | None]) -> str | None:
    """The notice's state by ``read`` on the kept connection, or through the pool when that
    connection broke (a server restart)."""
    try:
        return read()
    except Exception:
        _forget(engine)
        return _pooled_look(engine, notice_id)


class _Answers:
    """What recent looks found, by notice, for every thread of the process. Each answer keeps
    the clock it was read on and the generation it was asked in: closing a notice starts a new
    generation, and an answer asked before that never serves again."""

    _MOST = 4096  # notices remembered; past that the memory starts again

    def __init__(self) -> None:
        self.generation = 0
        self._seen: dict[int, tuple[bool, object, float, int]] = {}

    def recent(self, notice_id: int, clock: object, now: float, fresh: float) -> bool | None:
        seen = self._seen.get(notice_id)
        if seen is None:
            return None
        wanted, on, at, generation = seen
        if on is not clock or generation != self.generation or not 0 <= now - at < fresh:
            return None
        return wanted

    def keep(self, notice_id: int, wanted: bool, clock: object, at: float, generation: int) -> None:
        if generation != self.generation:
            return  # a notice was closed while this look was on its way
        if len(self._seen) >= self._MOST:
            self._seen.clear()
        self._seen[notice_id] = (wanted, clock, at, generation)

    def void(self) -> None:
        self.generation += 1
        self._seen.clear()


_ANSWERS: weakref.WeakKeyDictionary[Engine, _Answers] = weakref.WeakKeyDictionary()
_ANSWERS_MADE = threading.Lock()


def _answers(engine: Engine) -> _Answers:
    if (answers := _ANSWERS.get(engine)) is None:
        with _ANSWERS_MADE:
            answers = _ANSWERS.setdefault(engine, _Answers())
    return answers


def _pooled_look(engine: Engine, notice_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(NOTICE.c.state).where(NOTICE.c.id == notice_id)).scalar()


# Looks are made on a connection each thread keeps for them, out of the pool and in autocommit:
# one round trip. Through the pool a look was three (the pre-ping, the read, the rollback), once
# per copy sent. Each read ends its own transaction, so it sees every withdrawal committed.
_LOOKS = threading.local()


def _kept_by_engine() -> weakref.WeakKeyDictionary[Engine, Any]:
    kept: weakref.WeakKeyDictionary[Engine, Any] = _LOOKS.__dict__.setdefault(
        "by_engine", weakref.WeakKeyDictionary()
    )
    return kept


def _forget(engine: Engine) -> None:
    _kept_by_engine().pop(engine, None)


def _detached(engine: Engine) -> Any:
    """The driver's own connection, taken out of the pool for good (closed when the engine
    goes, never handed back)."""
    pooled = engine.raw_connection()
    driver: Any = pooled.driver_connection
    pooled.detach()
    return driver


def _sqlite_look(engine: Engine, notice_id: int) -> str | None:
    kept = _kept_by_engine()
    if (driver := kept.get(engine)) is None:
        driver = kept[engine] = _detached(engine)
        driver.isolation_level = None  # sqlite3: no transaction left open by a read
    cursor = driver.cursor()
    try:
        cursor.execute(f"SELECT state FROM {NOTICE.name} WHERE id = ?", (notice_id,))
        found = cursor.fetchall()  # to the end: a statement left open would hold a snapshot
    finally:
        cursor.close()
    return found[0][0] if found else None


def _asker(engine: Engine) -> _Asker:
    kept = _kept_by_engine()
    if (asker := kept.get(engine)) is None:
        asker = kept[engine] = _Asker(_detached(engine))
    return asker


class _Asker:
    """A PostgreSQL connection that asks for a notice's state without waiting for the answer:
    a prepared statement sent on psycopg's libpq connection, its result read when wanted. A
    question left unread (its copy went another way) is read and dropped by the next one."""

    _NAME = b"qunmatrix_look"

    def __init__(self, driver: Any) -> None:
        from psycopg.pq import ExecStatus  # only here: the CLI starts without the driver

        self._ok, self._rows = ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK
        driver.rollback()  # the pool's pre-ping may have begun a transaction
        driver.autocommit = True
        self._driver = driver  # kept alive with its libpq connection
        self._pg = driver.pgconn
        sql = f"SELECT state FROM {NOTICE.name} WHERE id = $1".encode()
        self._check(self._pg.prepare(self._NAME, sql), self._ok)
        self._asked = 0  # questions sent so far
        self._unread = False  # the last one's answer is still on the wire

    def ask(self, notice_id: int) -> Callable[[], str | None]:
        if self._unread:
            self._read()
        self._pg.send_query_prepared(self._NAME, [str(notice_id).encode()])
        self._asked += 1
        self._unread = True
        while self._pg.flush():  # the socket took only part of it
            select_module.select([], [self._pg.socket], [])
        ticket = self._asked

        def answer() -> str | None:
            if ticket != self._asked or not self._unread:
                raise ConnectionError("a look's answer was read after another question")
            return self._read()

        return answer

    def _read(self) -> str | None:
        """The answer to the question sent last (libpq waits for it)."""
        self._unread = False
        result = self._pg.get_result()
        while self._pg.get_result() is not None:  # to the end of this question's results
            pass
        self._check(result, self._rows)
        return result.get_value(0, 0).decode() if result.ntuples else None

    @staticmethod
    def _check(result: Any, status: Any) -> None:
        if result is None or result.status != status:
            message = result.error_message.decode(errors="replace") if result else "no result"
            raise ConnectionError(f"look failed: {message}")


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
