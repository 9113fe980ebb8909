"""Files on a notice (``#通知 … 附件``): the checks, the bot's copies, and the copies' rows.

Before anything is queued, the files a member sent are checked (how many, how large, what kind:
``[relay.attachments]``; the content guard reads their names in ``issue_notice``) and copied into
the bot's own store, so that a file the platform cleans up later, or a member deletes, still goes
out with a scheduled or recurring notice. A copy is named by its content (``<sha256>/<name>``):
the same file on two notices is kept once.

Each target group gets one delivery row of kind ``file`` per file, queued right after the
notice's copy for that group, for the same account, and sent only once the text has gone there
(``copy_of``): in every group the files follow their notice. A file row is written as sent at
once after its send (``matrix.relay.delivery``), so a crash cannot make a file go twice.

>>> opts = AttachmentOptions(max_mb=1, types=["pdf"])
>>> file_problem(opts, NoticeFile("通知.pdf", 2 * MB, "/x"))
'附件“通知.pdf”有 2.0 MB，超过 1 MB 的上限'
>>> file_problem(opts, NoticeFile("名单.exe", 10, "/x"))
'附件“名单.exe”的类型 .exe 不能随通知下发（可发：pdf）'
>>> file_problem(opts, NoticeFile("通知.PDF", 10, "/x")) is None
True
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, or_, select

from matrix.relay.errors import BadCommand
from matrix.relay.options import AttachmentOptions
from matrix.tables import DELIVERY, NOTICE

MB = 1024 * 1024
_NAME_LIMIT = 120  # characters of a file name kept (WeChat shows about that much)


@dataclass(frozen=True)
class NoticeFile:
    """A file on a notice: as the member sent it (``path`` where the platform saved it), or the
    bot's copy (``path`` in the store)."""

    name: str
    size: int  # bytes
    path: str


def file_problem(options: AttachmentOptions, file: NoticeFile) -> str | None:
    """Why one file cannot go with a notice, or None."""
    ending = file.name.rsplit(".", 1)[-1].lower() if "." in file.name else ""
    if ending not in {t.lower().lstrip(".") for t in options.types}:
        kinds = "、".join(options.types)
        return f"附件“{file.name}”的类型 .{ending or '（无）'} 不能随通知下发（可发：{kinds}）"
    if file.size > options.max_mb * MB:
        return f"附件“{file.name}”有 {file.size / MB:.1f} MB，超过 {options.max_mb:g} MB 的上限"
    return None


def no_files_found(options: AttachmentOptions) -> BadCommand:
    """附件 was written, and its sender sent no file lately (nor quoted one)."""
    return BadCommand(
        f"没有找到你在 {options.window_minutes} 分钟内在本群发的文件",
        fix="请先在本群发送文件，再发 #通知 … 附件（或引用那个文件发 #通知）",
    )


def check_files(options: AttachmentOptions, files: Sequence[NoticeFile]) -> None:
    """Refuse the files (``BadCommand``, nothing written) unless every one may go."""
    if len(files) > options.max_count:
        raise BadCommand(
            f"一条通知最多带 {options.max_count} 个附件，这次有 {len(files)} 个",
            fix="请分成几条通知下发，或把文件打包成一个压缩包",
        )
    for file in files:
        problem = file_problem(options, file)
        if problem is not None:
            raise BadCommand(problem, fix="请换成可下发的文件后重新发送，再发 #通知 … 附件")
        if not os.path.isfile(file.path):
            raise BadCommand(
                f"附件“{file.name}”已读取不到", fix="请在群里重新发送这个文件，再发 #通知 … 附件"
            )


def store_files(
    conn: Connection, options: AttachmentOptions, files: Sequence[NoticeFile], now: datetime
) -> list[NoticeFile]:
    """The bot's own copies of ``files`` (already checked), in ``options.dir``. When the store
    would grow past ``store_max_mb`` it is first freed of copies no notice needs
    (``prune_store``), and the notice is refused if that is not enough. A copy is written under
    a temporary name and moved into place, so a crash never leaves half a file under the real
    name."""
    root = Path(options.dir)
    root.mkdir(parents=True, exist_ok=True)
    stored = []
    digests = [_digest(f.path) for f in files]
    fresh = [f for f, d in zip(files, digests, strict=True) if not (root / d).is_dir()]
    limit = options.store_max_mb * MB
    if _used(root) + sum(f.size for f in fresh) > limit and (
        prune_store(conn, options, now) == 0 or _used(root) + sum(f.size for f in fresh) > limit
    ):
        raise BadCommand(
            "机器人保存附件的空间已满", fix="请联系管理员清理附件目录或调大 store_max_mb"
        )
    for file, digest in zip(files, digests, strict=True):
        name = _safe_name(file.name)
        folder = root / digest
        target = folder / name
        if not target.is_file():
            folder.mkdir(exist_ok=True)
            with (
                tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as part,
                open(file.path, "rb") as source,
            ):
                shutil.copyfileobj(source, part)
            os.replace(part.name, target)
        stored.append(NoticeFile(file.name, target.stat().st_size, str(target)))
    return stored


