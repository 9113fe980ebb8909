"""Every summary table in every format, asked for in chat (#汇总) and on the command line
(qunmatrix summary -o), with hostile text where anyone can put it: unit and group names (a
roster), a joiner's WeChat name, a registered 公众号, a notice. The files must show that text,
never run it: no formula in a workbook or a CSV, no live HTML in Markdown or HTML."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import update
from typer.testing import CliRunner

from bot.cli import app
from bot.rehearsal.stage import Stage
from matrix.cells import formula_like
from matrix.models import Group, Unit
from matrix.tables import table_of
from tests.chat.conftest import K1_GROUP, K1_OFFICE, PROVINCE_GROUP, PROVINCE_OFFICE

K1_NAME = '=HYPERLINK("http://evil.example/k1","乙1县")<img src=x onerror=alert(1)>'
K2_NAME = "@SUM(1+1)<script>alert(2)</script>"
GROUP_NAME = '+cmd|" /C calc"!A0<script>alert(3)</script>'
JOINER = "-2+3<img src=y onerror=alert(4)>"
ACCOUNT = '=HYPERLINK("http://evil.example/mp","y")'
NOTICE = '=HYPERLINK("http://evil.example/n","z") <script>alert(5)</script>'
TABLES = {"build": "建群", "media": "媒体", "notice": "通知", "audit": "核查"}
FORMATS = ("text", "csv", "md", "html", "xlsx")


def hostile(stage: Stage) -> None:
    """Hostile names in the roster's units and groups (as an import would write them), a
    joiner with a hostile WeChat name, a hostile 公众号 and a hostile notice."""
    with stage.engine.begin() as conn:
        units, groups = table_of(Unit), table_of(Group)
        conn.execute(update(units).where(units.c.code == "K1").values(name=K1_NAME))
        conn.execute(update(units).where(units.c.code == "K2").values(name=K2_NAME))
        conn.execute(update(groups).where(groups.c.unit_code == "P").values(name=GROUP_NAME))
    stage.world.add_contact("wxid_hostile", JOINER)
    stage.say(K1_GROUP, "wxid_hostile", "<加入>")
    assert stage.reply(K1_GROUP, K1_OFFICE, f"#登记 公众号 {ACCOUNT}").startswith("已登记")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, f"#通知 {NOTICE}")


def assert_harmless(fmt: str, data: bytes) -> None:
    """Nothing in the file runs; and the hostile text did reach it (else the test proves
    nothing)."""
    if fmt == "xlsx":
        book = load_workbook(io.BytesIO(data))
        cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row]
        assert [c.coordinate for c in cells if c.data_type == "f"] == []
        risky = [c for c in cells if isinstance(c.value, str) and formula_like(c.value)]
        assert risky, "no hostile text reached the workbook"
        assert all(c.data_type == "s" and c.quotePrefix for c in risky)
        return
    text = data.decode("utf-8-sig")
    if fmt == "csv":
        fields = [f for row in csv.reader(io.StringIO(text)) for f in row]
        assert [f for f in fields if formula_like(f)] == []
        assert any(f.startswith(("'=", "'@", "'+", "'-")) for f in fields)
    elif fmt in ("md", "html"):
        assert "<script" not in text.lower() and "<img" not in text.lower()
        assert "&lt;script&gt;" in text or "&lt;img" in text
    else:  # plain text for a chat message: nothing runs there, it only must be whole
        assert text.strip()


@pytest.mark.parametrize("table", TABLES)
def test_chat_summaries_in_every_format_show_hostile_text_as_text(stage: Stage, table: str):
    hostile(stage)
    for fmt in FORMATS:
        word = {"text": "文本"}.get(fmt, fmt)
        said = [
            x
            for x in stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, f"#汇总 {TABLES[table]} {word}")
            if x.by_bot
        ]
        assert "抱歉" not in said[0].text, said[0].text
        if fmt == "text":
            assert len(said) == 1
            continue
        assert said[-1].file, said
        assert_harmless(fmt, Path(said[-1].file).read_bytes())


def test_a_unit_whose_name_is_a_path_gets_its_file(stage: Stage):
    hostile(stage)
    said = [x for x in stage.say(K1_GROUP, K1_OFFICE, "#汇总 媒体 xlsx") if x.by_bot]
    path = Path(said[-1].file)
    assert path.suffix == ".xlsx" and path.parent.parent == stage.bot.summaries.export_dir
    assert "/" not in path.name and "<" not in path.name
    assert_harmless("xlsx", path.read_bytes())


@pytest.mark.parametrize("table", TABLES)
def test_cli_summaries_in_every_format_show_hostile_text_as_text(
    stage: Stage, table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    hostile(stage)
    monkeypatch.chdir(tmp_path)
    url = stage.engine.url.render_as_string(hide_password=False)
    findings = tmp_path / "findings.json"
    finding = {"code": "UNKNOWN_MEMBER", "severity": "warning", "unit": "K1", "fix": "请核实"}
    finding |= {"group": GROUP_NAME, "person": JOINER}
    findings.write_text(json.dumps({"findings": [finding]}), encoding="utf-8")
    for fmt in FORMATS:
        out = tmp_path / f"{table}.{'txt' if fmt == 'text' else fmt}"
        args = ["--db", url, "summary", "--table", table, "--format", fmt, "-o", str(out)]
        if table == "audit":
            args += ["--findings", str(findings)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        if fmt != "text":
            assert_harmless(fmt, out.read_bytes())
