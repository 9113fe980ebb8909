"""A small streaming XLSX writer for tables too large for openpyxl's per-cell cost: one sheet,
the handful of styles the official-looking forms use (title, meta line, header, bordered body,
number, notes), text as inline strings, rows written as XML text.

openpyxl spends some 10 µs on every cell even in write-only mode: a national form (200,000 units,
10 columns) took 15-25 s; this writes it in about 3 s. Every text goes through the same rules as
``matrix.cells.put``: characters a workbook cannot hold are dropped, and text that looks like a
formula is stored as text with the quote prefix (``formula_like``), so neither Excel nor
LibreOffice reads it as one, now or when someone edits the cell.

>>> sheet = StreamSheet("sheet", [8, 20])
>>> sheet.row([("=1+1", BODY), (3, NUMBER)])
>>> import zipfile, io
>>> book = zipfile.ZipFile(io.BytesIO(sheet.save()))
>>> 'quotePrefix="1"' in book.read("xl/styles.xml").decode()
True
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from openpyxl.utils import get_column_letter

from matrix.cells import formula_like

# the cellXfs of styles.xml, by index
PLAIN, TITLE, META, HEAD, BODY, QUOTED, NUMBER, NOTE = range(8)
# openpyxl's ILLEGAL_CHARACTERS_RE, and what else XML 1.0 forbids (lone surrogates, U+FFFE, U+FFFF)
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _styles(body_font: str, title_font: str) -> str:
    fonts = (
        f'<font><sz val="10.5"/><name val={quoteattr(body_font)}/></font>'
        f'<font><b/><sz val="16"/><name val={quoteattr(title_font)}/></font>'
        f'<font><sz val="11"/><name val={quoteattr(body_font)}/></font>'
        f'<font><b/><sz val="11"/><name val={quoteattr(body_font)}/></font>'
        f'<font><sz val="10"/><name val={quoteattr(body_font)}/></font>'
    )
    thin = '<left style="thin"/><right style="thin"/><top style="thin"/><bottom style="thin"/>'
    left = '<alignment horizontal="left" vertical="center" wrapText="1" indent="1"/>'
    xfs = (
        '<xf fontId="0" fillId="0" borderId="0"/>'
        '<xf fontId="1" fillId="0" borderId="0" applyFont="1" applyAlignment="1">'
        '<alignment horizontal="center" vertical="center"/></xf>'
        '<xf fontId="2" fillId="0" borderId="0" applyFont="1"/>'
        '<xf fontId="3" fillId="2" borderId="1" applyFont="1" applyFill="1" applyBorder="1"'
        ' applyAlignment="1"><alignment horizontal="center" vertical="center" wrapText="1"/></xf>'
        f'<xf fontId="0" fillId="0" borderId="1" applyBorder="1" applyAlignment="1">{left}</xf>'
        '<xf fontId="0" fillId="0" borderId="1" applyBorder="1" applyAlignment="1"'
        f' quotePrefix="1">{left}</xf>'
        '<xf fontId="0" fillId="0" borderId="1" applyBorder="1" applyAlignment="1">'
        '<alignment horizontal="right" vertical="center" indent="1"/></xf>'
        '<xf fontId="4" fillId="0" borderId="0" applyFont="1" applyAlignment="1">'
        '<alignment vertical="top" wrapText="1"/></xf>'
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet {_NS}>'
        f'<fonts count="5">{fonts}</fonts>'
        '<fills count="3"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="FFE8ECF2"/></patternFill></fill>'
        "</fills>"
        f'<borders count="2"><border/><border>{thin}<diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="8">{xfs}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )


class StreamSheet:
    """One worksheet written row by row: ``row`` takes (value, style) pairs, ``merge`` a range,
    ``save`` the whole workbook's bytes."""

    def __init__(
        self,
        name: str,
        widths: Sequence[float],
        *,
        fonts: tuple[str, str] = ("Calibri", "Calibri"),  # body, title
        footer: str = "",
        frozen: int = 0,
        title_rows: tuple[int, int] | None = None,
    ) -> None:
        self.name = _ILLEGAL.sub("", name)[:31]
        self.widths = list(widths)
        self.fonts = fonts
        self.footer = footer
        self.frozen = frozen  # rows kept in view above the scrolling ones
        self.title_rows = title_rows  # printed on every page
        self._rows: list[str] = []
        self._merges: list[str] = []
        self._cells: dict[str, str] = {}  # text → its cell: unit names, levels, numbers repeat

    def row(self, cells: Sequence[tuple[Any, int]], height: float | None = None) -> None:
        """The next row: each cell's value (text, number, or None for nothing) and style."""
        n = len(self._rows) + 1
        ht = f' ht="{height}" customHeight="1"' if height else ""
        self._rows.append(f'<row r="{n}"{ht}>{"".join(_cell(v, s) for v, s in cells)}</row>')

    @property
    def rows(self) -> int:
        """How many rows are written."""
        return len(self._rows)

    def text_row(self, first: int, texts: Sequence[str], last: int | None) -> None:
        """The next row of a long table, quickly: a number, body texts, a number or blank (a
        national table calls this 200,000 times)."""
        n = len(self._rows) + 1
        memo = self._cells
        if len(memo) > _MEMO:
            memo.clear()
        cells = "".join([memo.get(t) or memo.setdefault(t, _text(t)) for t in texts])
        end = f'<c s="{NUMBER}"><v>{last}</v></c>' if last else f'<c s="{NUMBER}"/>'
        self._rows.append(f'<row r="{n}"><c s="{NUMBER}"><v>{first}</v></c>{cells}{end}</row>')

    def merge(self, row: int, first: int, last: int) -> None:
        """Merge columns ``first``..``last`` (from 1) of ``row``."""
        self._merges.append(f"{get_column_letter(first)}{row}:{get_column_letter(last)}{row}")

    def save(self) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
            book.writestr("[Content_Types].xml", _CONTENT_TYPES)
            book.writestr("_rels/.rels", _ROOT_RELS)
            book.writestr("xl/workbook.xml", self._workbook())
            book.writestr("xl/_rels/workbook.xml.rels", _BOOK_RELS)
            book.writestr("xl/styles.xml", _styles(*self.fonts))
            book.writestr("xl/worksheets/sheet1.xml", self._sheet())
        return out.getvalue()

    def _workbook(self) -> str:
        names = ""
        if self.title_rows:
            a, b = self.title_rows
            ref = escape(f"'{self.name}'!${a}:${b}")
            names = (
                '<definedNames><definedName name="_xlnm.Print_Titles" localSheetId="0">'
                f"{ref}</definedName></definedNames>"
            )
        return (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook {_NS}'
            f' xmlns:r="{_REL}"><sheets><sheet name={quoteattr(self.name)} sheetId="1"'
            f' r:id="rId1"/></sheets>{names}</workbook>'
        )

    def _sheet(self) -> str:
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
            for i, w in enumerate(self.widths, start=1)
        )
        pane = ""
        if self.frozen:
            pane = (
                f'<pane ySplit="{self.frozen}" topLeftCell="A{self.frozen + 1}"'
                ' activePane="bottomLeft" state="frozen"/>'
            )
        merges = "".join(f'<mergeCell ref="{m}"/>' for m in self._merges)
        return "".join(
            [
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet {_NS}>',
                '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>',
                f'<sheetViews><sheetView showGridLines="0" workbookViewId="0">{pane}'
                "</sheetView></sheetViews>",
                f"<cols>{cols}</cols><sheetData>",
                *self._rows,
                "</sheetData>",
                f'<mergeCells count="{len(self._merges)}">{merges}</mergeCells>' if merges else "",
                '<printOptions horizontalCentered="1"/>',
                '<pageMargins left="0.5" right="0.5" top="0.6" bottom="0.7" header="0.3"'
                ' footer="0.3"/>',
                '<pageSetup paperSize="9" orientation="landscape" fitToWidth="1" fitToHeight="0"/>',
                f"<headerFooter><oddFooter>&amp;C{escape(self.footer)}</oddFooter></headerFooter>"
                if self.footer
                else "",
                "</worksheet>",
            ]
        )


_SPECIAL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff&<>]"
)  # to drop or escape


def _cell(value: Any, style: int) -> str:
    if value is None or value == "":
        return f'<c s="{style}"/>'
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = str(value)
        if _SPECIAL.search(text):  # most cells hold neither: skip the work
            text = escape(_ILLEGAL.sub("", text))
        if style == BODY and formula_like(text):
            style = QUOTED
        return f'<c s="{style}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
    return f'<c s="{style}"><v>{value}</v></c>'


_MEMO = 200_000  # cells remembered, at most
_EMPTY = f'<c s="{BODY}"/>'
_TEXT = f'<c s="{BODY}" t="inlineStr"><is><t xml:space="preserve">'
_QUOTED_TEXT = f'<c s="{QUOTED}" t="inlineStr"><is><t xml:space="preserve">'


def _text(text: str) -> str:
    """A body cell holding ``text`` (``_cell`` for the common case, without its branches)."""
    if not text:
        return _EMPTY
    if _SPECIAL.search(text):
        text = escape(_ILLEGAL.sub("", text))
    return f"{_QUOTED_TEXT if formula_like(text) else _TEXT}{text}</t></is></c>"


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_BOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/>'
    "</Relationships>"
)
