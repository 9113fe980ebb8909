"""Summaries as XLSX files laid out like the official forms: the annex mark, a centred title,
填报单位 and date, merged two-row headers, column widths that fit Chinese text, a frozen header,
and A4 print settings (fit to page width, header rows repeated on every printed page).

The one place summaries are rendered without a template: openpyxl builds the sheet cell by cell.
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

from bot.render.templates import chinese_date, finding_label, render, severity_label
from matrix.cells import put
from matrix.media import MEDIA_KINDS, MediaTable
from matrix.summary import AuditTable, BuildStatus
from matrix.summary.notice import NoticeLine, NoticeTable

BODY_FONT = "宋体"  # what Chinese offices print forms in; LibreOffice falls back to Noto CJK
TITLE_FONT = "黑体"
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
    return Font(name=TITLE_FONT if title else BODY_FONT, size=size, bold=bold, color=color)


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
        ws.oddFooter.center.text = "第 &P 页，共 &N 页"
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
    ws.title = "汇总表"
    form = FormSheet(ws, [30, 38, 8, 22])
    form.annex("附件2")
    form.title("微信群矩阵建设情况信息汇总表")
    form.meta(f"单　位：{s.unit.name}", f"填报日期：{chinese_date(s.as_of)}")
    for i, lv in enumerate(s.levels):
        if i == 0:
            form.line(f"{lv.label}级建群数：{lv.groups:,} 个，联系人数 {lv.members:,} 人。")
        else:
            form.line(
                f"{lv.label}级建群数：合计 {lv.groups:,} 个，总计联系人数 {lv.members:,} 人。"
            )
    form.gap()
    form.line(f"{s.unit_level_label}级建群情况一览", bold=True, center=True)
    form.header([[Head("群名称"), Head("人员构成"), Head("人数"), Head("备注")]])
    for g in s.groups:
        form.data(
            [g.name, g.composition, g.members if g.built else "—", _remark(g)],
            colors={4: RED} if not g.built or g.missing else None,
            center=(3,),
        )
    if not s.groups:
        form.data(["本级不牵头建群", "", "", ""])

    ws = book.create_sheet("建设进度")
    form = FormSheet(ws, [10, 10, 10, 10, 10, 10, 12, 12, 10, 12], landscape=True)
    form.title("各级建设进度")
    form.meta(f"单　位：{s.unit.name}", f"截至{chinese_date(s.as_of)}")
    form.header(
        [
            [
                Head("层级", rows=2),
                Head("单位数", rows=2),
                Head("群", cols=4),
                Head("应入群人员", cols=3),
                Head("联系人数", rows=2),
            ],
            [Head(h) for h in ("应建", "已建", "建群率", "延展群", "应入", "已入", "入群率")],
        ]
    )
    for lv in s.levels:
        form.data(
            [
                f"{lv.label}级",
                lv.units,
                lv.expected_groups,
                lv.built_groups,
                lv.group_coverage if lv.group_coverage is not None else "—",
                lv.extension_groups,
                lv.expected_members if lv.expected_members else "—",
                lv.joined_members if lv.expected_members else "—",
                lv.member_coverage if lv.member_coverage is not None else "—",
                lv.members,
            ],
            center=(1, 5, 7, 8, 9),
        )
    form.notes(
        [
            "说明：建群数含延展群；联系人数为各群实际人数之和；应建群按蓝图规定的必建群计"
            "（分群按实际分群数计）；已入为应入人员中已在群内者。"
        ]
    )

    ws = book.create_sheet("未建群单位")
    form = FormSheet(ws, [22, 11, 7, 18, 34])
    deadline = ""
    if s.deadline:
        deadline = f"建设截止：{chinese_date(s.deadline)}"
        deadline += "（已逾期）" if s.overdue else ""
    form.title(f"未建群单位（{len(s.unbuilt):,} 个）")
    form.meta(f"单　位：{s.unit.name}", deadline)
    form.header(
        [[Head("单位"), Head("单位代码"), Head("层级"), Head("上级单位"), Head("未建的群")]]
    )
    for u in s.unbuilt:
        form.data(
            [u.name, u.code, f"{u.level_label}级", u.parent_name, "、".join(u.missing)],
            colors={5: RED},
            center=(2, 3),
        )
    if not s.unbuilt:
        form.data(["应建群已全部建成", "", "", "", ""])
    return _save(book)


def media_xlsx(t: MediaTable) -> bytes:
    """附表 of seed 000, the self-media column split under a merged header."""
    book, ws = _book()
    ws.title = "统计表"
    form = FormSheet(ws, [20, 24, 24, 15, 15, 15, 15, 9], landscape=True)
    form.annex("附表")
    form.title("各市（地）、系统网站（网页）及自媒体建设情况统计表")
    form.meta(
        f"填报单位：{t.unit.name}",
        f"填报日期：{chinese_date(t.as_of)}　已填报 {t.reported}/{len(t.rows)}",
    )
    form.header(
        [
            [
                Head("单位名称\n（市、县、区）", rows=2),
                Head("网站网址", rows=2),
                Head("网页链接", rows=2),
                Head("微信公众号、视频号、抖音、快手等自媒体名称", cols=4),
                Head("备注", rows=2),
            ],
            [
                Head(k.label)
                for k in MEDIA_KINDS
                if k.key in ("mp", "channels", "douyin", "kuaishou")
            ],
        ]
    )
    top = t.rows[0].level if t.rows else ""
    keys = [k.key for k in MEDIA_KINDS]
    for r in t.rows:
        cells = ["无" if r.values[k] == "" else (r.values[k] or "") for k in keys]
        colors = {i + 2: GREY for i, k in enumerate(keys) if r.values[k] == ""}
        if not r.reported:
            colors[8] = RED
        form.data(
            [r.name, *cells, "" if r.reported else "未填报"],
            colors=colors,
            center=[i + 2 for i, k in enumerate(keys) if r.values[k] == ""] + [8],
            indent=0 if r.level == top else 2,
            bold=r.level == top,
        )
    if not t.rows:
        form.data([f"{t.unit.name}及下级没有市地、县区单位", "", "", "", "", "", "", ""])
    form.notes(
        [
            "备注：1. 本表只统计到市地系统和县区。",
            "2. 自媒体只统计公众号、抖音、快手和视频号。",
            "3. “无”为单位登记没有该项，“未填报”为单位尚未登记任何一项。",
        ]
    )
    return _save(book)


def audit_xlsx(a: AuditTable) -> bytes:
    """Findings counted by code on the first sheet, listed by unit on the second."""
    book, ws = _book()
    ws.title = "按问题类型"
    form = FormSheet(ws, [24, 24, 10, 10, 10])
    form.title("微信群审计问题汇总表")
    form.meta(f"单　位：{a.unit.name}", f"截至{chinese_date(a.as_of)}")
    form.header([[Head("问题"), Head("代码"), Head("严重程度"), Head("条数"), Head("单位数")]])
    for c in a.by_code:
        form.data(
            [finding_label(c.code), c.code, severity_label(c.severity), c.findings, c.units],
            center=(2, 3),
        )
    if not a.by_code:
        form.data(["未发现问题", "", "", "", ""])

    ws = book.create_sheet("按单位")
    form = FormSheet(ws, [16, 12, 24, 9, 22, 14, 32], landscape=True)
    form.title("审计问题明细")
    form.meta(f"单　位：{a.unit.name}", f"共 {a.findings:,} 条，涉及 {a.units:,} 个单位")
    form.header(
        [[Head(h) for h in ("单位", "单位代码", "问题", "严重程度", "群", "人员", "处理建议")]]
    )
    for x in a.lines:
        form.data(
            [
                x.unit_name,
                x.unit_code,
                f"{finding_label(x.code)}\n{x.code}",
                severity_label(x.severity),
                x.group,
                x.person,
                x.fix,
            ],
            colors={4: RED} if x.severity in ("error", "critical") else None,
            center=(2, 4),
        )
    return _save(book)


def _when(value: Any) -> str:
    return f"{value.month}月{value.day}日 {value.hour:02d}:{value.minute:02d}"


def _rate(acked: int, total: int) -> float | str:
    return acked / total if total else "—"


def _notice_block(form: FormSheet, x: NoticeLine) -> None:
    """A row per level and a bold total; the notice is named once in the merged first column
    (written last, so that its lines do not make the first row tall)."""
    p = x.progress
    first = form.row

    def row(
        level: str, groups: tuple[int, ...], acked: int, total: int, last: str, **style: Any
    ) -> None:
        acks = [acked, total, _rate(acked, total)] if p.require_ack else ["无需回执", "", ""]
        form.data(["", level, *groups, *acks, last], center=(2, 8), **style)
        if not p.require_ack:
            form.span(form.row - 1, 6, cols=3, text="无需回执")

    for lv in p.levels:
        missing = "、".join(lv.missing) + (" 等" if lv.missing and lv.missing_more else "")
        groups = (lv.groups_sent, lv.groups_total, lv.groups_failed)
        colors = {5: RED} if lv.groups_failed else {}
        row(
            f"{lv.label}级",
            groups,
            lv.units_acked,
            lv.units_total,
            missing,
            colors=colors | ({9: RED} if missing else {}),
        )
    groups = (p.groups_sent, p.groups_total, sum(lv.groups_failed for lv in p.levels))
    last = f"{x.laggards} 个单位未回执" if x.laggards else ""
    lagging = {9: RED} if x.laggards else None
    row("合计", groups, p.units_acked, p.units_total, last, bold=True, colors=lagging)
    late = "（已截止）" if x.overdue else ""
    label = f"{p.code} {p.unit_name}\n截止 {_when(p.deadline)}{late}"
    if p.scope_name != p.unit_name:
        label += f"\n{p.scope_name}范围"
    form.span(first, 1, rows=form.row - first, text=label)


def notice_xlsx(n: NoticeTable) -> bytes:
    """One block per notice: its number and deadline in a merged first column, a row per
    level, then the notice's total in bold; laggards named in the last column."""
    book, ws = _book()
    ws.title = "通知回执"
    form = FormSheet(ws, [22, 9, 9, 9, 9, 11, 11, 10, 40], landscape=True)
    form.title("通知回执情况表")
    form.meta(
        f"单　位：{n.unit.name}",
        f"截至{chinese_date(n.as_of)}　近期通知 {len(n.notices)} 条",
    )
    form.header(
        [
            [
                Head("通知", rows=2),
                Head("层级", rows=2),
                Head("群", cols=3),
                Head("单位回执", cols=3),
                Head("未回执单位", rows=2),
            ],
            [Head(h) for h in ("已送达", "总数", "发送失败", "已回执", "应回执", "回执率")],
        ]
    )
    for x in n.notices:
        _notice_block(form, x)
    if not n.notices:
        form.data([f"近期没有发到{n.unit.name}及下级的通知", *[""] * 8])
    form.notes(
        [
            "说明：1. “群”按牵头单位的层级统计，“单位回执”按回执单位的层级统计。",
            "2. 统计范围为本单位及下级；上级下发的通知只统计本单位范围内的群和单位。",
        ]
    )
    return _save(book)
