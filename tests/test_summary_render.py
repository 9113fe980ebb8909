"""Every format of every table carries the numbers; the XLSX is laid out like the form."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date

import pytest
from openpyxl import load_workbook

from bot.render.summary import (
    CHAT_LIMIT,
    SummaryRequestError,
    chat_text,
    file_name,
    make_summary,
    parse_format,
    parse_table,
    render_file,
)
from matrix.media import parse_registration, register_media
from matrix.summary import UnbuiltUnit
from tests.worlds import build_groups

MAY_1 = date(2026, 5, 1)
FINDINGS = [
    {
        "code": "MISSING_MEMBER",
        "severity": "warning",
        "unit": "K1",
        "group": "乙1县少先队大队辅导员一群",
        "person": "K1S1中辅0",
        "fix": "请邀请其入群",
    },
    {
        "code": "UNKNOWN_MEMBER",
        "severity": "error",
        "unit": "K1",
        "group": "乙1县少先队大队辅导员一群",
        "person": "wxid_stranger0",
        "fix": "核实身份后移出或绑定",
    },
    {
        "code": "GROUP_MISSING",
        "severity": "error",
        "unit": "K3",
        "group": None,
        "person": None,
        "fix": "请建立中小学少先队大队辅导员群",
    },
    {"code": "NO_ADMIN", "severity": "warning", "unit": "ELSEWHERE", "fix": "-"},
]


@pytest.fixture
def world(province_db, bp):
    build_groups(province_db)
    for unit, text in (
        ("K1", "公众号 乙1县少先队"),
        ("K1", "网站 www.k1.gov.cn"),
        ("K2", "抖音 无"),
    ):
        register_media(province_db, bp, parse_registration(text), requester=unit, actor="t")
    return province_db


def summary(world, bp, table, **kw):
    kw.setdefault("requester", "P")
    return make_summary(
        world, bp, table, as_of=MAY_1, deadline=date(2026, 4, 15), findings=FINDINGS, **kw
    )


def text_of(data, fmt):
    return render_file(data, fmt).decode("utf-8-sig")


def test_chat_text_of_the_build_table(world, bp):
    text = chat_text(summary(world, bp, "build"))
    assert text.startswith("【微信群矩阵建设情况】示范省（截至2026年5月1日）")
    assert "省级建群 2 个，联系人 7 人" in text
    assert "市级建群合计 1 个，联系人总计 6 人" in text
    assert "县级建群合计 2 个，联系人总计 8 人" in text
    assert "县级 2/4（50.0%）" in text
    assert "市级 6/8（75.0%）" in text
    assert "未建群单位 2 个（截止2026年4月15日，已逾期）：乙2县、乙3县" in text
    assert len(text) <= CHAT_LIMIT


def test_chat_text_stays_one_message_with_thousands_of_unbuilt_units(world, bp):
    data = summary(world, bp, "build")
    many = [UnbuiltUnit(f"K{i}", f"某某自治县{i}", "county", "县", "某市") for i in range(3000)]
    text = chat_text(replace(data, unbuilt=many))
    assert len(text) <= CHAT_LIMIT
    assert "未建群单位 3,000 个" in text and " 等" in text


@pytest.mark.parametrize("fmt", ["md", "html", "csv"])
def test_every_file_format_carries_the_build_numbers(world, bp, fmt):
    text = text_of(summary(world, bp, "build"), fmt)
    for needle in (
        "示范省",
        "示范省地市级团委少年部长群",
        "本级办公室同志、各下级单位少年部长",
        "缺 1 人未入群",
        "延展群",
        "乙3县",
        "中小学少先队大队辅导员群",
        "50.0%",
        "75.0%",
    ):
        assert needle in text, needle


def test_the_build_csv_opens_as_rows(world, bp):
    raw = render_file(summary(world, bp, "build"), "csv")
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert ["县级", "3", "4", "2", "50.0%", "0", "24", "8", "33.3%", "8"] in rows
    assert ["乙2县", "K2", "县级", "甲市", "中小学少先队大队辅导员群"] in rows


def test_markdown_has_a_table_per_section(world, bp):
    text = text_of(summary(world, bp, "build"), "md")
    assert "| 县级 | 3 | 4 | 2 | 50.0% | 0 | 24 | 8 | 33.3% | 8 |" in text
    assert "- 省级建群数：2 个，联系人数 7 人。" in text


def test_html_is_printable_and_escapes_names(world, bp):
    from sqlalchemy import update

    from matrix.tables import UNIT

    with world.begin() as conn:
        conn.execute(update(UNIT).where(UNIT.c.code == "K3").values(name="<b>乙3县</b>"))
    html = text_of(summary(world, bp, "build"), "html")
    assert "@page { size: A4" in html
    assert "&lt;b&gt;乙3县&lt;/b&gt;" in html and "<b>乙3县</b>" not in html
    assert '<th colspan="4">群</th>' in html


def test_build_xlsx_is_laid_out_like_the_form(world, bp):
    book = load_workbook(io.BytesIO(render_file(summary(world, bp, "build"), "xlsx")))
    assert book.sheetnames == ["汇总表", "建设进度", "未建群单位"]
    ws = book["汇总表"]
    assert ws["A1"].value == "附件2"
    assert ws["A2"].value == "微信群矩阵建设情况信息汇总表"
    assert "A2:D2" in [str(r) for r in ws.merged_cells.ranges]
    assert ws["A3"].value == "单　位：示范省"
    assert ws["C3"].value == "填报日期：2026年5月1日"
    assert ws["A4"].value == "省级建群数：2 个，联系人数 7 人。"
    assert ws["A6"].value == "县级建群数：合计 2 个，总计联系人数 8 人。"
    header = [c.value for c in ws[9]]
    assert header == ["群名称", "人员构成", "人数", "备注"]
    assert ws.freeze_panes == "A10"
    assert [ws.cell(10, c).value for c in range(1, 4)] == [
        "示范省地市级团委少年部长群",
        "本级办公室同志、各下级单位少年部长",
        3,
    ]
    assert ws.cell(10, 4).value == "缺 1 人未入群"
    assert int(ws.page_setup.paperSize) == 9  # A4
    assert ws.page_setup.fitToWidth == 1
    assert ws.column_dimensions["B"].width > ws.column_dimensions["C"].width * 3  # 人员构成 is long

    progress = book["建设进度"]
    merged = {str(r) for r in progress.merged_cells.ranges}
    assert {"A3:A4", "C3:F3", "G3:I3", "J3:J4"} <= merged
    assert progress.freeze_panes == "A5"
    county = [c.value for c in progress[7]]
    assert county[:4] == ["县级", 3, 4, 2]
    assert county[4] == pytest.approx(0.5) and progress.cell(7, 5).number_format == "0.0%"
    assert county[6:] == [24, 8, pytest.approx(1 / 3), 8]

    unbuilt = book["未建群单位"]
    assert unbuilt["A1"].value == "未建群单位（2 个）"
    assert "（已逾期）" in unbuilt["C2"].value
    assert [unbuilt.cell(r, 1).value for r in (4, 5)] == ["乙2县", "乙3县"]


def test_media_formats_show_registrations_and_missing_units(world, bp):
    data = summary(world, bp, "media")
    text = chat_text(data)
    assert "应填报 4 个单位，已填报 2 个，未填报 2 个" in text
    assert "未填报：甲市、乙3县" in text
    for fmt in ("md", "html", "csv"):
        body = text_of(data, fmt)
        assert "乙1县少先队" in body and "www.k1.gov.cn" in body and "未填报" in body, fmt
    rows = list(csv.reader(io.StringIO(text_of(data, "csv"))))
    assert rows[0][:2] == ["单位代码", "单位名称"]
    assert rows[3] == ["K2", "乙2县", "县级", "甲市", "", "", "", "", "无", "", "已填报"]
    assert rows[4][-1] == "未填报"


def test_media_csv_can_be_filled_in_and_imported_back(world, bp, tmp_path):
    from matrix.media import import_media, media_table

    path = tmp_path / "media.csv"
    path.write_bytes(render_file(summary(world, bp, "media"), "csv"))
    text = path.read_text(encoding="utf-8-sig").replace(
        "K3,乙3县,县级,甲市,,", "K3,乙3县,县级,甲市,www.k3.cn,"
    )
    path.write_text(text, encoding="utf-8-sig")
    report = import_media(world, bp, path, requester="P", actor="t")
    assert (report.added, report.changed) == (1, 0)
    rows = {r.code: r for r in media_table(world, bp, requester="P", as_of=MAY_1).rows}
    assert rows["K3"].values["website"] == "www.k3.cn"
    assert rows["K2"].values["douyin"] == ""


def test_media_xlsx_has_the_merged_self_media_header(world, bp):
    book = load_workbook(io.BytesIO(render_file(summary(world, bp, "media"), "xlsx")))
    ws = book["统计表"]
    assert ws["A2"].value == "各市（地）、系统网站（网页）及自媒体建设情况统计表"
    assert ws["A3"].value == "填报单位：示范省"
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A4:A5", "B4:B5", "D4:G4", "H4:H5"} <= merged
    assert ws["D4"].value == "微信公众号、视频号、抖音、快手等自媒体名称"
    assert [ws.cell(5, c).value for c in range(4, 8)] == ["公众号", "视频号", "抖音", "快手"]
    assert ws.freeze_panes == "A6"
    assert ws.page_setup.orientation == "landscape"
    names = [ws.cell(r, 1).value for r in range(6, 10)]
    assert names == ["甲市", "乙1县", "乙2县", "乙3县"]
    assert ws.cell(7, 4).value == "乙1县少先队"
    assert ws.cell(8, 6).value == "无"
    assert ws.cell(6, 8).value == "未填报" and ws.cell(9, 8).value == "未填报"
    assert ws.cell(10, 1).value.startswith("备注：1. 本表只统计到市地系统和县区")


def test_audit_table_counts_findings_per_code_and_unit(world, bp):
    data = summary(world, bp, "audit")
    assert data.outside == 1  # the finding about a unit not in the roster is left out
    assert [(c.code, c.findings, c.units) for c in data.by_code] == [
        ("GROUP_MISSING", 1, 1),
        ("UNKNOWN_MEMBER", 1, 1),
        ("MISSING_MEMBER", 1, 1),
    ]
    assert [x.unit_code for x in data.lines] == ["K1", "K1", "K3"]
    text = chat_text(data)
    assert "共 3 条问题，涉及 2 个单位" in text
    assert "应建群未建（GROUP_MISSING）1 条，1 个单位" in text
    for fmt in ("md", "html", "csv"):
        body = text_of(data, fmt)
        assert "wxid_stranger0" in body and "请建立中小学少先队大队辅导员群" in body, fmt
    book = load_workbook(io.BytesIO(render_file(data, "xlsx")))
    assert book.sheetnames == ["按问题类型", "按单位"]
    assert [c.value for c in book["按问题类型"][4]] == ["应建群未建", "GROUP_MISSING", "严重", 1, 1]
    assert book["按单位"].freeze_panes == "A4"


def test_a_county_asking_for_the_audit_sees_only_its_findings(world, bp):
    data = summary(world, bp, "audit", requester="K1")
    assert {x.unit_code for x in data.lines} == {"K1"}


def test_table_and_format_names_in_chinese(world, bp):
    assert parse_table("附件2") == "build" and parse_table("自媒体") == "media"
    assert parse_format("Excel") == "xlsx" and parse_format("网页") == "html"
    assert parse_table("通知") == "notice" and parse_table("回执") == "notice"
    with pytest.raises(SummaryRequestError, match="不认识表名 '财务'"):
        parse_table("财务")
    data = summary(world, bp, "build")
    assert file_name(data, "xlsx") == "微信群矩阵建设情况汇总表_示范省_20260501.xlsx"
