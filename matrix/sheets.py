"""Reading the tables people hand us: CSV (UTF-8 with or without BOM, or GB18030 as Excel
saves it in China; comma- or tab-separated) and XLSX, with English or Chinese headers.

Rows keep their number as a spreadsheet shows it (the header is row 1), so every error can say
"units.csv 第 7 行 「上级代码」".
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from matrix.errors import Problem, RosterError
from matrix.limits import MB, InputLimits, megabytes, too_big
from matrix.xlsx_guard import check_xlsx

CHUNK = 4 * MB
EVERY = 8192  # rows between two progress reports

# who is told of the rows read so far (file name, rows, rows in the file if known): a command
# line's progress bar; nobody by default, and then reading costs nothing more
Watcher = Callable[[str, int, int | None], None]
_WATCHER: ContextVar[Watcher | None] = ContextVar("sheet_watcher", default=None)


@contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Tell ``watcher`` how far each sheet read inside this block has got."""
    token = _WATCHER.set(watcher)
    try:
        yield
    finally:
        _WATCHER.reset(token)


def _watched(
    name: str, rows: Iterator[Sequence[Any]], total: int | None, watcher: Watcher
) -> Iterator[Sequence[Any]]:
    done = 0
    watcher(name, 0, total)
    for done, row in enumerate(rows, start=1):
        if not done % EVERY:
            watcher(name, done, total)
        yield row
    watcher(name, max(done, total or 0), total)


@dataclass(frozen=True)
class Column:
    field: str
    headers: tuple[str, ...]  # accepted header texts, the first English, the second Chinese
    required: bool = True

    @property
    def label(self) -> str:
        return self.headers[1] if len(self.headers) > 1 else self.headers[0]


@dataclass
class Sheet:
    """A table opened from one file. ``records()`` streams (row number, {field: text}) once,
    ``rows()`` (row number, texts) in a given order: a national roster has 750,000 rows and is
    validated as it is read, never held whole."""

    path: Path
    headers: dict[str, str]  # field -> header text as written in the file
    index: dict[str, int]  # field -> column position
    raw: Iterator[Sequence[Any]]

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        fields = tuple(self.index)
        for number, values in self.rows(fields):
            yield number, dict(zip(fields, values, strict=True))

    def rows(self, fields: Sequence[str]) -> Iterator[tuple[int, tuple[str, ...]]]:
        """Stream (row number, the texts of ``fields`` in that order) once, skipping blank rows;
        a field the file has no column for reads as "". Tuples, not a dict per row: the roster
        import reads 950,000 rows, and a dict each cost a second of it."""
        width = max(self.index.values()) + 1
        pick = _picker([self.index.get(f) for f in fields])
        texts = self.path.suffix.lower() not in (".xlsx", ".xlsm")  # CSV cells are text already
        for number, cells in enumerate(self.raw, start=2):
            if not texts and not any(cells) and 0 not in cells:
                continue  # blank, and cheap to tell (Excel pads the gaps between rows)
            if len(cells) < width:
                cells = [*cells, *[""] * (width - len(cells))]
            values = pick(cells)
            if not texts:
                values = tuple(_cell_text(v) for v in values)
            if values[0].strip() or "".join(values).strip():  # the first cell tells nearly all
                yield number, values

    def where(self, row: int, field: str | None = None) -> str:
        place = f"{self.path.name} 第 {row} 行"
        if field is not None:
            place += f" 「{self.headers.get(field, field)}」列"
        return place


