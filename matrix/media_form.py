"""Reading the media form back as the summary wrote it: the official 附表 XLSX has title rows
above a two-row header (单位名称 · 网站网址 · 网页链接 · 自媒体名称 over 公众号 / 视频号 / 抖音 /
快手 · 备注) and notes below the units. Its header is found where it is, not assumed in row 1,
and reading stops at the notes, so that ``summary --table media -o m.xlsx`` filled in and
``media import m.xlsx`` is a round trip."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix.errors import Problem, RosterError
from matrix.sheets import Column, Sheet

HEADER_SEARCH = 12  # title rows a form may have above its header
_NOTES = re.compile(r"^(备注|注[:：]|填表说明|说明[:：])")


def _fold(text: str) -> str:
    return re.sub(r"[\s_]+", "", unicodedata.normalize("NFKC", text)).lower()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass
class FormSheet(Sheet):
    """A sheet whose data starts below row ``first`` - 1 and ends at the form's notes."""

    first: int = 2

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        width = max(self.index.values()) + 1
        for number, cells in enumerate(self.raw, start=self.first):
            cells = [*cells, *[None] * (width - len(cells))]
            if _NOTES.match(_text(cells[0])):
                return
            record = {f: _text(cells[i]) for f, i in self.index.items()}
            if any(record.values()):
                yield number, record


def _match(columns: Sequence[Column], text: str) -> Column | None:
    folded = _fold(text)
    return next((c for c in columns if any(_fold(h) == folded for h in c.headers)), None)


def read_form(path: Path, columns: Sequence[Column], anchors: set[str]) -> FormSheet | None:
    """The XLSX form at ``path`` with its header found among the first rows: the first row with
    a column in ``anchors`` (the unit's code or name), merged with the row below when that one
    holds sub-headers. None when no such row is found."""
    from openpyxl import load_workbook  # only when needed: it is slow to import

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise RosterError([Problem(path.name, f"无法作为 Excel 文件打开：{exc}")]) from exc
    rows = book.worksheets[0].iter_rows(values_only=True)
    try:
        for number in range(1, HEADER_SEARCH + 1):
            top = [_text(c) for c in next(rows, None) or ()]
            found = {i: _match(columns, t) for i, t in enumerate(top) if t}
            if not any(c is not None and c.field in anchors for c in found.values()):
                continue
            below = list(next(rows, None) or ())
            subs = {i: _match(columns, _text(c)) for i, c in enumerate(below) if _text(c)}
            texts = dict(enumerate(top))
            first = number + 1
            if any(subs.values()):  # a two-row header: the sub-headers name their columns
                found.update({i: c for i, c in subs.items() if c is not None})
                texts.update({i: _text(below[i]) for i, c in subs.items() if c is not None})
                first, below = number + 2, []
            index = {c.field: i for i, c in sorted(found.items(), reverse=True) if c}
            headers = {f: texts[i] for f, i in index.items()}
            raw = _then(below, rows, book)
            return FormSheet(path, headers, index, raw, first)
    except BaseException:
        book.close()
        raise
    book.close()
    return None


def _then(first: list[Any], rest: Iterator[Sequence[Any]], book: Any) -> Iterator[Sequence[Any]]:
    try:
        if first:
            yield first
        yield from rest
    finally:
        book.close()
