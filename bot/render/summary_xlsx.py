"""Summaries as XLSX files laid out like the official forms: the annex mark, a centred title,
填报单位 and date, merged two-row headers, column widths that fit Chinese text, a frozen header,
and A4 print settings (fit to page width, header rows repeated on every printed page).

The one place summaries are rendered without a template: openpyxl builds the sheet cell by cell.
Its words (titles, headers, notes, the texts in cells) come from ``templates/summary/labels.toml``,
which the HTML / Markdown / text templates read too; the layout (widths, merges, colours) is here.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.render.templates import (
    audit_advice,
    audit_people,
    finding_label,
    label,
    render,
    severity_label,
)
from matrix.cells import put
from matrix.media import MEDIA_KINDS, MediaTable
from matrix.summary import AuditTable, BuildStatus
from matrix.summary.notice import NoticeLine, NoticeTable

THIN = Side(style="thin", color="000000")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEAD_FILL = PatternFill("solid", fgColor="E8ECF2")
RED = "B00020"
GREY = "666666"


@dataclass(frozen=True)
class Head:
    """A header cell: its text and how many columns / rows it spans."""

    text: str
    cols: int = 1
    rows: int = 1


def _font(size: float = 11, bold: bool = False, color: str | None = None, title: bool = False):
    name = label("form.title_font") if title else label("form.body_font")
    return Font(name=name, size=size, bold=bold, color=color)


def _heads(rows: Sequence[Any]) -> list[list[Head]]:
    """Header rows from labels.toml: a text, or {text, rows, cols} for a merged cell."""
    return [[Head(h) if isinstance(h, str) else Head(**h) for h in row] for row in rows]


def _level(name: str) -> str:
    return str(label("form.level", label=name))


class FormSheet:
    """Writes one official-looking form onto a worksheet, top to bottom."""

    def __init__(self, ws: Worksheet, widths: Sequence[float], *, landscape: bool = False) -> None:
        self.ws = ws
        self.cols = len(widths)
        self.row = 1
        for i, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "landscape" if landscape else "portrait"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0  # as many pages down as needed
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.horizontalCentered = True
        ws.page_margins.left = ws.page_margins.right = 0.5
        ws.page_margins.top, ws.page_margins.bottom = 0.6, 0.7
        ws.oddFooter.center.text = label("form.footer")
        ws.sheet_view.showGridLines = False

    def _put(self, row: int, col: int, value: Any) -> Any:
        """Every cell this writes gets its value here: formula-like text stays text."""
        return put(self.ws.cell(row, col), value)

    def _merge(self, row: int, col: int, rows: int = 1, cols: int = 1) -> None:
        if rows > 1 or cols > 1:
            self.ws.merge_cells(
                start_row=row, start_column=col, end_row=row + rows - 1, end_column=col + cols - 1
            )

    def annex(self, text: str) -> None:
        cell = self._put(self.row, 1, text)
        cell.font = _font(12, title=True)
        self.row += 1

    def title(self, text: str) -> None:
        cell = self._put(self.row, 1, text)
        cell.font = _font(18, bold=True, title=True)
        cell.alignment = Alignment(horizontal="center", vertical="center")
        self._merge(self.row, 1, cols=self.cols)
        self.ws.row_dimensions[self.row].height = 34
        self.row += 1

    def meta(self, left: str, right: str) -> None:
        """填报单位 on the left, the date on the right, on one line."""
        split = max(1, self.cols // 2)
        a = self._put(self.row, 1, left)
        b = self._put(self.row, split + 1, right)
        a.font = b.font = _font(11)
        a.alignment = Alignment(horizontal="left", vertical="center")
        b.alignment = Alignment(horizontal="right", vertical="center")
        self._merge(self.row, 1, cols=split)
        self._merge(self.row, split + 1, cols=self.cols - split)
        self.ws.row_dimensions[self.row].height = 22
        self.row += 1

    def line(self, text: str, *, bold: bool = False, center: bool = False) -> None:
        cell = self._put(self.row, 1, text)
        cell.font = _font(12 if bold else 11, bold=bold)
        cell.alignment = Alignment(
            horizontal="center" if center else "left", vertical="center", wrap_text=True
        )
        self._merge(self.row, 1, cols=self.cols)
        self.ws.row_dimensions[self.row].height = 22
        self.row += 1

    def gap(self) -> None:
        self.row += 1

    def header(self, rows: Sequence[Sequence[Head]]) -> int:
        """Header rows with merged cells; returns the first data row (frozen above it)."""
        first = self.row
        taken: set[tuple[int, int]] = set()
        for r, heads in enumerate(rows):
            col = 1
            for head in heads:
                while (first + r, col) in taken:
                    col += 1
                cell = self._put(first + r, col, head.text)
                self._merge(first + r, col, head.rows, head.cols)
                for dr in range(head.rows):
                    for dc in range(head.cols):
                        taken.add((first + r + dr, col + dc))
                        styled = self.ws.cell(first + r + dr, col + dc)
                        styled.border = BORDER
                        styled.fill = HEAD_FILL
                cell.font = _font(11, bold=True)
                cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
                col += head.cols
            self.ws.row_dimensions[first + r].height = 24
        self.row = first + len(rows)
        self.ws.print_title_rows = f"{first}:{self.row - 1}"
        if self.ws.freeze_panes is None:
            self.ws.freeze_panes = f"A{self.row}"
        return self.row

    def data(
        self,
        values: Sequence[Any],
        *,
        numbers: str = "#,##0",
        colors: dict[int, str] | None = None,
        center: Sequence[int] = (),
        indent: int = 0,
        bold: bool = False,
    ) -> None:
        """One bordered row: numbers right-aligned, text wrapped and padded, floats as percents,
        ``center`` columns centred. The height is set from the wrapped text, so that Excel and
        LibreOffice both show every line (neither grows a row for wrapped text reliably)."""
        colors = colors or {}
        lines = 1
        for col, value in enumerate(values, start=1):
            cell = self._put(self.row, col, value)
            cell.border = BORDER
            cell.font = _font(10.5, bold=bold, color=colors.get(col))
            if isinstance(value, float):
                cell.number_format = "0.0%"
                cell.alignment = Alignment(horizontal="right", vertical="center", indent=1)
            elif isinstance(value, int):
                cell.number_format = numbers
                cell.alignment = Alignment(horizontal="right", vertical="center", indent=1)
            elif col in center:
                cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            else:
                pad = 1 + (indent if col == 1 else 0)
                cell.alignment = Alignment(
                    horizontal="left", vertical="center", wrap_text=True, indent=pad
                )
                width = self.ws.column_dimensions[get_column_letter(col)].width or 10
                lines = max(lines, _lines(str(value), width - pad))
        self.ws.row_dimensions[self.row].height = max(21, 15 * lines + 6)
        self.row += 1

    def span(self, row: int, col: int, *, rows: int = 1, cols: int = 1, text: str = "") -> None:
        """Merge a block of written cells into one holding ``text`` (if given), centred."""
        self._merge(row, col, rows, cols)
        if text:
            cell = self._put(row, col, text)
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)

    def notes(self, lines: Sequence[str]) -> None:
        for text in lines:
            cell = self._put(self.row, 1, text)
            cell.font = _font(10)
            cell.alignment = Alignment(vertical="top", wrap_text=True)
            self._merge(self.row, 1, cols=self.cols)
            self.row += 1


def _lines(text: str, width: float) -> int:
    """How many lines ``text`` wraps to in a column ``width`` units wide (a unit is the width of
    a digit; a Chinese character at the body size takes about 1.8)."""
    total = 0
    for part in text.split("\n"):
        used = sum(1.8 if unicodedata.east_asian_width(c) in "WF" else 0.9 for c in part)
        total += max(1, math.ceil(used / max(width, 4)))
    return total


def _book() -> tuple[Workbook, Worksheet]:
    book = Workbook()
    ws = book.active
    assert ws is not None
    return book, ws


def _save(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _remark(line: Any) -> str:
    return render("summary/remark.txt.j2", g=line).strip()


def build_xlsx(s: BuildStatus) -> bytes:
    """附件2 on the first sheet as the form has it; progress per level and the units that have
    not built on two more sheets."""
    book, ws = _book()
    ws.title = label("build.sheet")
    form = FormSheet(ws, [30, 38, 8, 22])
    form.annex(label("build.annex"))
    form.title(label("build.title"))
    form.meta(label("form.unit", name=s.unit.name), label("form.filled", day=s.as_of))
    for i, lv in enumerate(s.levels):
        form.line(label("build.first_level" if i == 0 else "build.other_level", lv=lv))
    form.gap()
    form.line(label("build.groups_heading", level=s.unit_level_label), bold=True, center=True)
    form.header(_heads([label("build.groups_heads")]))
    empty = label("form.empty")
    for g in s.groups:
        form.data(
            [g.name, g.composition, g.members if g.built else empty, _remark(g)],
            colors={4: RED} if not g.built or g.missing else None,
            center=(3,),
        )
    if not s.groups:
        form.data([label("build.no_groups"), "", "", ""])

    ws = book.create_sheet(label("build.progress_sheet"))
    form = FormSheet(ws, [10, 10, 10, 10, 10, 10, 12, 12, 10, 12], landscape=True)
    form.title(label("build.progress_title"))
    form.meta(label("form.unit", name=s.unit.name), label("form.as_of", day=s.as_of))
    form.header(_heads(label("build.progress_heads")))
    for lv in s.levels:
        form.data(
            [
                _level(lv.label),
                lv.units,
                lv.expected_groups,
                lv.built_groups,
                lv.group_coverage if lv.group_coverage is not None else empty,
                lv.extension_groups,
                lv.expected_members if lv.expected_members else empty,
                lv.joined_members if lv.expected_members else empty,
                lv.member_coverage if lv.member_coverage is not None else empty,
                lv.members,
            ],
            center=(1, 5, 7, 8, 9),
        )
    form.notes([label("build.note")])

    ws = book.create_sheet(label("build.unbuilt_sheet"))
    form = FormSheet(ws, [22, 11, 7, 18, 34])
    deadline = ""
    if s.deadline:
        deadline = label("build.deadline", day=s.deadline, overdue=s.overdue)
    form.title(label("build.unbuilt_title", n=len(s.unbuilt)))
    form.meta(label("form.unit", name=s.unit.name), deadline)
    form.header(_heads([label("build.unbuilt_heads")]))
    sep = label("form.sep")
    for u in s.unbuilt:
        form.data(
            [u.name, u.code, _level(u.level_label), u.parent_name, sep.join(u.missing)],
            colors={5: RED},
            center=(2, 3),
        )
    if not s.unbuilt:
        form.data([label("build.all_built"), "", "", "", ""])
    return _save(book)


def media_xlsx(t: MediaTable) -> bytes:
    """附表 of seed 000, the self-media column split under a merged header."""
    book, ws = _book()
    ws.title = label("media.sheet")
    form = FormSheet(ws, [20, 24, 24, 15, 15, 15, 15, 9], landscape=True)
    form.annex(label("media.annex"))
    form.title(label("media.title"))
    form.meta(
        label("media.unit", name=t.unit.name),
        label("media.filled", day=t.as_of, reported=t.reported, total=len(t.rows)),
    )
    self_media = [k.label for k in MEDIA_KINDS if k.key in ("mp", "channels", "douyin", "kuaishou")]
    form.header(_heads([label("media.heads"), self_media]))
    top = t.rows[0].level if t.rows else ""
    keys = [k.key for k in MEDIA_KINDS]
    none, unreported = label("media.none"), label("media.unreported")
    for r in t.rows:
        cells = [none if r.values[k] == "" else (r.values[k] or "") for k in keys]
        colors = {i + 2: GREY for i, k in enumerate(keys) if r.values[k] == ""}
        if not r.reported:
            colors[8] = RED
        form.data(
            [r.name, *cells, "" if r.reported else unreported],
            colors=colors,
            center=[i + 2 for i, k in enumerate(keys) if r.values[k] == ""] + [8],
            indent=0 if r.level == top else 2,
            bold=r.level == top,
        )
    if not t.rows:
        form.data([label("media.no_units", name=t.unit.name), "", "", "", "", "", "", ""])
    form.notes(label("media.notes"))
    return _save(book)


def audit_xlsx(a: AuditTable) -> bytes:
    """Findings counted by code on the first sheet, listed by unit on the second."""
    book, ws = _book()
    ws.title = label("audit.sheet")
    form = FormSheet(ws, [24, 24, 10, 10, 10])
    form.title(label("audit.title"))
    form.meta(label("form.unit", name=a.unit.name), label("form.as_of", day=a.as_of))
    form.header(_heads([label("audit.heads")]))
    for c in a.by_code:
        form.data(
            [finding_label(c.code), c.code, severity_label(c.severity), c.findings, c.units],
            center=(2, 3),
        )
    if not a.by_code:
        form.data([label("audit.none"), "", "", "", ""])

    ws = book.create_sheet(label("audit.lines_sheet"))
    form = FormSheet(ws, [16, 12, 24, 9, 22, 14, 32], landscape=True)
    form.title(label("audit.lines_title"))
    form.meta(
        label("form.unit", name=a.unit.name),
        label("audit.lines_meta", findings=a.findings, units=a.units),
    )
    form.header(_heads([label("audit.lines_heads")]))
    for x in a.lines:
        form.data(
            [
                x.unit_name,
                x.unit_code,
                f"{finding_label(x.code)}\n{x.code}",
                severity_label(x.severity),
                x.group,
                audit_people(x),
                audit_advice(x),
            ],
            colors={4: RED} if x.severity in ("error", "critical") else None,
            center=(2, 4),
        )
    return _save(book)


def _when(value: Any) -> str:
    return str(label("notice.when", t=value))


def _rate(acked: int, total: int) -> float | str:
    return acked / total if total else str(label("form.empty"))


def _notice_block(form: FormSheet, x: NoticeLine) -> None:
    """A row per level and a bold total; the notice is named once in the merged first column
    (written last, so that its lines do not make the first row tall)."""
    p = x.progress
    first = form.row

    def row(
        level: str, groups: tuple[int, ...], acked: int, total: int, last: str, **style: Any
    ) -> None:
        no_ack = label("notice.no_ack")
        acks = [acked, total, _rate(acked, total)] if p.require_ack else [no_ack, "", ""]
        form.data(["", level, *groups, *acks, last], center=(2, 8), **style)
        if not p.require_ack:
            form.span(form.row - 1, 6, cols=3, text=no_ack)

    for lv in p.levels:
        missing = label("form.sep").join(lv.missing)
        missing += label("form.more") if lv.missing and lv.missing_more else ""
        groups = (lv.groups_sent, lv.groups_total, lv.groups_failed)
        colors = {5: RED} if lv.groups_failed else {}
        row(
            _level(lv.label),
            groups,
            lv.units_acked,
            lv.units_total,
            missing,
            colors=colors | ({9: RED} if missing else {}),
        )
    groups = (p.groups_sent, p.groups_total, sum(lv.groups_failed for lv in p.levels))
    last = label("notice.laggards", n=x.laggards) if x.laggards else ""
    lagging = {9: RED} if x.laggards else None
    total = label("notice.total")
    row(total, groups, p.units_acked, p.units_total, last, bold=True, colors=lagging)
    life = render("relay/_life.j2", x=x).strip()  # 已撤回 / 已由 T3 更正 / 更正 T2, as in the text
    name = label(
        "notice.block",
        code=p.code,
        life=life,
        unit=p.unit_name,
        when=_when(p.deadline),
        overdue=x.overdue,
    )
    if p.scope_name != p.unit_name:
        name += label("notice.scope", scope=p.scope_name)
    form.span(first, 1, rows=form.row - first, text=name)


def notice_xlsx(n: NoticeTable) -> bytes:
    """One block per notice: its number and deadline in a merged first column, a row per
    level, then the notice's total in bold; laggards named in the last column."""
    book, ws = _book()
    ws.title = label("notice.sheet")
    form = FormSheet(ws, [22, 9, 9, 9, 9, 11, 11, 10, 40], landscape=True)
    form.title(label("notice.title"))
    form.meta(
        label("form.unit", name=n.unit.name),
        label("notice.meta", day=n.as_of, n=len(n.notices)),
    )
    form.header(_heads(label("notice.heads")))
    for x in n.notices:
        _notice_block(form, x)
    if not n.notices:
        form.data([label("notice.none", name=n.unit.name), *[""] * 8])
    form.notes(label("notice.notes"))
    return _save(book)
