"""#汇总 and #登记 in conversation: offices ask for their summaries in their groups, files arrive
as attachments, media accounts are registered; people are named in conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.chat.summary import SummaryOptions
from bot.rehearsal.stage import Stage
from matrix.tables import MEDIA_ACCOUNT
from tests.chat.conftest import (
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    K2_GROUP,
    K2_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    TEACHER,
    audit,
)


def media(stage: Stage) -> set[tuple[str, str, str]]:
    with stage.engine.connect() as conn:
        rows = conn.execute(
            select(MEDIA_ACCOUNT.c.unit_code, MEDIA_ACCOUNT.c.kind, MEDIA_ACCOUNT.c.value)
        )
        return {tuple(r) for r in rows}


def ask_for_file(stage: Stage, group: str, who: str, text: str) -> tuple[str, Path]:
    """The bot's text and the file it sent after it."""
    said = [line for line in stage.say(group, who, text) if line.by_bot]
    assert [bool(line.file) for line in said] == [False, True], said
    path = Path(said[1].file)
    assert said[1].text == f"[文件] {path.name}"
    return said[0].text, path


# --- #汇总 -------------------------------------------------------------------------------------


def test_an_office_asks_in_its_group_and_gets_the_numbers(stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#汇总")
    assert reply.startswith("【微信群矩阵建设情况】乙1县（截至")
    assert "县级建群 1 个，联系人 8 人" in reply
    assert "应建/已建：县级 1/1（100%）" in reply
    assert "应入/已入：县级 8/8（100%）" in reply
    assert reply.endswith("要完整表格，请发送 #汇总 建群 xlsx（也可以是 csv、md、html）。")
    assert "见附件" not in reply
    [entry] = audit(stage, "command.summary")
    assert (entry["actor"], entry["unit"], entry["table"]) == (K1_OFFICE, "K1", "build")


def test_asking_for_xlsx_sends_the_official_form_after_the_text(stage):
    text, path = ask_for_file(stage, K1_GROUP, K1_OFFICE, "#汇总 建群 xlsx")
    assert "县级建群 1 个，联系人 8 人" in text and text.endswith("完整表格见附件。")
    assert path.name.startswith("微信群矩阵建设情况汇总表_乙1县_") and path.suffix == ".xlsx"
    ws = load_workbook(path)["汇总表"]
    assert ws["A3"].value == "单　位：乙1县"
    assert ws["A4"].value == "县级建群数：1 个，联系人数 8 人。"
    [entry] = audit(stage, "command.summary")
    assert (entry["format"], entry["file"]) == ("xlsx", str(path))


def test_chinese_names_of_tables_and_formats_work_too(stage):
    _, path = ask_for_file(stage, K1_GROUP, K1_OFFICE, "#汇总 附件2 表格")
    assert path.suffix == ".xlsx"
    _, path = ask_for_file(stage, K1_GROUP, K1_OFFICE, "#汇总 自媒体 网页")
    assert path.suffix == ".html" and "乙1县" in path.read_text(encoding="utf-8")


def test_asking_twice_sends_two_files_under_the_same_readable_name(stage):
    _, first = ask_for_file(stage, K1_GROUP, K1_OFFICE, "#汇总 csv")
    _, second = ask_for_file(stage, K1_GROUP, K1_OFFICE, "#汇总 csv")
    assert first.name == second.name and first != second
    assert first.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8


def test_a_higher_office_may_name_any_unit_under_it(stage):
    text, path = ask_for_file(stage, CITY_GROUP, CITY_OFFICE, "#汇总 乙2县 建群 csv")
    assert text.startswith("【微信群矩阵建设情况】乙2县")
    assert "乙2县少先队大队辅导员群" in path.read_text(encoding="utf-8-sig")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#汇总 乙1县")
    assert reply.endswith("请发送 #汇总 乙1县 建群 xlsx（也可以是 csv、md、html）。")


def test_a_county_office_naming_its_neighbour_is_refused(stage):
    replies = stage.replies(K2_GROUP, K2_OFFICE, "#汇总 乙1县 建群 xlsx")
    assert replies == ["乙1县（K1） 不在你所在单位的管辖范围内，不能对其使用 #汇总。"]
    [entry] = audit(stage, "command.denied")
    assert (entry["actor"], entry["unit"], entry["reason"]) == (K2_OFFICE, "K1", "outside")
    assert audit(stage, "command.summary") == []


def test_a_county_office_cannot_ask_about_its_city(stage):
    assert "不在你所在单位的管辖范围内" in stage.reply(K1_GROUP, K1_OFFICE, "#汇总 甲市")


def test_a_school_counselor_is_no_office_and_is_refused(stage):
    reply = stage.reply(K1_GROUP, TEACHER, "#汇总 xlsx")
    assert reply == "只有单位办公室（群管理员）可以使用 #汇总。"
    assert audit(stage, "command.denied")[0]["reason"] == "not_office"


@pytest.mark.parametrize(
    "text, wrong",
    [
        ("#汇总 乙1县 财务", "“财务”不是有效的表名，可选：建群、媒体、通知、核查。"),
        ("#汇总 建群 pdf", "“pdf”不是有效的格式，可选：文本、xlsx、csv、md、html。"),
        ("#汇总 乙1县 建群 xlsx 今天", "命令后面多了“今天”。"),
    ],
)
def test_bad_input_names_the_problem_and_shows_the_form(stage, text, wrong):
    reply = stage.reply(K1_GROUP, K1_OFFICE, text)
    # the example in the group's own units, as #帮助 汇总 shows it there (issue 13)
    assert (
        reply
        == f"{wrong}\n用法：#汇总 [单位] [表名] [填报编号] [格式]\n例如：#汇总 乙1县 建群 xlsx"
    )


def test_the_notice_table_follows_the_relay(stage):
    assert "近期没有发到乙1县及下级的通知" in stage.reply(K1_GROUP, K1_OFFICE, "#汇总 通知")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 截止 17:00 请报送建群情况")
    stage.say(K1_GROUP, TEACHER, "收到")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#汇总 回执")
    assert reply.startswith("【通知回执情况】示范省（截至")
    assert "· T1 示范省，11月24日 17:00截止：送达 5/5 个群，回执 1/10 个单位" in reply
    assert "未回执：甲市、乙1县、乙2县" in reply
    assert reply.endswith("要完整表格，请发送 #汇总 通知 xlsx（也可以是 csv、md、html）。")
    text, path = ask_for_file(stage, K1_GROUP, K1_OFFICE, "#汇总 通知 xlsx")
    assert "回执 1/3 个单位" in text and path.name.startswith("通知回执情况表_乙1县_")
    ws = load_workbook(path)["通知回执"]
    assert ws["A5"].value.startswith("T1 示范省\n截止 11月24日 17:00\n乙1县范围")
    assert audit(stage, "command.summary")[-1]["table"] == "notice"


def test_the_audit_table_holds_what_the_audit_finds_today(stage):
    room = stage.room_of(K1_GROUP)
    for cid in stage.world.rooms[room].members:  # everyone sets the 群昵称 asked for…
        stage.world.set_nickname(room, cid, f"单位-{stage.world.contacts[cid].name}")
    stage.world.set_nickname(room, TEACHER, "老王")  # …but one
    text = stage.reply(K1_GROUP, K1_OFFICE, "#汇总 核查")
    assert text.startswith("【群审计问题汇总】乙1县（截至")
    assert "共 1 条问题，涉及 1 个单位：\n· 群昵称不规范（NICKNAME_FORMAT）1 条" in text
    text, path = ask_for_file(stage, K1_GROUP, K1_OFFICE, "#汇总 核查 csv")
    table = path.read_text(encoding="utf-8-sig")
    assert "NICKNAME_FORMAT" in table and "K1S1大辅" in table and "老王" in table
    newest = audit(stage, "command.summary")[0]
    assert (newest["table"], newest["format"]) == ("audit", "csv")


def test_help_offers_summary_and_register_as_open(stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#帮助")
    lines = [line for line in reply.splitlines() if line.startswith(("#汇总", "#登记"))]
    assert len(lines) == 2 and not any("即将开放" in line for line in lines)
    assert "即将开放" not in stage.reply(K1_GROUP, K1_OFFICE, "#帮助 汇总")


# --- #登记 -------------------------------------------------------------------------------------


def test_register_then_the_media_summary_shows_it(stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#登记 公众号 乙1县少先队")
    assert reply.startswith("已登记：乙1县 公众号：乙1县少先队。")
    assert media(stage) == {("K1", "mp", "乙1县少先队")}
    [command] = audit(stage, "command.register")
    [change] = audit(stage, "media.register")
    assert (command["actor"], command["unit"]) == (K1_OFFICE, "K1")
    assert (change["actor"], change["kind"], change["value"]) == (K1_OFFICE, "mp", "乙1县少先队")

    summary = stage.reply(K1_GROUP, K1_OFFICE, "#汇总 媒体")
    assert "应填报 1 个单位，已填报 1 个，未填报 0 个。" in summary
    assert "公众号 1" in summary
    _, path = ask_for_file(stage, K1_GROUP, K1_OFFICE, "#汇总 媒体 xlsx")
    ws = load_workbook(path).active
    assert ws is not None
    assert [ws.cell(6, 1).value, ws.cell(6, 4).value] == ["乙1县", "乙1县少先队"]


def test_registering_none_is_shown_as_none_not_as_missing(stage):
    assert stage.reply(K1_GROUP, K1_OFFICE, "#登记 无 抖音").startswith("已登记：乙1县 抖音：无。")
    assert stage.reply(K1_GROUP, K1_OFFICE, "#登记 视频号 无").startswith(
        "已登记：乙1县 视频号：无"
    )
    assert media(stage) == {("K1", "douyin", ""), ("K1", "channels", "")}
    assert "未填报 0 个" in stage.reply(K1_GROUP, K1_OFFICE, "#汇总 媒体")


def test_registering_again_replaces_and_says_what_it_was(stage):
    stage.reply(K1_GROUP, K1_OFFICE, "#登记 公众号 乙1县少先队")
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#登记 微信公众号 乙1县红领巾")
    assert reply.startswith("已登记：乙1县 公众号：乙1县红领巾（原为 乙1县少先队）。")
    assert media(stage) == {("K1", "mp", "乙1县红领巾")}


def test_a_higher_office_registers_for_a_county_by_naming_it(stage):
    reply = stage.reply(CITY_GROUP, CITY_OFFICE, "#登记 乙2县 快手 乙2县红领巾")
    assert reply.startswith("已登记：乙2县 快手：乙2县红领巾。")
    assert "未填报：甲市、乙1县、乙3县" in stage.reply(CITY_GROUP, CITY_OFFICE, "#汇总 媒体")


def test_a_county_office_cannot_register_for_its_neighbour(stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#登记 乙2县 快手 乙2县红领巾")
    assert reply == "乙2县（K2） 不在你所在单位的管辖范围内，不能对其使用 #登记。"
    assert media(stage) == set()


def test_a_school_counselor_cannot_register(stage):
    reply = stage.reply(K1_GROUP, TEACHER, "#登记 公众号 第一小学少先队")
    assert reply == "只有单位办公室（群管理员）可以使用 #登记。"
    assert media(stage) == set()


def test_a_province_unit_is_not_on_the_media_table_and_nothing_is_written(stage):
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#登记 公众号 示范省少先队")
    assert reply.startswith("网站及自媒体统计表只统计到市、县级单位，示范省是省级。")
    assert "#登记 单位代码 公众号 名称" in reply
    assert media(stage) == set()
    assert audit(stage, "command.register") == [] and audit(stage, "media.register") == []


@pytest.mark.parametrize(
    "text, wrong",
    [
        ("#登记 网站 不是网址", "网站网址 '不是网址' 不像网址"),
        ("#登记 无 乙1县少先队", "「无」后面请只写类型，如：无 公众号"),
    ],
)
def test_a_registration_that_cannot_be_right_says_why(stage, text, wrong):
    reply = stage.reply(K1_GROUP, K1_OFFICE, text)
    assert reply.startswith(wrong) and "例如：#登记 公众号" in reply
    assert media(stage) == set()


def test_a_paced_account_sends_the_file_after_the_text_when_its_turn_comes(
    province_db, bp, tmp_path
):
    exports = SummaryOptions(export_dir=tmp_path)
    with Stage(province_db, bp, accounts=("bot-1",), burst=1, summaries=exports) as slow:
        slow.provision()
        said = [line for line in slow.say(K1_GROUP, K1_OFFICE, "#汇总 md") if line.by_bot]
    assert [line.text.startswith("[文件]") for line in said] == [False, True]
    assert "| 乙1县" in Path(said[1].file).read_text(encoding="utf-8")
