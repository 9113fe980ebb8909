"""Reading the tables people hand us: CSV (UTF-8 with or without BOM, or GB18030 as Excel
saves it in China) and XLSX, with English or Chinese headers.

Rows keep their number as a spreadsheet shows it (the header is row 1), so every error can say
"units.csv 第 7 行 「上级代码」".
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix.errors import Problem, RosterError


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


def _decode(data: bytes, path: Path) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise RosterError(
            [
                Problem(
                    path.name,
                    "无法识别文件编码（支持 UTF-8 和 GB18030/GBK）；请在 Excel 中另存为 CSV UTF-8",
                )
            ]
        ) from exc


def _raw_rows(path: Path) -> Iterator[Sequence[Any]]:
    """The file's rows, streamed: a national roster should not be held twice in memory."""
    if not path.is_file():
        raise RosterError([Problem(str(path), "文件不存在")])
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook  # only when needed: it is slow to import

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise RosterError([Problem(path.name, f"无法作为 Excel 文件打开：{exc}")]) from exc
        return _close_after(book, book.worksheets[0].iter_rows(values_only=True))
    if suffix in (".csv", ".txt", ""):
        text = _decode(path.read_bytes(), path)
        return csv.reader(io.StringIO(text, newline=""))
    raise RosterError([Problem(path.name, "只支持 .csv 和 .xlsx 文件")])


def _close_after(book: Any, rows: Iterator[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    try:
        yield from rows
    finally:
        book.close()


def read_sheet(path: str | Path, columns: Sequence[Column]) -> Sheet:
    """Read ``path`` and map its headers onto ``columns``; unknown extra columns are ignored."""
    path = Path(path)
    raw = iter(_raw_rows(path))
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
