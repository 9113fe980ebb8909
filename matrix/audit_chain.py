"""The audit log as a hash chain: appending under the chain head, and checking the chain.

Each entry's ``hash`` is SHA-256 over its id, time, actor, action, unit, detail and the previous
entry's hash (``entry_hash``). Appends take the one-row ``audit_head`` in the caller's
transaction (``UPDATE … RETURNING`` locks the row on PostgreSQL; on SQLite that first write
takes the database's write lock), so appends from several processes queue up and the ids count
1, 2, 3 … without gaps; a transaction that rolls back takes its head move with it. The head is
held until the caller commits: record late in a transaction, not before a long wait.

The database itself refuses to update, delete, truncate or replace entries and to move the head
other than by an append (migration 0006). Whoever owns the database can switch that off;
``verify`` then still finds what was changed, and an anchor (``anchor``: the head's id and hash,
kept outside the database) finds even a chain rewritten from the start or cut at its end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlmodel import Session

from matrix.errors import MatrixError
from matrix.models import utcnow
from matrix.tables import AUDIT_ENTRY, AUDIT_HEAD

GENESIS = "0" * 64  # the "previous hash" of the first entry
# one encoder for every hash: json.dumps with options builds a new one per call
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_COLUMNS = (
    AUDIT_ENTRY.c.id,
    AUDIT_ENTRY.c.at,
    AUDIT_ENTRY.c.actor,
    AUDIT_ENTRY.c.action,
    AUDIT_ENTRY.c.unit_code,
    AUDIT_ENTRY.c.detail,
    AUDIT_ENTRY.c.prev_hash,
    AUDIT_ENTRY.c.hash,
)

Db = Connection | Session
Kind = Literal["changed", "missing", "inserted", "reordered", "rewritten"]


def entry_hash(
    entry_id: int,
    at: datetime,
    actor: str,
    action: str,
    unit_code: str | None,
    detail: str,
    prev_hash: str,
) -> str:
    """SHA-256 of one entry's canonical form: a JSON array, so no field can spill into another.

    >>> h = entry_hash(1, datetime(2026, 5, 1, tzinfo=UTC), "wx1", "roster.import", None, "{}", GENESIS)
    >>> len(h), h == entry_hash(1, datetime(2026, 5, 1, 8, tzinfo=UTC), "wx1", "roster.import", None, "{}", GENESIS)
    (64, False)
    """
    canonical = _CANONICAL.encode(
        [entry_id, at_text(at), actor, action, unit_code, detail, prev_hash]
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def at_text(at: datetime) -> str:
    """An entry's time as hashed: UTC, to the microsecond (what both databases keep)."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


# built once: an append runs on every command, and building a statement costs more than running it
_MOVE_HEAD = (
    update(AUDIT_HEAD)
    .where(AUDIT_HEAD.c.id == 1)
    .values(last_id=AUDIT_HEAD.c.last_id + 1)
    .returning(AUDIT_HEAD.c.last_id, AUDIT_HEAD.c.last_hash, AUDIT_HEAD.c.last_at)
)
_INSERT = insert(AUDIT_ENTRY)
_SETTLE_HEAD = (
    update(AUDIT_HEAD)
    .where(AUDIT_HEAD.c.id == 1)
    .values(last_hash=bindparam("digest"), last_at=bindparam("at", type_=AUDIT_HEAD.c.last_at.type))
)


def append(
    db: Db, actor: str, action: str, unit_code: str | None, detail: str, now: datetime | None = None
) -> int:
    """Add one entry at the head of the chain, in the caller's transaction; its id."""
    entry_id, prev_hash, last_at = db.execute(_MOVE_HEAD).one()
    # never older than the entry before it, even if another process's clock runs ahead: so an
    # entry older than the one before it can only be a forgery
    at = max(now or utcnow(), last_at)
    digest = entry_hash(entry_id, at, actor, action, unit_code, detail, prev_hash)
    row = {
        "id": entry_id,
        "at": at,
        "actor": actor,
        "action": action,
        "unit_code": unit_code,
        "detail": detail,
        "prev_hash": prev_hash,
        "hash": digest,
    }
    db.execute(_INSERT, [row])
    db.execute(_SETTLE_HEAD, {"digest": digest, "at": at})
    return int(entry_id)


