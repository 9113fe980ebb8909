"""A form's table (``#汇总 F3``) as people receive it: the short chat text, and the file in xlsx,
csv, md or html, one row per unit. Words come from ``templates/returns/`` and the ``[returns]``
labels of ``templates/summary/labels.toml``.

A national form has some 200,000 rows: the XLSX is streamed as XML (``bot.render.xlsx_stream``),
with the title, the header and the print settings of the other forms, and text that looks like
a formula stored as text (``matrix.cells.formula_like``)."""

from __future__ import annotations

import re

from bot.render.templates import csv_bytes, label, render
from bot.render.xlsx_stream import HEAD, META, NOTE, TITLE, StreamSheet
from matrix.bulk import no_gc
from matrix.returns.table import FormTable

FORMATS = ("xlsx", "csv", "md", "html")
_UNSAFE_IN_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


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
        with no_gc():  # a national table: 200,000 rows of strings, none in a cycle
            return form_xlsx(t)
    body = render(f"returns/table.{fmt}.j2", t=t)
    if fmt == "csv":
        return csv_bytes(body)
    return (body.rstrip("\n") + "\n").encode("utf-8")


def form_xlsx(t: FormTable) -> bytes:
    """Title, unit and counts, one header row, a row per unit, the notes: A4 landscape, one
    page wide, the header repeated on every printed page and frozen on screen."""
    fields = t.form.fields
    heads = [*label("returns.heads_before"), *fields, *label("returns.heads_after")]
    widths = [7, 18, 26, 8, *(max(10, min(30, 2 * len(f) + 4)) for f in fields), 10, 17, 9]
    sheet = StreamSheet(
        label("returns.sheet"),
        widths,
        fonts=(label("form.body_font"), label("form.title_font")),
        footer=label("form.footer"),
        frozen=3,
        title_rows=(3, 3),
    )
    sheet.row([(label("returns.title", title=t.form.title), TITLE)], height=34)
    sheet.merge(1, 1, len(heads))
    meta = label(
        "returns.meta",
        code=t.form.code,
        when=label("notice.when", t=t.form.deadline),
        answered=t.answered,
        total=len(t.rows),
    )
    sheet.row([(label("form.unit", name=t.scope.name), META), *[("", META)] * 3, (meta, META)])
    sheet.merge(2, 1, 4)
    sheet.merge(2, 5, len(heads))
    sheet.row([(h, HEAD) for h in heads], height=24)
    for n, r in enumerate(t.rows, start=1):
        sheet.text_row(n, [r.parent, r.unit, r.level, *r.answers, r.person, r.at], r.revision)
    for note in label("returns.notes"):
        sheet.row([(note, NOTE)])
        sheet.merge(sheet.rows, 1, len(heads))
    return sheet.save()