def _picker(where: Sequence[int | None]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """The cells at ``where`` as a tuple, "" for a None (a column the file does not have)."""
    if None in where:
        return lambda cells: tuple("" if i is None else cells[i] for i in where)
    get = itemgetter(*where)
    return get if len(where) > 1 else lambda cells: (get(cells),)


def _fold_header(text: str) -> str:
    return re.sub(r"[\s_]+", "", unicodedata.normalize("NFKC", text)).lower()


def _cell_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 13800138000 as a float
    return str(value)


@dataclass(frozen=True)
class _Survey:
    """What one cheap pass over a CSV file's bytes tells before it is parsed."""

    encoding: str
    lines: int
    long_cells: bool  # a line longer than a cell may be: only then are cells measured
    too_long: bool  # a line longer than a whole record may be
    quotes: bool  # a quoted field may hold line breaks: then records and lines differ
    nul: bool
    delimiter: str = ","


class _Lines:
    """Whether any line is longer than ``threshold`` bytes, chunk after chunk."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.longer = re.compile(rb"\n[^\n]{%d}" % (threshold + 1))  # starts with a literal
        self.run = 0  # bytes since the last line break
        self.found = False

    def feed(self, chunk: bytes) -> None:
        first = chunk.find(b"\n")
        head = len(chunk) if first < 0 else first
        if self.run + head > self.threshold or self.longer.search(chunk):
            self.found = True
        self.run = self.run + len(chunk) if first < 0 else len(chunk) - chunk.rfind(b"\n") - 1


SEPARATORS = {";": "分号", "\t": "制表符", "|": "竖线"}  # what a roster is wrongly split by


def _delimiter(path: Path, head: bytes) -> str:
    """Tab for a .tsv, or for a file whose header has tabs and no comma; else comma."""
    first = head.split(b"\n", 1)[0]
    if path.suffix.lower() == ".tsv" or (b"\t" in first and b"," not in first):
        return "\t"
    return ","


def _line_of(before: int, exc: UnicodeDecodeError) -> int:
    """The line (1-based) where ``exc`` happened, ``before`` lines having been read."""
    return before + bytes(exc.object[: exc.start]).count(b"\n") + 1


def _survey(path: Path, limits: InputLimits) -> _Survey:
    """Decode the whole file in chunks (UTF-8, with or without BOM, else GB18030: a wrong guess
    would only show up halfway through a 750,000-row file) and measure its lines, all at C
    speed and in constant memory.

    A file that is UTF-8 with Chinese text up to some line and not UTF-8 from there (a row
    pasted from a GBK file) is refused naming that line: read as GB18030 it would import
    garbled names without a word."""
    with path.open("rb") as fh:
        head = fh.read(CHUNK)
        bom = head[:3] == b"\xef\xbb\xbf"
        delimiter = _delimiter(path, head)
        bad_line = 0  # where UTF-8 decoding failed, if it did
        for encoding in ("utf-8-sig",) if bom else ("utf-8", "gb18030"):
            fh.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)()
            # utf-8 and gb18030 take at most 4 bytes a character
            cells, records = _Lines(limits.max_cell_chars), _Lines(4 * limits.max_record_chars)
            lines, last = 0, b""
            quotes = nul = False
            try:
                while chunk := fh.read(CHUNK):
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        if encoding != "gb18030":
                            bad_line = _line_of(lines, exc)
                            _refuse_mixed(path, fh, bad_line)
                        raise
                    lines += chunk.count(b"\n")
                    cells.feed(chunk)
                    records.feed(chunk)
                    quotes = quotes or b'"' in chunk
                    nul = nul or b"\x00" in chunk
                    last = chunk[-1:]
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                continue
            lines += last not in (b"", b"\n")
            return _Survey(encoding, lines, cells.found, records.found, quotes, nul, delimiter)
    where = f"{path.name} 第 {bad_line} 行" if bad_line else path.name
    raise RosterError(
        [
            Problem(
                where,
                "无法识别文件编码（支持 UTF-8 和 GB18030/GBK）；请检查这一行有没有乱码，"
                "再在 Excel 中另存为「CSV UTF-8」",
            )
        ]
    )


def _refuse_mixed(path: Path, fh: Any, bad_line: int) -> None:
    """Refuse a file whose lines before ``bad_line`` include Chinese text in UTF-8."""
    fh.seek(0)
    for number, line in enumerate(fh, start=1):
        if number >= bad_line:
            return
        if not line.isascii():  # decoded as UTF-8 already: a whole line of it is no accident
            raise RosterError(
                [
                    Problem(
                        f"{path.name} 第 {bad_line} 行",
                        f"这一行不是 UTF-8 编码，而前面的行（如第 {number} 行）是；"
                        "这一行可能是从另一个文件（GBK 编码）复制来的。请在 Excel 中"
                        "重新输入这一行，或把整个文件另存为「CSV UTF-8」后重新导入",
                    )
                ]
            )


def _raw_rows(path: Path, limits: InputLimits) -> Iterator[Sequence[Any]]:
    """The file's rows, streamed and bounded by ``limits``: a national roster should not be held
    twice in memory, and a hostile file is refused before it is parsed into memory at all."""
    if not path.is_file():
        raise RosterError([Problem(str(path), "文件不存在")])
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".xlsm", ".csv", ".tsv", ".txt", ""):
        raise RosterError(
            [Problem(path.name, "只支持 .csv 和 .xlsx 文件（也可以是制表符分隔的 .tsv）")]
        )
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise RosterError(
            [
                too_big(
                    path.name,
                    "文件大小",
                    megabytes(size),
                    f"{limits.max_file_mb} MB",
                    "max_file_mb",
                )
            ]
        )
    watcher = _WATCHER.get()
    if suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(path, limits)
        return rows if watcher is None else _watched(path.name, rows, None, watcher)
    survey = _survey(path, limits)
    rows = _csv_rows(path, survey, limits)
    return rows if watcher is None else _watched(path.name, rows, survey.lines, watcher)


def _xlsx_rows(path: Path, limits: InputLimits) -> Iterator[Sequence[Any]]:
    check_xlsx(path, limits)
    from openpyxl import load_workbook  # only when needed: it is slow to import

    try:
        book = load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise RosterError([Problem(path.name, f"无法作为 Excel 文件打开：{exc}")]) from exc
    # explicit bounds: the sheet's own <dimension> could claim 16,384 columns for every row
    rows = sheet.iter_rows(
        min_row=1,
        max_row=limits.max_rows + 1,
        min_col=1,
        max_col=limits.max_columns + 1,
        values_only=True,
    )
    return _checked_cells(path, _close_after(path, book, rows), limits)


def _close_after(path: Path, book: Any, rows: Iterator[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    try:
        yield from rows
    except Exception as exc:  # a part that inflates wrong, XML that does not parse …
        raise RosterError([Problem(path.name, f"无法读取 Excel 文件：{str(exc)[:200]}")]) from exc
    finally:
        book.close()


def _checked_cells(
    path: Path, rows: Iterator[Sequence[Any]], limits: InputLimits
) -> Iterator[Sequence[Any]]:
    """Rows of any cell type, refused past the row, column and cell-length limits."""
    for number, cells in enumerate(rows, start=1):
        if number > limits.max_rows:
            raise _too_many_rows(path, limits)
        if not any(cells):
            yield cells
            continue
        if len(cells) > limits.max_columns:
            if any(c is not None and c != "" for c in cells[limits.max_columns :]):
                raise _too_many_columns(path, number, len(cells), limits)
            cells = cells[: limits.max_columns]
        for column, cell in enumerate(cells, start=1):
            if isinstance(cell, str) and (len(cell) > limits.max_cell_chars or "\x00" in cell):
                raise _bad_cell(path, number, column, cell, limits)
        yield cells


class _Record:
    """Characters read since the last complete CSV record (a quoted field may span lines)."""

    chars = 0


def _record_lines(fh: Any, record: _Record, path: Path, limits: InputLimits) -> Iterator[str]:
    limit = limits.max_record_chars
    for line in iter(lambda: fh.readline(limit + 1), ""):
        record.chars += len(line)
        if record.chars > limit:
            raise _line_too_long(path, limits)
        yield line


def _line_too_long(path: Path, limits: InputLimits) -> RosterError:
    limit = f"{limits.max_record_chars:,} 个字符（max_columns × max_cell_chars）"
    return RosterError(
        [too_big(path.name, "一行的长度", None, limit, "max_cell_chars 或 max_columns")]
    )


def _csv_rows(path: Path, survey: _Survey, limits: InputLimits) -> Iterator[Sequence[Any]]:
    # refused before parsing: whatever can be told from the survey
    if survey.too_long:
        raise _line_too_long(path, limits)
    if survey.lines > limits.max_rows and not survey.quotes:
        raise _too_many_rows(path, limits)
    # csv refuses a field over its limit (131,072 by default) with an error of its own
    if csv.field_size_limit() <= limits.max_cell_chars:
        csv.field_size_limit(limits.max_cell_chars + 1)
    return _csv_records(path, survey, limits)


def _csv_records(path: Path, survey: _Survey, limits: InputLimits) -> Iterator[Sequence[Any]]:
    record = _Record()
    max_rows, max_columns, max_cell = limits.max_rows, limits.max_columns, limits.max_cell_chars
    # the checks a row costs are skipped where the survey proves them needless: the national
    # roster has no quotes, no NUL and no line near max_cell_chars
    long_cells = survey.long_cells
    with path.open(encoding=survey.encoding, newline="") as fh:
        lines = _record_lines(fh, record, path, limits) if survey.quotes else fh
        reader = csv.reader(lines, delimiter=survey.delimiter)
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _csv_error(path, number + 1, exc, limits) from exc
            number += 1
            record.chars = 0
            if number > max_rows:
                raise _too_many_rows(path, limits)
            if len(cells) > max_columns:
                if any(cells[max_columns:]):
                    raise _too_many_columns(path, number, len(cells), limits)
                cells = cells[:max_columns]
            if long_cells and cells and max(map(len, cells)) > max_cell:
                column, cell = max(enumerate(cells, start=1), key=lambda c: len(c[1]))
                raise _bad_cell(path, number, column, cell, limits)
            if survey.nul and "\x00" in "".join(cells):
                column = next(i for i, c in enumerate(cells, start=1) if "\x00" in c)
                raise _bad_cell(path, number, column, cells[column - 1], limits)
            yield cells


def _too_many_rows(path: Path, limits: InputLimits) -> RosterError:
    return RosterError([too_big(path.name, "行数", None, f"{limits.max_rows:,} 行", "max_rows")])


def _too_many_columns(path: Path, row: int, found: int, limits: InputLimits) -> RosterError:
    return RosterError(
        [
            too_big(
                f"{path.name} 第 {row} 行",
                "列数",
                f"{found:,}",
                f"{limits.max_columns:,} 列",
                "max_columns",
            )
        ]
    )


def _bad_cell(path: Path, row: int, column: int, cell: str, limits: InputLimits) -> RosterError:
    where = f"{path.name} 第 {row} 行第 {column} 列"
    if len(cell) <= limits.max_cell_chars:
        return RosterError([Problem(where, "含有空字符（NUL），请删除后重新导入")])
    return RosterError(
        [
            too_big(
                where,
                "单元格长度",
                f"{len(cell):,} 个字符",
                f"{limits.max_cell_chars:,} 个字符",
                "max_cell_chars",
            )
        ]
    )


def _csv_error(path: Path, row: int, exc: csv.Error, limits: InputLimits) -> RosterError:
    where = f"{path.name} 第 {row} 行"
    if "field larger than field limit" in str(exc):
        return RosterError(
            [
                too_big(
                    where,
                    "单元格长度",
                    None,
                    f"{limits.max_cell_chars:,} 个字符",
                    "max_cell_chars",
                )
            ]
        )
    return RosterError([Problem(where, "无法按 CSV 格式读取这一行，请在 Excel 中另存为 CSV UTF-8")])


def read_sheet(
    path: str | Path, columns: Sequence[Column], limits: InputLimits | None = None
) -> Sheet:
    """Read ``path`` and map its headers onto ``columns``; unknown extra columns are ignored.
    ``limits`` bound the file (see ``matrix.limits``); past one, ``RosterError`` names it."""
    path = Path(path)
    raw = iter(_raw_rows(path, limits or InputLimits()))
    first = next(raw, None)
    if first is None:
        raise RosterError([Problem(path.name, "文件是空的，第 1 行应为表头")])
    header_cells = [_cell_text(c).strip() for c in first]
    by_text = {_fold_header(h): i for i, h in enumerate(header_cells) if h}
    index: dict[str, int] = {}
    headers: dict[str, str] = {}
    missing = []
    for col in columns:
        found = next(
            (by_text[_fold_header(h)] for h in col.headers if _fold_header(h) in by_text), None
        )
        if found is None:
            if col.required:
                missing.append(f"{col.label}（{col.headers[0]}）")
            continue
        index[col.field] = found
        headers[col.field] = header_cells[found]
    if missing:
        expected = (
            "，".join(c.headers[0] for c in columns) + " 或 " + "，".join(c.label for c in columns)
        )
        raise RosterError(
            [
                Problem(
                    f"{path.name} 第 1 行",
                    _separator_hint(header_cells)
                    + f"缺少列 {'、'.join(missing)}；表头应为 {expected}",
                )
            ]
        )
    return Sheet(path, headers, index, raw)


def _separator_hint(header: list[str]) -> str:
    """When a header was read as one column holding the separators of another format."""
    filled = [h for h in header if h]
    if len(filled) != 1:
        return ""
    found = [(filled[0].count(sep), word) for sep, word in SEPARATORS.items()]
    count, word = max(found)
    if not count:
        return ""
    return (
        f"表头只读出 1 列，看起来是用{word}分隔的；请改用逗号分隔"
        "（在 Excel 中另存为「CSV UTF-8（逗号分隔）」），或存为 .xlsx。"
    )


def write_sheet(
    path: str | Path, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Write rows as CSV (UTF-8 with BOM, so Excel opens it) or XLSX, with Chinese headers."""
    path = Path(path)
    header = [c.label for c in columns]
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell

        from matrix.cells import put

        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(header)
        for row in rows:
            sheet.append([put(WriteOnlyCell(sheet), row.get(c.field) or "") for c in columns])
        book.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(c.field) or "" for c in columns])
