"""A form's table (``#汇总 F3``) as people receive it: the short chat text, and the file in xlsx,
csv, md or html, one row per unit. Words come from ``templates/returns/`` and the ``[returns]``
labels of ``templates/summary/labels.toml``.

A national form has some 200,000 rows: the XLSX is written in openpyxl's write-only mode (rows
streamed, not a cell object per value), with the title, the header and the print settings of
the other forms; only formula-like or unprintable text becomes a cell of its own
(``matrix.cells.put``), so no spreadsheet formula gets in."""

from __future__ import annotations

import io
import re
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from bot.render.templates import label, render
from matrix.cells import formula_like, put
from matrix.returns.table import FormTable

FORMATS = ("xlsx", "csv", "md", "html")
THIN = Side(style="thin", color="000000")
_UNSAFE_IN_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")  # what XLSX cannot hold


def chat_text(t: FormTable, *, attached: bool) -> str:
    """The few lines that go in the chat (the counts, the first units still missing)."""
    return render("returns/table.txt.j2", t=t, attached=attached, shown=10).strip()


def file_name(t: FormTable, fmt: str) -> str:
    """e.g. 填报汇总表_F3_示范省_20261124.xlsx"""
    unit = _UNSAFE_IN_NAMES.sub("_", t.scope.name)[:40].strip(". ") or t.scope.code
    return f"{label('files.returns')}_{t.form.code}_{unit}_{t.as_of:%Y%m%d}.{fmt}"


def render_file(t: FormTable, fmt: str) -> bytes:
    """The file's bytes in ``fmt``."""
    if fmt == "xlsx":
        return form_xlsx(t)
    body = render(f"returns/table.{fmt}.j2", t=t)
    if fmt == "csv":  # a BOM and CRLF rows, so that Excel on Windows opens the Chinese text
        return ("\ufeff" + "\r\n".join(body.splitlines()) + "\r\n").encode("utf-8")
    return (body.rstrip("\n") + "\n").encode("utf-8")


def _font(size: float, *, bold: bool = False, title: bool = False) -> Font:
    name = label("form.title_font") if title else label("form.body_font")
    return Font(name=name, size=size, bold=bold)


def form_xlsx(t: FormTable) -> bytes:
    """Title, meta line, one header row, a row per unit, the notes; A4 landscape, fit to width,
    the header repeated on every printed page and frozen on screen."""
    book = Workbook(write_only=True)
    ws = book.create_sheet(label("returns.sheet"))
    fields = t.form.fields
    heads = [*label("returns.heads_before"), *fields, *label("returns.heads_after")]
    widths = [7, 18, 26, 8, *(max(10, min(30, 2 * len(f) + 4)) for f in fields), 10, 17, 9]
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    _page(ws)
    ws.freeze_panes = "A4"
    ws.print_title_rows = "3:3"

    def styled(value: Any, font: Font, **more: Any) -> WriteOnlyCell:
        cell = put(WriteOnlyCell(ws), value)
        cell.font = font
        for key, style in more.items():
            setattr(cell, key, style)
        return cell

    when = label("notice.when", t=t.form.deadline)
    title = label("returns.title", title=t.form.title)
    ws.append([styled(title, _font(16, bold=True, title=True))])
    meta = label(
        "returns.meta", code=t.form.code, when=when, answered=t.answered, total=len(t.rows)
    )
    scope = label("form.unit", name=t.scope.name)
    ws.append([styled(scope, _font(11)), "", "", styled(meta, _font(11))])
    head_font, fill = _font(11, bold=True), PatternFill("solid", fgColor="E8ECF2")
    border = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
    middle = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.append([styled(h, head_font, fill=fill, border=border, alignment=middle) for h in heads])
    for n, row in enumerate(t.rows, start=1):
        at = f"{row.at:%Y-%m-%d %H:%M}" if row.at is not None else ""
        values = [n, row.parent, row.unit, row.level, *row.answers, row.person, at]
        ws.append([_safe(ws, v) for v in values] + [row.revision or ""])
    for note in label("returns.notes"):
        ws.append([styled(note, _font(10))])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _safe(ws: Any, value: Any) -> Any:
    """A value as a plain (fast) cell when it is safe as it is; else through ``put``."""
    if isinstance(value, str) and (formula_like(value) or _ILLEGAL.search(value)):
        return put(WriteOnlyCell(ws), value)
    return value


def _page(ws: Any) -> None:
    """The print settings of the other forms: A4 landscape, one page wide, gridlines off."""
    ws.page_setup.paperSize = (
        "9"  # A4 (Worksheet.PAPERSIZE_A4; the write-only sheet lacks the name)
    )
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.oddFooter.center.text = label("form.footer")
