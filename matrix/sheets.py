"""Reading the tables people hand us: CSV (UTF-8 with or without BOM, or GB18030 as Excel
saves it in China) and XLSX, with English or Chinese headers.

Rows keep their number as a spreadsheet shows it (the header is row 1), so every error can say
"units.csv 第 7 行 「上级代码」".
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix.errors import Problem, RosterError
from matrix.limits import MB, InputLimits, megabytes, too_big
from matrix.xlsx_guard import check_xlsx

CHUNK = 4 * MB


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
    """A table opened from one file. ``records()`` streams (row number, {field: text}) once:
    a national roster has 750,000 rows and is validated as it is read, never held whole."""

    path: Path
    headers: dict[str, str]  # field -> header text as written in the file
    index: dict[str, int]  # field -> column position
    raw: Iterator[Sequence[Any]]

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        width = max(self.index.values()) + 1
        for number, cells in enumerate(self.raw, start=2):
            if len(cells) < width:
                cells = [*cells, *[""] * (width - len(cells))]
            record = {f: _cell_text(cells[i]) for f, i in self.index.items()}
            if any(v.strip() for v in record.values()):
                yield number, record

    def where(self, row: int, field: str | None = None) -> str:
        place = f"{self.path.name} 第 {row} 行"
        if field is not None:
            place += f" 「{self.headers.get(field, field)}」列"
        return place


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


def _encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) or GB18030, decided by decoding the whole file in chunks:
    a wrong guess would only show up halfway through a 750,000-row file."""
    with path.open("rb") as fh:
        head = fh.read(3)
        if head == b"\xef\xbb\xbf":
            return "utf-8-sig"
        for encoding in ("utf-8", "gb18030"):
            fh.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)()
            try:
                while chunk := fh.read(CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                continue
            return encoding
    raise RosterError(
        [
            Problem(
                path.name,
                "无法识别文件编码（支持 UTF-8 和 GB18030/GBK）；请在 Excel 中另存为 CSV UTF-8",
            )
        ]
    )


def _raw_rows(path: Path, limits: InputLimits) -> Iterator[Sequence[Any]]:
    """The file's rows, streamed and bounded by ``limits``: a national roster should not be held
    twice in memory, and a hostile file is refused before it is parsed into memory at all."""
    if not path.is_file():
        raise RosterError([Problem(str(path), "文件不存在")])
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".xlsm", ".csv", ".txt", ""):
        raise RosterError([Problem(path.name, "只支持 .csv 和 .xlsx 文件")])
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
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(path, limits)
    return _csv_rows(path, _encoding(path), limits)


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


def _csv_lines(fh: Any, record: _Record, path: Path, limits: InputLimits) -> Iterator[str]:
    limit = limits.max_record_chars
    for line in fh:
        record.chars += len(line)
        if record.chars > limit:
            raise RosterError(
                [
                    too_big(
                        path.name,
                        "一行的长度",
                        f"超过 {limit:,} 个字符",
                        f"{limit:,} 个字符（max_columns × max_cell_chars）",
                        "max_cell_chars 或 max_columns",
                    )
                ]
            )
        yield line


def _csv_rows(path: Path, encoding: str, limits: InputLimits) -> Iterator[Sequence[Any]]:
    record = _Record()
    # csv refuses a field over its limit (131,072 by default) with an error of its own
    if csv.field_size_limit() <= limits.max_cell_chars:
        csv.field_size_limit(limits.max_cell_chars + 1)
    max_rows, max_columns, max_cell = limits.max_rows, limits.max_columns, limits.max_cell_chars
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(_csv_lines(fh, record, path, limits))
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
            if cells and max(map(len, cells)) > max_cell:
                column, cell = max(enumerate(cells, start=1), key=lambda c: len(c[1]))
                raise _bad_cell(path, number, column, cell, limits)
            if "\x00" in "".join(cells):
                column = next(i for i, c in enumerate(cells, start=1) if "\x00" in c)
                raise _bad_cell(path, number, column, cells[column - 1], limits)
            yield cells


def _too_many_rows(path: Path, limits: InputLimits) -> RosterError:
    return RosterError(
        [
            too_big(
                path.name, "行数", f"超过 {limits.max_rows:,}", f"{limits.max_rows:,}", "max_rows"
            )
        ]
    )


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
                    f"超过 {csv.field_size_limit() - 1:,} 个字符",
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
            [Problem(f"{path.name} 第 1 行", f"缺少列 {'、'.join(missing)}；表头应为 {expected}")]
        )
    return Sheet(path, headers, index, raw)


def write_sheet(
    path: str | Path, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Write rows as CSV (UTF-8 with BOM, so Excel opens it) or XLSX, with Chinese headers."""
    path = Path(path)
    header = [c.label for c in columns]
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(header)
        for row in rows:
            sheet.append([row.get(c.field) or "" for c in columns])
        book.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(c.field) or "" for c in columns])
