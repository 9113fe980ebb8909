"""``qunmatrix summary`` and ``qunmatrix media`` as the operator types them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from bot.cli import app
from tests.worlds import build_groups


@pytest.fixture
def qm(province_db, monkeypatch, tmp_path):
    """Run ``qunmatrix --db <the test database> ARGS`` and return (exit code, output)."""
    build_groups(province_db)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUNMATRIX_BUILD_DEADLINE", "2026-04-15")
    url = province_db.url.render_as_string(hide_password=False)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--db", url, *args])
        return result.exit_code, result.output

    return run


def test_summary_prints_the_chat_text_by_default(qm):
    code, out = qm("summary")
    assert code == 0, out
    assert "【微信群矩阵建设情况】示范省" in out
    assert "未建群单位 2 个（截止2026年4月15日，已逾期）" in out


def test_summary_writes_the_format_its_file_name_asks_for(qm, tmp_path):
    code, out = qm("summary", "--unit", "C1", "-o", "c1.xlsx")
    assert code == 0, out
    assert "已写入：c1.xlsx" in out
    book = load_workbook(tmp_path / "c1.xlsx")
    assert book["汇总表"]["A3"].value == "单　位：甲市"


def test_summary_names_the_file_itself_when_only_a_format_is_given(qm, tmp_path):
    code, out = qm("summary", "--table", "自媒体", "--format", "html")
    assert code == 0, out
    (written,) = tmp_path.glob("*.html")
    assert written.name.startswith("网站及自媒体建设情况统计表_示范省_")
    assert "未填报" in written.read_text(encoding="utf-8")


def test_a_county_may_not_ask_for_its_city(qm):
    code, out = qm("summary", "--as", "K1", "--unit", "C1")
    assert code == 2
    assert "乙1县只能查看本单位及下级单位的汇总，甲市（C1）不在其下" in out


def test_audit_table_from_the_audit_json(qm, tmp_path):
    findings = {
        "findings": [
            {
                "code": "NO_ADMIN",
                "severity": "error",
                "unit": "K1",
                "group": "乙1县少先队大队辅导员一群",
                "person": None,
                "fix": "请设置办公室同志为管理员",
            }
        ]
    }
    (tmp_path / "f.json").write_text(json.dumps(findings, ensure_ascii=False), encoding="utf-8")
    code, out = qm("summary", "--table", "audit", "--findings", "f.json", "-o", "a.csv")
    assert code == 0, out
    text = (tmp_path / "a.csv").read_text(encoding="utf-8-sig")
    assert "未设管理员,NO_ADMIN,严重" in text
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    code, out = qm("summary", "--table", "audit", "--findings", "bad.json")
    assert code == 2 and "bad.json 不是 JSON 文件" in out


def test_audit_table_runs_the_audit_and_names_people(qm, tmp_path):
    """No --findings: the table is the audit of today, and its 人员 column holds names."""
    code, out = qm("audit", "--json")
    found = json.loads(out)["findings"]
    with_person = [f for f in found if f["person"] is not None]
    assert with_person, found
    assert all(isinstance(f["person"], int) and f["person_name"] for f in with_person)
    code, out = qm("summary", "--table", "audit", "-o", "a.csv")
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text(encoding="utf-8-sig"))))
    listed = [r for r in rows if r["问题代码"] != "NICKNAME_FORMAT"]  # hints are summarised
    people = {r["人员"] for r in listed if r["人员"]}
    wanted = [f for f in with_person if f["code"] != "NICKNAME_FORMAT"]
    assert people and people == {f["person_name"] or f["contact"] for f in wanted}
    assert not any(p.isdigit() for p in people)


def test_nickname_hints_are_summarised_per_group(qm, tmp_path):
    hint = {"code": "NICKNAME_FORMAT", "severity": "info", "unit": "K1", "group": "乙1县群"}
    findings = [
        {**hint, "person": i, "person_name": f"老师{i}", "fix": f"请老师{i}改群昵称"}
        for i in range(1, 9)
    ]
    findings.append({"code": "NO_ADMIN", "severity": "error", "unit": "K1", "fix": "设管理员"})
    (tmp_path / "f.json").write_text(json.dumps({"findings": findings}), encoding="utf-8")
    code, out = qm("summary", "--table", "audit", "--findings", "f.json", "-o", "a.csv")
    assert code == 0 and "共 9 条问题" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text(encoding="utf-8-sig"))))
    assert [r["问题代码"] for r in rows] == ["NO_ADMIN", "NICKNAME_FORMAT"]
    assert rows[1]["人员"] == "老师1、老师2、老师3、老师4、老师5 等 8 人"
    assert rows[1]["处理建议"].startswith("例如：请老师1改群昵称")


def test_media_register_and_import(qm, tmp_path):
    code, out = qm("media", "register", "--as", "K1", "公众号", "乙1县少先队")
    assert code == 0, out
    assert "已登记：乙1县 公众号：乙1县少先队" in out
    code, out = qm("media", "register", "--as", "K1", "公众号", "乙1县红领巾")
    assert "（原为 乙1县少先队）" in out
    (tmp_path / "m.csv").write_text(
        "单位名称,抖音\n乙2县,乙2县红领巾\n乙3县,无\n", encoding="utf-8"
    )
    code, out = qm("media", "import", "m.csv")
    assert code == 0, out
    assert "读取 2 行，涉及 2 个单位；新增 2 项" in out
    code, out = qm("summary", "--table", "media")
    assert "已填报 3 个，未填报 1 个" in out


def test_unknown_table_or_format_is_explained(qm):
    code, out = qm("summary", "--table", "财务")
    assert code == 2 and "不认识表名 '财务'" in out and "通知(notice)" in out
    code, out = qm("summary", "--format", "pdf")
    assert code == 2 and "不认识格式 'pdf'" in out