def replay(db: Db, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append entries of another database's chain as they are (a restore), in id order, each
    through the head as ``append`` does, so the guards accept them and the chain stays the
    same; how many. A row that does not link to the one before it is refused by the guards."""
    n = 0
    for row in rows:
        entry_id, _, _ = db.execute(_MOVE_HEAD).one()
        if int(entry_id) != int(row["id"]):
            raise MatrixError(
                f"备份中的审计日志在第 {row['id']} 条处不连续（应为第 {entry_id} 条）",
                fix="用 qunmatrix log verify 检查备份来源的数据库",
            )
        db.execute(_INSERT, [dict(row)])
        db.execute(_SETTLE_HEAD, {"digest": row["hash"], "at": row["at"]})
        n += 1
    return n


@dataclass(frozen=True)
class Anchor:
    """The chain's head as an operator keeps it outside the database: ``12345:9f2c…``."""

    entry_id: int
    hash: str

    def __str__(self) -> str:
        return f"{self.entry_id}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """``ID:HASH`` as ``qunmatrix log anchor`` prints it.

        >>> Anchor.parse(" 3:" + "ab" * 32).entry_id
        3
        """
        number, _, digest = text.strip().partition(":")
        digest = digest.strip().lower()
        if not (number.isascii() and number.isdigit() and len(number) <= 18) or not (
            len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
        ):
            raise MatrixError(
                "锚点格式不对",
                fix="请照 `qunmatrix log anchor` 打印的样子写：编号:哈希（64 位十六进制）",
            )
        return cls(int(number), digest)


def anchor(db: Db) -> Anchor:
    """The head now: the newest entry's id and hash (0 and 64 zeros while the log is empty)."""
    found = db.execute(select(AUDIT_HEAD.c.last_id, AUDIT_HEAD.c.last_hash)).one_or_none()
    if found is None:
        raise MatrixError(
            "审计日志的链头记录（audit_head）不见了，数据库被改动过",
            fix="请运行 qunmatrix log verify --anchor 上次的锚点，并用备份核对",
        )
    return Anchor(int(found[0]), str(found[1]))


@dataclass(frozen=True)
class Problem:
    """The first place the chain breaks: ``kind`` of break at entry ``entry_id``; ``other`` is
    the entry involved too (the one swapped with, or the last of a missing run)."""

    kind: Kind
    entry_id: int
    other: int | None = None
    reason: str = ""  # a key the template words: bad_hash, bad_link, back_dated, …


@dataclass(frozen=True)
class Verdict:
    """What ``verify`` found: how many entries it read, the head, and the first problem."""

    entries: int
    head: Anchor
    problem: Problem | None
    anchor: Anchor | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


class _Row(NamedTuple):
    id: int
    at: datetime
    actor: str
    action: str
    unit_code: str | None
    detail: str
    prev_hash: str
    hash: str

    def digest(self, entry_id: int | None = None, prev_hash: str | None = None) -> str:
        return entry_hash(
            self.id if entry_id is None else entry_id,
            self.at,
            self.actor,
            self.action,
            self.unit_code,
            self.detail,
            self.prev_hash if prev_hash is None else prev_hash,
        )


def _rows(db: Db) -> Iterator[_Row]:
    result = db.execute(
        select(*_COLUMNS).order_by(AUDIT_ENTRY.c.id).execution_options(yield_per=5000)
    )
    for row in result:
        yield _Row._make(row)


def verify(db: Db, anchor: Anchor | None = None) -> Verdict:
    """Recompute the chain from its first entry; the first problem found, if any.

    Reads every entry once (10⁵ entries take a second or two); only when something is wrong
    does it look further, to tell a reordering from a change.
    """
    found = db.execute(
        select(AUDIT_HEAD.c.last_id, AUDIT_HEAD.c.last_hash, AUDIT_HEAD.c.migrated_id)
    ).one_or_none()
    if found is None:  # only someone switching the guards off can delete it
        count = db.execute(select(func.count()).select_from(AUDIT_ENTRY)).scalar_one()
        return Verdict(count, Anchor(0, GENESIS), Problem("missing", 0, reason="no_head"), anchor)
    last_id, last_hash, migrated_id = found
    head = Anchor(int(last_id), str(last_hash))
    count = 0
    previous: _Row | None = None
    hashes: dict[str, int] = {}  # hash → id, to recognise an entry found out of its place
    problem: Problem | None = None
    for row in _rows(db):
        count += 1
        problem = _check(db, row, previous, head, migrated_id, hashes)
        if problem is not None:
            break
        hashes[row.hash] = row.id
        previous = row
    if problem is None:
        problem = _check_end(previous, head, anchor, hashes)
    return Verdict(count, head, problem, anchor)


def _check(
    db: Db, row: _Row, previous: _Row | None, head: Anchor, migrated_id: int, seen: dict[str, int]
) -> Problem | None:
    expected_prev = GENESIS if previous is None else previous.hash
    after = 0 if previous is None else previous.id
    if row.id > head.entry_id:
        return Problem("inserted", row.id, reason="beyond_head")
    if row.prev_hash != expected_prev:
        linked_to = seen.get(row.prev_hash) or _owner_of_hash(db, row.prev_hash)
        if linked_to is not None and linked_to != after:
            return Problem("reordered", row.id, linked_to + 1, reason="moved")
        if row.id > after + 1:
            return Problem("missing", after + 1, row.id - 1, reason="gap")
        if previous is not None:
            return Problem("changed", previous.id, reason="rehashed")
        return Problem("inserted", row.id, reason="bad_link")
    if row.digest() != row.hash:
        swapped = _content_owner(db, row)
        if swapped is not None:
            return Problem("reordered", row.id, swapped, reason="swapped")
        return Problem("changed", row.id, reason="bad_hash")
    if row.id > after + 1 and row.id > migrated_id + 1:
        return Problem("missing", after + 1, row.id - 1, reason="gap")
    if previous is not None and row.id > migrated_id and row.at < previous.at:
        return Problem("inserted", row.id, reason="back_dated")
    return None


def _owner_of_hash(db: Db, digest: str) -> int | None:
    """The id of the entry whose hash this is, wherever it stands."""
    found = db.execute(
        select(AUDIT_ENTRY.c.id).where(AUDIT_ENTRY.c.hash == digest).limit(1)
    ).scalar()
    return None if found is None else int(found)


def _content_owner(db: Db, row: _Row) -> int | None:
    """The entry whose id and link this row's content hashes to: their contents were swapped."""
    for other in _rows(db):
        if other.id != row.id and row.digest(other.id, other.prev_hash) == other.hash:
            return other.id
    return None


def _check_end(
    last: _Row | None, head: Anchor, anchor: Anchor | None, hashes: dict[str, int]
) -> Problem | None:
    last_id = 0 if last is None else last.id
    if last_id < head.entry_id:
        return Problem("missing", last_id + 1, head.entry_id, reason="tail")
    if last is not None and last.hash != head.hash:
        return Problem("changed", last.id, reason="head_mismatch")
    if anchor is None or anchor.entry_id == 0:
        return None
    if last_id < anchor.entry_id:
        return Problem("missing", last_id + 1, anchor.entry_id, reason="tail_anchor")
    if hashes.get(anchor.hash) != anchor.entry_id:
        return Problem("rewritten", anchor.entry_id, reason="anchor_mismatch")
    return None


def hash_existing(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[int, str, str]]:
    """(id, prev_hash, hash) for entries written before the chain, in the order given (by id):
    what migration 0006 stores, so that history from before it is covered too."""
    prev = GENESIS
    for entry_id, at, actor, action, unit_code, detail in rows:
        digest = entry_hash(entry_id, at, actor, action, unit_code, detail, prev)
        yield entry_id, prev, digest
        prev = digest