def prune_store(conn: Connection, options: AttachmentOptions, now: datetime) -> int:
    """Remove the copies no notice may send again: kept are those of a notice waiting to go
    (held, scheduled, recurring), with a file not yet sent, or issued in the last ``keep_days``
    (it may still be corrected, and a correction sends its files again), and any copy made in
    the last hour (a notice being issued right now). Returns how many copies went."""
    root = Path(options.dir)
    if not root.is_dir():
        return 0
    unsent = select(DELIVERY.c.notice_id).where(
        DELIVERY.c.kind == "file", DELIVERY.c.state.in_(("pending", "sending"))
    )
    keeping = conn.execute(
        select(NOTICE.c.files).where(
            NOTICE.c.files != "[]",
            or_(
                NOTICE.c.state.in_(("held", "scheduled", "recurring")),
                NOTICE.c.created_at >= now - timedelta(days=options.keep_days),
                NOTICE.c.id.in_(unsent),
            ),
        )
    ).scalars()
    needed = {Path(f.path).parent.name for stored in keeping for f in notice_files(stored)}
    fresh_since = time.time() - 3600
    removed = 0
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in needed and folder.stat().st_mtime < fresh_since:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _digest(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()[:32]


def _used(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def shown_name(name: str) -> str:
    """A member's file name as the bot repeats it (replies, copies, #进度): at most
    ``_NAME_LIMIT`` characters, its ending kept when it is a real one.

    >>> len(shown_name("很" * 500 + ".pdf")), shown_name("很" * 500 + ".pdf")[-4:]
    (120, '.pdf')
    >>> len(shown_name("a." + "x" * 500))
    120
    """
    if len(name) <= _NAME_LIMIT:
        return name
    stem, dot, ending = name.rpartition(".")
    if not dot or len(ending) > 16:
        return name[:_NAME_LIMIT]
    return stem[: _NAME_LIMIT - len(ending) - 1] + dot + ending


def _safe_name(name: str) -> str:
    """The name the copy is sent under: no folders, nothing hidden (a leading dot), bounded.

    >>> _safe_name("../../etc/通知.pdf"), _safe_name("..pdf"), _safe_name(".."), _safe_name("")
    ('通知.pdf', '附件.pdf', '附件', '附件')
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base.startswith("."):  # hidden, or nothing but an ending left: named 附件, ending kept
        rest = base.lstrip(".")
        base = f"附件.{rest}" if rest else ""
    return shown_name(base or "附件")


def files_json(files: Sequence[NoticeFile]) -> str:
    """``relay_notice.files``."""
    return json.dumps([asdict(f) for f in files], ensure_ascii=False)


def notice_files(stored: str | None) -> list[NoticeFile]:
    """The files a notice row carries."""
    return [NoticeFile(**f) for f in json.loads(stored or "[]")]


def file_rows(copy: dict[str, Any], files: Sequence[NoticeFile]) -> list[dict[str, Any]]:
    """The delivery rows of a notice copy's files: for the copy's group and account, right
    after it (``copy`` is the copy's row as ``matrix.relay.notices`` queues it)."""
    rows = []
    for i, file in enumerate(files):
        payload = {"path": file.path, "name": file.name}
        rows.append(
            {
                **copy,
                "key": f"file:{copy['notice_id']}:{copy['group_id']}:{i}",
                "kind": "file",
                "payload": json.dumps(payload, ensure_ascii=False),
            }
        )
    return rows


def copy_of(conn: Connection, notice_id: int, group_id: int) -> tuple[str | None, datetime | None]:
    """The state of the notice's copy in the group, and when it is next tried: a file goes once
    it is ``sent``, waits while it is ``pending`` or ``sending``, and goes no more otherwise."""
    row = conn.execute(
        select(DELIVERY.c.state, DELIVERY.c.next_at).where(
            DELIVERY.c.notice_id == notice_id,
            DELIVERY.c.group_id == group_id,
            DELIVERY.c.kind == "notice",
        )
    ).first()
    return (row.state, row.next_at) if row is not None else (None, None)
