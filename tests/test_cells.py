"""matrix.cells: the one rule for formula-like text, in every workbook written here."""

from __future__ import annotations

from openpyxl import Workbook, load_workbook

from matrix.cells import FORMULA_STARTS, csv_text, formula_like, put
from matrix.sheets import Column, write_sheet

HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"]


def test_every_dangerous_start_is_caught_and_ordinary_text_is_not():
    assert all(formula_like(t) for t in HOSTILE) and len(HOSTILE) == len(FORMULA_STARTS)
    assert not any(formula_like(t) for t in ["乙1县", "1+1", " =1", "＝1", ""])
    assert [csv_text(t)[:2] for t in HOSTILE[:2]] == ["'=", "'+"]


def test_put_keeps_the_text_and_stores_it_as_text(tmp_path):
    book = Workbook()
    ws = book.active
    for row, text in enumerate([*HOSTILE, "坏\x00名\x1b字", 12], start=1):
        put(ws.cell(row, 1), text)
    book.save(tmp_path / "b.xlsx")
    back = load_workbook(tmp_path / "b.xlsx").active
    cells = [back.cell(row, 1) for row in range(1, len(HOSTILE) + 3)]
    assert [c.value for c in cells[:2]] == HOSTILE[:2]
    assert all(c.data_type == "s" and c.quotePrefix for c in cells[: len(HOSTILE)])
    assert (cells[-2].value, cells[-1].value) == ("坏名字", 12)


def test_the_sample_roster_writer_stores_formula_like_names_as_text(tmp_path):
    columns = [Column("name", ("name", "姓名"))]
    write_sheet(tmp_path / "p.xlsx", columns, [{"name": HOSTILE[0]}, {"name": "张三"}])
    ws = load_workbook(tmp_path / "p.xlsx").active
    assert [(c.value, c.data_type) for c in ws["A"]] == [
        ("姓名", "s"),
        (HOSTILE[0], "s"),
        ("张三", "s"),
    ]
