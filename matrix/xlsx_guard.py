"""An .xlsx checked against the input limits before openpyxl parses a byte of it.

An .xlsx is a zip of XML parts, and a small one can stand for gigabytes (one 1.5 GB cell in a
1.5 MB file, 3 million rows in 2 MB). So: the zip directory is read by hand and must be small;
the sizes the directory declares must add up to less than the limit (``zipfile`` never inflates
a member past its declared size: it stops there and fails the CRC check); then each worksheet
and the shared strings are inflated in chunks and scanned as bytes, at C speed, for the number
of rows, the cells in one row and the longest stretch of text. Nothing is kept but counters.
"""

from __future__ import annotations

import operator
import re
import struct
import zipfile
from pathlib import Path
from typing import IO

from matrix.errors import Problem, RosterError
from matrix.limits import MB, InputLimits, megabytes, too_big

CHUNK = 4 * MB
MAX_DIRECTORY = 1 * MB  # a workbook has a dozen parts; its zip directory is a few KB
MAX_MEMBERS = 10_000
MAX_OTHER_XML = 16 * MB  # styles, workbook, relations … openpyxl parses these whole
BYTES_PER_CHAR = 10  # the most one character can take in XML: a reference like &#1114111;
_PREFIX = re.compile(rb"<([A-Za-z_][\w.-]*:)?(?:worksheet|sst)\b")


def _refuse(path: Path, message: str) -> RosterError:
    return RosterError([Problem(path.name, message)])


