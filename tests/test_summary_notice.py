"""The notice status table (通知回执情况): numbers from the relay's progress on a hand-built
history (``tests.worlds.build_notices``), scope, and every format carrying them."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date

import pytest
from openpyxl import load_workbook

from bot.render.summary import CHAT_LIMIT, chat_text, file_name, make_summary, render_file
from matrix.relay import RelayEnv, VirtualClock
from matrix.summary import OutOfScope
from matrix.summary.notice import notice_table
from tests.worlds import NOW, TZ, build_notices

MAY_1 = date(2026, 5, 1)


@pytest.fixture
def env(province_db, bp):
    build_notices(province_db)
    return RelayEnv(province_db, bp, tz=TZ, clock=VirtualClock(NOW))


def table(env, requester="P", **kw):
    return make_summary(
        env.engine, env.blueprint, "notice", requester=requester, as_of=MAY_1, relay=env, **kw
    )


def levels(line):
    return {
        lv.label: (lv.groups_sent, lv.groups_total, lv.units_acked, lv.units_total, lv.missing)
        for lv in line.progress.levels
    }


def test_the_province_sees_every_notice_newest_first_with_its_numbers(env):
    t = table(env)
    assert [x.progress.code for x in t.notices] == ["T3", "T2", "T1"]
    t3, t2, t1 = t.notices
    assert levels(t1) == {
        "省": (1, 1, 0, 0, []),
        "市": (1, 1, 1, 1, []),
        "县": (1, 2, 1, 3, ["乙2县", "乙3县"]),
        "学校": (0, 0, 1, 2, ["乙1县第2小学"]),
    }
    assert (t1.progress.groups_sent, t1.progress.groups_total) == (3, 4)
    assert (t1.progress.units_acked, t1.progress.units_total, t1.laggards) == (3, 6, 3)
    assert t1.overdue and not t2.overdue
    assert levels(t2) == {"县": (2, 2, 0, 0, []), "学校": (0, 0, 2, 2, [])}
    assert t3.laggards == 0 and not t3.progress.require_ack
    assert [lv.groups_failed for lv in t3.progress.levels][:3] == [0, 0, 1]
    assert t.laggards == 3 and t.more == 0


def test_a_county_sees_its_own_part_of_higher_notices(env):
    k1 = table(env, requester="K1")
    assert [x.progress.code for x in k1.notices] == ["T3", "T2", "T1"]
    t1 = k1.notices[2]
    assert t1.progress.scope_name == "乙1县"
    assert levels(t1) == {"县": (1, 2, 1, 1, []), "学校": (0, 0, 1, 2, ["乙1县第2小学"])}


def test_a_county_without_groups_still_owes_its_receipt_in_the_city_group(env):
    k2 = table(env, requester="K2")
    assert [x.progress.code for x in k2.notices] == ["T3", "T1"]  # T2 never reached K2
    assert levels(k2.notices[1]) == {"县": (0, 0, 0, 1, ["乙2县"])}


def test_a_higher_office_may_name_a_unit_below_it_but_not_the_other_way(env):
    assert table(env, target="K1").unit.code == "K1"
    with pytest.raises(OutOfScope):
        table(env, requester="K1", target="K2")


def test_only_the_newest_notices_are_listed(env):
    t = notice_table(env, requester="P", as_of=MAY_1, limit=2)
    assert [x.progress.code for x in t.notices] == ["T3", "T2"] and t.more == 1


def test_chat_text_of_the_notice_table(env):
    text = chat_text(table(env), attached=False)
    assert text.startswith("【通知回执情况】示范省（截至2026年5月1日）")
    assert "近期通知 3 条，共 3 个单位次未回执" in text
    assert "· T3 示范省，5月1日 23:59截止：送达 3/4 个群，无需回执" in text
    assert "· T2 乙1县，5月1日 17:00截止：送达 2/2 个群，回执 2/2 个单位" in text
    assert "· T1 示范省，4月30日 17:00截止（已截止）：送达 3/4 个群，回执 3/6 个单位" in text
    assert "未回执：乙2县、乙3县、乙1县第2小学" in text
    assert "#进度 通知编号" in text
    assert len(text) <= CHAT_LIMIT


def test_the_chat_text_stays_one_message(env):
    data = table(env)
    many = [data.notices[2]] * 40
    text = chat_text(replace(data, notices=many))
    assert len(text) <= CHAT_LIMIT and "另有" in text


@pytest.mark.parametrize("fmt", ["md", "html", "csv"])
def test_every_file_format_carries_the_notice_numbers(env, fmt):
    body = render_file(table(env), fmt).decode("utf-8-sig")
    for needle in ("示范省", "T1", "T2", "T3", "乙2县、乙3县", "乙1县第2小学", "50.0%", "33.3%"):
        assert needle in body, needle
    assert "无需回执" in body or fmt == "csv"


def test_the_notice_csv_has_a_row_per_level_and_a_total(env):
    raw = render_file(table(env), "csv")
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    t1 = [r for r in rows if r[:1] == ["T1"]]
    assert [r[6:] for r in t1] == [
        ["省级", "1", "1", "0", "0", "0", "—", ""],
        ["市级", "1", "1", "0", "1", "1", "100%", ""],
        ["县级", "1", "2", "0", "1", "3", "33.3%", "乙2县、乙3县"],
        ["学校级", "0", "0", "0", "1", "2", "50.0%", "乙1县第2小学"],
        ["合计", "3", "4", "0", "3", "6", "50.0%", "3"],
    ]
    assert t1[0][:6] == ["T1", "示范省", "2026-04-30 09:00", "2026-04-30 17:00", "是", "示范省"]
    t3_total = next(r for r in rows if r[:1] == ["T3"] and r[6] == "合计")
    assert t3_total[6:] == ["合计", "3", "4", "1", "", "", "—", ""]
    assert all(r[-1] == "" for r in rows if r[:1] == ["T3"])  # no receipts asked, none missing


def test_the_notice_xlsx_blocks_each_notice(env):
    data = table(env)
    assert file_name(data, "xlsx") == "通知回执情况表_示范省_20260501.xlsx"
    book = load_workbook(io.BytesIO(render_file(data, "xlsx")))
    ws = book["通知回执"]
    assert ws["A1"].value == "通知回执情况表"
    assert ws["A2"].value == "单　位：示范省"
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A3:A4", "B3:B4", "C3:E3", "F3:H3", "I3:I4"} <= merged
    assert ws.freeze_panes == "A5"
    assert [ws.cell(4, c).value for c in range(3, 9)] == [
        "已送达",
        "总数",
        "发送失败",
        "已回执",
        "应回执",
        "回执率",
    ]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=5)]
    t1_start = next(i for i, r in enumerate(rows) if r[0] and str(r[0]).startswith("T1"))
    assert rows[t1_start][0] == "T1 示范省\n截止 4月30日 17:00（已截止）"
    county = rows[t1_start + 2]
    assert county[1:8] == ["县级", 1, 2, 0, 1, 3, pytest.approx(1 / 3)]
    assert county[8] == "乙2县、乙3县"
    total = rows[t1_start + 4]
    assert total[1:7] == ["合计", 3, 4, 0, 3, 6] and total[8] == "3 个单位未回执"
    assert f"A{t1_start + 5}:A{t1_start + 9}" in merged
    t3 = rows[0]
    assert t3[0].startswith("T3 示范省") and t3[5] == "无需回执"
    assert ws.page_setup.orientation == "landscape"


def test_the_cli_writes_the_notice_table(province_db, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from bot.cli import app

    build_notices(province_db)
    monkeypatch.chdir(tmp_path)
    url = province_db.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--db", url, "summary", "--table", "通知", "-u", "K1"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("【通知回执情况】乙1县（截至")
    assert "· T2 乙1县，5月1日 17:00截止：送达 2/2 个群，回执 2/2 个单位" in result.output
    result = CliRunner().invoke(app, ["--db", url, "summary", "-t", "notice", "-o", "n.xlsx"])
    assert result.exit_code == 0, result.output
    assert load_workbook(tmp_path / "n.xlsx")["通知回执"]["A1"].value == "通知回执情况表"
