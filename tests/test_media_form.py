"""The media form round trip: the official 附表 XLSX the summary writes (title rows, a two-row
header, notes below) is filled in by the offices and imported back as it is."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from bot.cli import app
from matrix.blueprint import load_blueprint
from matrix.db import make_engine
from matrix.media import media_table


@pytest.fixture
def qm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The CLI over a guangongwei province (黑龙江: 鹤岗 and 佳木斯 both have a 向阳区)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUNMATRIX_CONFIG", raising=False)
    runner = CliRunner()
    base = ["--db", f"sqlite:///{tmp_path / 'm.db'}", "--blueprint", "guangongwei"]

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*base, *args])
        return result.exit_code, result.output

    run("init")
    run("sample", "--scale", "province", "--out", "s")
    assert run("import", "s/units.csv", "s/persons.csv")[0] == 0
    run.url = base[1]  # type: ignore[attr-defined]
    return run


def fill(path: Path, values: dict[tuple[str, int], str]) -> None:
    """Type into the form as an office would: (unit name, its n-th row of that name) → the
    公众号 cell."""
    book = load_workbook(path)
    sheet = book.worksheets[0]
    header = next(r for r in sheet.iter_rows() if any(c.value == "公众号" for c in r))
    column = next(c.column for c in header if c.value == "公众号")
    seen: dict[str, int] = {}
    for row in sheet.iter_rows(min_row=header[0].row + 1):
        name = row[0].value
        seen[name] = seen.get(name, 0) + 1
        if (name, seen[name]) in values:
            sheet.cell(row=row[0].row, column=column, value=values[(name, seen[name])])
    book.save(path)


def test_the_xlsx_form_imports_back(qm, tmp_path: Path) -> None:
    code, out = qm("summary", "--table", "media", "-o", "m.xlsx")
    assert code == 0, out
    form = tmp_path / "m.xlsx"
    fill(
        form, {("哈尔滨市", 1): "哈尔滨关工", ("向阳区", 2): "佳木斯向阳关工", ("道里区", 1): "无"}
    )
    code, out = qm("media", "import", "m.xlsx")
    assert code == 0, out
    assert "读取 138 行" in out and "新增 3 项" in out
    engine = make_engine(qm.url)
    table = media_table(
        engine, load_blueprint("guangongwei"), requester="230000", as_of=date.today()
    )
    values = {r.code: r.values["mp"] for r in table.rows}
    assert values["230100"] == "哈尔滨关工"
    # the second 向阳区 on the form is the one under 佳木斯 (230800), not 鹤岗's (230402)
    assert values["230803"] == "佳木斯向阳关工" and values["230402"] is None
    assert values["230102"] == ""  # 无: it has none


def test_a_form_without_unit_column_says_where_it_looked(qm, tmp_path: Path) -> None:
    qm("summary", "--table", "media", "-o", "m.xlsx")
    book = load_workbook(tmp_path / "m.xlsx")
    sheet = book.worksheets[0]
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("单位名称"):
                cell.value = "名字"
    book.save(tmp_path / "m.xlsx")
    code, out = qm("media", "import", "m.xlsx")
    assert code == 2 and "缺少「单位代码」或「单位名称」列（前 12 行都没有找到）" in out