def _directory(path: Path) -> tuple[int, int]:
    """(size of the central directory, number of entries), from the end records."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        tail_at = max(0, size - 65_557)  # the end record plus the longest comment
        fh.seek(tail_at)
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            raise _refuse(path, "无法作为 Excel 文件打开：不是有效的 .xlsx（zip）文件")
        entries, cd_size = struct.unpack("<10xHL6x", tail[at : at + 22])
        if entries == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: the real figures sit before
            locator = tail[at - 20 : at] if at >= 20 else b""
            if locator[:4] != b"PK\x06\x07":
                raise _refuse(path, "无法作为 Excel 文件打开：zip 目录损坏")
            (offset,) = struct.unpack("<8xQ4x", locator)
            fh.seek(offset)
            record = fh.read(56)
            if record[:4] != b"PK\x06\x06" or len(record) < 56:
                raise _refuse(path, "无法作为 Excel 文件打开：zip 目录损坏")
            entries, cd_size = struct.unpack("<32xQQ8x", record)
    return cd_size, entries


def check_xlsx(path: Path, limits: InputLimits) -> None:
    """Raise ``RosterError`` naming the first limit ``path`` exceeds; return if it fits."""
    cd_size, entries = _directory(path)
    if cd_size > MAX_DIRECTORY or entries > MAX_MEMBERS:
        raise _refuse(
            path,
            f"压缩包内有 {entries:,} 个文件，不像 Excel 名册；请在 Excel 中另存为 .xlsx 或 CSV",
        )
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _refuse(path, f"无法作为 Excel 文件打开：{str(exc)[:200]}") from exc
    with book:
        infos = book.infolist()
        total = sum(i.file_size for i in infos)
        if total > limits.max_uncompressed_bytes:
            raise RosterError(
                [
                    too_big(
                        path.name,
                        "解压后大小",
                        megabytes(total),
                        f"{limits.max_xlsx_uncompressed_mb} MB",
                        "max_xlsx_uncompressed_mb",
                    )
                ]
            )
        for info in infos:
            name = info.filename.lower()
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                _scan(book, info, path, limits, unit=b"row", part=b"c")
            elif name.endswith("sharedstrings.xml"):
                _scan(book, info, path, limits, unit=b"si", part=b"r")
            elif name.endswith((".xml", ".rels")) and info.file_size > MAX_OTHER_XML:
                raise _refuse(
                    path,
                    f"文件内部的 {info.filename[:80]} 有 {megabytes(info.file_size)}，"
                    "不像 Excel 名册；请在 Excel 中另存为 .xlsx 或 CSV",
                )


class _Scan:
    """Counters over one XML part, fed chunk after chunk."""

    def __init__(self, path: Path, limits: InputLimits, unit: bytes, part: bytes) -> None:
        self.path, self.limits, self.unit, self.part = path, limits, unit, part
        self.count = 0  # units (rows or shared strings) begun so far
        self.unit_bytes = 0  # bytes of the unit in progress
        self.unit_parts = 0  # its cells (or rich-text runs)
        self.run = 0  # bytes since the last '<'
        self.max_run = BYTES_PER_CHAR * limits.max_cell_chars
        # a row is at most max_columns cells of at most max_cell_chars, with their markup
        self.max_unit = limits.max_columns * (self.max_run + 512) if unit == b"row" else 0
        self.max_unit = self.max_unit or 2 * self.max_run + 64 * 1024
        self.max_parts = limits.max_columns if unit == b"row" else limits.max_cell_chars
        self.small_unit = 4 * (self.max_parts + 1)  # '<c/>': no fewer bytes can hold more parts
        self.row = 0
        self.opening: re.Pattern[bytes] | None = None
        self.part_tags: tuple[bytes, ...] = ()
        self.max_units = limits.max_rows if unit == b"row" else 4 * limits.max_rows
        # starts with a literal, so the engine jumps from '<' to '<': linear in the bytes
        self.long_run = re.compile(rb"<[^<]{%d}" % (self.max_run + 1))

    def start(self, head: bytes) -> None:
        found = _PREFIX.search(head)
        prefix = (found.group(1) or b"") if found else b""
        self.opening = re.compile(b"<" + re.escape(prefix + self.unit) + rb"[\s/>]")
        tag = b"<" + prefix + self.part
        self.part_tags = (tag + b" ", tag + b">", tag + b"/")

    def parts(self, seg: bytes, start: int, end: int) -> int:
        return sum(seg.count(t, start, end) for t in self.part_tags)

    def feed(self, seg: bytes) -> None:
        self._check_text(seg)
        assert self.opening is not None
        starts = [m.start() for m in self.opening.finditer(seg)]
        if not starts:
            self._grow(seg, 0, len(seg))  # the unit in progress goes on
            return
        self._grow(seg, 0, starts[0])
        self.count += len(starts)
        if self.count > self.max_units:
            self._fail("行数" if self.unit == b"row" else "共享字符串数", None)
        ends = [*starts[1:], len(seg)]
        spans = list(map(operator.sub, ends, starts))
        small = self.small_unit
        if max(spans) > small:  # counting cells is only needed in rows long enough to hold many
            first = self.count - len(starts)
            for i in (i for i, span in enumerate(spans) if span > small):
                self.unit_bytes = self.unit_parts = 0
                self.row = first + i + 1
                self._grow(seg, starts[i], ends[i])
        self.unit_bytes = spans[-1]
        self.unit_parts = self.parts(seg, starts[-1], ends[-1]) if spans[-1] > small else 0
        self.row = self.count

    def _grow(self, seg: bytes, start: int, end: int) -> None:
        self.unit_bytes += end - start
        if self.unit_bytes > self.small_unit:
            self.unit_parts += self.parts(seg, start, end)
        if self.unit_parts > self.max_parts:
            if self.unit == b"row":
                self._fail("列数", None, f"第 {self.row:,} 行（按文件顺序）")
            self._cell_too_long()
        if self.unit_bytes > self.max_unit:
            self._cell_too_long()

    def _check_text(self, seg: bytes) -> None:
        first = seg.find(b"<")
        if self.run + (len(seg) if first < 0 else first) > self.max_run or self.long_run.search(
            seg
        ):
            self._cell_too_long()
        last = seg.rfind(b"<")
        self.run = self.run + len(seg) if last < 0 else len(seg) - last - 1

    def _cell_too_long(self) -> None:
        raise RosterError(
            [
                too_big(
                    self.path.name,
                    "有一个单元格的长度",
                    None,
                    f"{self.limits.max_cell_chars:,} 个字符",
                    "max_cell_chars",
                )
            ]
        )

    def _fail(self, what: str, found: str | None, where: str = "") -> None:
        if what == "列数":
            limit, setting = f"{self.limits.max_columns:,} 列", "max_columns"
        else:
            limit, setting = f"{self.max_units:,}", "max_rows"
        raise RosterError(
            [too_big(f"{self.path.name} {where}".strip(), what, found, limit, setting)]
        )


def _scan(
    book: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    path: Path,
    limits: InputLimits,
    *,
    unit: bytes,
    part: bytes,
) -> None:
    scan = _Scan(path, limits, unit, part)
    carry = b""
    try:
        with book.open(info) as stream:
            _feed_all(stream, scan, carry)
    except zipfile.BadZipFile as exc:  # e.g. it inflates past the size its directory declares
        raise _refuse(
            path, "无法作为 Excel 文件打开：压缩数据与文件目录记录的大小或校验值不符"
        ) from exc
    except (OSError, EOFError) as exc:
        raise _refuse(path, f"无法作为 Excel 文件打开：{str(exc)[:200]}") from exc


def _feed_all(stream: IO[bytes], scan: _Scan, carry: bytes) -> None:
    first = True
    while True:
        data = stream.read(CHUNK)
        buf = carry + data
        if first:
            scan.start(buf[:4096])
            first = False
        if data:
            # a tag cut by the chunk boundary waits for the next chunk
            cut = buf.rfind(b"<")
            cut = cut if cut >= 0 and buf.find(b">", cut) < 0 and len(buf) - cut < 256 else len(buf)
            buf, carry = buf[:cut], buf[cut:]
        scan.feed(buf)
        if not data:
            return
