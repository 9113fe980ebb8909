"""Structured returns (填报) in conversation: an office sends a form down its subtree, a person of
each child unit answers it with #填 (and corrects it until the deadline), the relay reminds
those who have not, and offices read who has (#进度 F1) and every unit's row (#汇总 F1 xlsx), of
their own subtree only. The world (conftest.py): 示范省 P → 甲市 C1 → 乙1–3县 K1–K3 → two
schools each; the stage clock starts at 09:00 on 2026-11-24 (Beijing)."""

from __future__ import annotations

import json

from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.rehearsal.stage import Line, Stage
from matrix.relay import RelayOptions
from matrix.tables import ACKNOWLEDGEMENT, FORM, FORM_ANSWER, NOTICE
from tests.chat.conftest import (
    BUILD_DAY,
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    K2_GROUP,
    K2_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    STRANGER,
    TEACHER,
    audit,
    bot_lines,
)

CITY_HEAD = "wxC1n006"  # 甲市's youth_dept_head: in the province group for 甲市
K1_LEAGUE = "wxK1n010"  # 乙1县's league staff: in the city group for 乙1县
TEACHER_2 = "wxK1S2n015"  # brigade counselor of 乙1县第2小学
FORM_TEXT = "#填报 少先队员人数统计 字段 人数 中队数 截止 17:00"


def issue(stage: Stage) -> list[Line]:
    """The province office sends form F1 (as notice T1) from its own group."""
    return bot_lines(stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, FORM_TEXT))


def answers(stage: Stage) -> dict[str, dict[str, str]]:
    with stage.engine.connect() as conn:
        rows = conn.execute(select(FORM_ANSWER.c.unit_code, FORM_ANSWER.c.answers)).all()
    return {code: json.loads(text) for code, text in rows}


def count(stage: Stage, table) -> int:
    with stage.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_form_goes_down_as_a_notice_and_each_unit_answers_it(stage):
    reply, *copies = issue(stage)
    assert reply.text.startswith(
        "填报 F1「少先队员人数统计」共 2 项：人数、中队数；11月24日 17:00 截止。"
        "各单位用“#填 F1 人数 中队数”回复"
    )
    assert "通知 T1 已受理，将发往 5 个群" in reply.text
    assert "收到 T1" not in reply.text  # a form is answered with #填
    assert len(copies) == 5
    assert copies[2].group == "乙1县少先队大队辅导员群"
    assert copies[2].text.startswith("【通知 T1】示范省\n【填报 F1】少先队员人数统计\n")
    assert "#填 F1 <人数> <中队数>" in copies[2].text
    assert copies[2].text.endswith("请各单位负责同志在本群按上文格式发送“#填 F1 …”，填报即回执。")

    said = stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4")
    assert said.startswith("已记录 乙1县第1小学 的填报 F1：人数 120；中队数 4。")
    assert answers(stage) == {"K1S1": {"人数": "120", "中队数": "4"}}
    [logged] = audit(stage, "returns.answer")
    assert (logged["actor"], logged["unit"], logged["form"], logged["revision"]) == (
        TEACHER,
        "K1S1",
        "F1",
        1,
    )
    [form] = audit(stage, "returns.form")
    assert (form["actor"], form["form"], form["fields"]) == (
        PROVINCE_OFFICE,
        "F1",
        ["人数", "中队数"],
    )


def test_an_answer_is_corrected_until_the_deadline_the_latest_wins(stage):
    issue(stage)
    stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4")
    said = stage.reply(K1_GROUP, TEACHER, "#填 F1\n中队数=5")
    assert said.startswith(
        "已记录 乙1县第1小学 的填报 F1（第 2 次，已更正，以此为准）：人数 120；中队数 5。"
    )
    assert answers(stage) == {"K1S1": {"人数": "120", "中队数": "5"}}
    assert [e["revision"] for e in audit(stage, "returns.answer")] == [2, 1]
    stage.say(K1_GROUP, K1_OFFICE, "<快进 17:01>")
    late = stage.reply(K1_GROUP, TEACHER, "#填 F1 121 5")
    assert late == ("填报 F1 已于 11月24日 17:00 截止，不能再填报或更正。如需补报，请联系示范省。")
    assert answers(stage)["K1S1"]["人数"] == "120"


def test_progress_and_the_table_show_who_has_answered(stage, tmp_path):
    issue(stage)
    stage.reply(PROVINCE_GROUP, CITY_HEAD, "#填 F1 3000 80")
    stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4")
    progress = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 F1")
    assert progress.startswith("填报 F1「少先队员人数统计」（示范省，通知 T1）进度\n")
    assert "已填报 2/10 个单位" in progress
    assert "未填报：乙2县第1小学" in progress or "未填报：乙1县第2小学" in progress

    lines = bot_lines(stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#汇总 F1 xlsx"))
    assert lines[0].text.startswith(
        "填报 F1「少先队员人数统计」汇总（示范省范围）：已填报 2/10 个单位"
    )
    assert len(lines) == 2  # the text, then the file
    [path] = list((tmp_path / "exports").rglob("*.xlsx"))
    assert path.name.startswith("填报汇总表_F1_示范省_")
    sheet = load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "少先队员人数统计汇总表"
    assert rows[2] == (
        "序号",
        "上级单位",
        "单位",
        "层级",
        "人数",
        "中队数",
        "填报人",
        "填报时间",
        "更正次数",
    )
    by_unit = {r[2]: r for r in rows[3:13]}
    assert by_unit["甲市"][4:6] == ("3000", "80")
    assert by_unit["乙1县第1小学"][4:6] == ("120", "4")
    assert by_unit["乙2县"][4:6] == (None, None)


def test_a_county_sees_only_its_own_subtree(stage):
    issue(stage)
    stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4")
    text = stage.replies(K1_GROUP, K1_OFFICE, "#汇总 F1")[0]
    assert text.startswith("填报 F1「少先队员人数统计」汇总（乙1县范围）：已填报 1/3 个单位")
    assert "乙2县" not in text
    progress = stage.reply(K1_GROUP, K1_OFFICE, "#进度 F1")
    assert "乙1县范围" in progress and "已填报 1/3 个单位" in progress


def test_an_answer_is_the_receipt_and_a_plain_ack_is_not(stage):
    issue(stage)
    stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4")
    assert count(stage, ACKNOWLEDGEMENT) == 1
    reply = stage.reply(K1_GROUP, TEACHER_2, "#收到 T1")
    assert reply.startswith("通知 T1 是填报 F1，填报即回执，回复“收到”不计。")
    assert count(stage, ACKNOWLEDGEMENT) == 1


def test_reminders_go_to_the_units_that_have_not_answered(stage):
    issue(stage)
    stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4")
    reminders = bot_lines(stage.say(K1_GROUP, K1_OFFICE, "<快进 15:00>"))
    k1 = next(r for r in reminders if r.group == "乙1县少先队大队辅导员群")
    assert (
        "以下单位尚未填报 F1：乙1县第2小学。\n请负责同志按通知格式发送“#填 F1 …”填报。" in k1.text
    )
    assert k1.mentions == (TEACHER_2,)


# --- bad input: answered in Chinese, nothing written ------------------------------------------


def nothing_issued(stage: Stage) -> bool:
    return count(stage, FORM) == 0 and count(stage, NOTICE) == 0


def test_a_form_without_fields_or_a_deadline_is_refused(stage):
    for text, said in [
        ("#填报 人数统计 截止 17:00", "填报需要写明字段和截止时间"),
        ("#填报 人数统计 字段 人数", "填报需要写明字段和截止时间"),
        ("#填报 字段 人数 截止 17:00", "填报缺少标题"),
        ("#填报 人数统计 字段 截止 17:00", "填报没有字段"),
        ("#填报 人数统计 字段 人数 人数 截止 17:00", "字段“人数”重复了"),
        ("#填报 人数统计 字段 人数 截止 下周", "截止后面缺少时间"),
        ("#填报 人数统计 字段 人数 截止 17:00 请按时", "看不懂截止时间"),
        ("#填报 人数统计 字段 " + "字" * 17 + " 截止 17:00", "字段名“"),
        (
            "#填报 人数统计 字段 " + " ".join(f"项{i}" for i in range(21)) + " 截止 17:00",
            "最多 20 个字段",
        ),
        ("#填报 " + "长" * 41 + " 字段 人数 截止 17:00", "填报标题太长（41 字）"),
    ]:
        reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, text)
        assert said in reply, (text, reply)
    assert nothing_issued(stage)


def test_a_deadline_in_the_past_is_refused(stage):
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#填报 人数统计 字段 人数 截止 8:00")
    assert reply.startswith("截止时间 11月24日 08:00 已经过去")
    assert nothing_issued(stage)


def test_only_an_office_of_the_groups_unit_sends_a_form(stage):
    for group, person in [(K1_GROUP, TEACHER), (CITY_GROUP, K1_LEAGUE)]:
        assert stage.reply(group, person, FORM_TEXT) == "只有单位办公室（群管理员）可以使用 #填报。"
    assert nothing_issued(stage)


def test_answers_that_do_not_fit_the_form_are_refused_and_change_nothing(stage):
    issue(stage)
    stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4")
    for text, said in [
        ("#填 F1 120", "填报 F1 有 2 项（人数、中队数），你填了 1 项。请按顺序填写全部 2 项"),
        ("#填 F1 120 4 9", "你填了 3 项"),
        ("#填 F1\n人数=130\n班级数=6", "填报 F1 没有“班级数”这一项。可填的项：人数、中队数"),
        ("#填 F1\n人数=", "“人数”没有填写内容"),
        ("#填 F1\n人数=" + "9" * 101, "“人数”的内容太长（101 字）。每项请在 100 字以内"),
        ("#填 F1\n人数=130\n5", "“字段=值”和按顺序填写不能混用"),
        ("#填 120 4", "请写上填报编号"),
        ("#填 F1", "没有填写内容"),
    ]:
        reply = stage.reply(K1_GROUP, TEACHER, text)
        assert said in reply, (text, reply)
    assert answers(stage) == {"K1S1": {"人数": "120", "中队数": "4"}}
    assert len(audit(stage, "returns.answer")) == 1


def test_an_unknown_form_or_one_this_group_never_got_is_refused(stage):
    issue(stage)
    assert stage.reply(K1_GROUP, TEACHER, "#填 F9 1 2") == (
        "本群没有收到过填报 F9。请核对填报编号（见填报通知，如 F3）。"
    )
    stage.say(K1_GROUP, K1_OFFICE, "#填报 县级统计 字段 人数 截止 17:00")  # F2, K1's own
    # 乙2县's people never got F2: it is someone else's form
    reply = stage.reply(CITY_GROUP, "wxK2n020", "#填 F2 5")
    assert reply.startswith("本群没有收到过填报 F2")
    assert "没有编号为 F9 的填报" in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 F9")
    assert "没有编号为 F9 的填报" in stage.replies(PROVINCE_GROUP, PROVINCE_OFFICE, "#汇总 F9")[0]
    assert answers(stage) == {}


def test_a_stranger_or_the_issuing_unit_cannot_answer(stage):
    issue(stage)
    stage.say(K1_GROUP, STRANGER, "<加入>")
    assert "还没有绑定名册" in stage.reply(K1_GROUP, STRANGER, "#填 F1 1 2")
    assert "只有本群下属单位的人员可以填报 F1" in stage.reply(K1_GROUP, K1_OFFICE, "#填 F1 1 2")
    assert answers(stage) == {}


def test_an_office_outside_the_forms_subtree_sees_neither_progress_nor_rows(stage):
    stage.say(K1_GROUP, K1_OFFICE, "#填报 县级统计 字段 人数 截止 17:00")
    stage.reply(K1_GROUP, TEACHER, "#填 F1 120")
    assert "不在这条通知的下发范围内" in stage.reply(K2_GROUP, K2_OFFICE, "#进度 F1")
    reply = stage.replies(K2_GROUP, K2_OFFICE, "#汇总 F1 xlsx")[0]
    assert reply.startswith("填报 F1 由乙1县发出，乙2县不在其范围内")
    # the city above sees all of it
    assert "已填报 1/2 个单位" in stage.replies(CITY_GROUP, CITY_OFFICE, "#汇总 F1")[0]


def test_a_withdrawn_form_takes_no_more_answers(stage):
    issue(stage)
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1 字段有误")
    assert stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4").startswith("填报 F1 已撤回，不再收取")
    assert answers(stage) == {}


def test_a_large_form_waits_for_confirm_like_a_notice(province_db, bp):
    options = RelayOptions(confirm_above=2)  # the stage's five relay groups make it large
    with Stage(province_db, bp, accounts=("bot-1",), relay=options, start=BUILD_DAY) as s:
        s.provision()
        [held] = s.replies(PROVINCE_GROUP, PROVINCE_OFFICE, FORM_TEXT)
        assert held.startswith("填报 F1「少先队员人数统计」")
        assert "群数较多，请先核对，确认后才发出" in held
        # not sent yet: nobody has it to answer
        assert s.reply(K1_GROUP, TEACHER, "#填 F1 120 4").startswith("本群没有收到过填报 F1")
        lines = bot_lines(s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#确认"))
        assert [x.text.split("\n")[1] for x in lines[1:]] == ["【填报 F1】少先队员人数统计"] * 5
        assert s.reply(K1_GROUP, TEACHER, "#填 F1 120 4").startswith("已记录 乙1县第1小学")


def test_at_the_deadline_offices_hear_which_units_have_not_filled_it_in(stage):
    issue(stage)
    stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4")
    deadline = bot_lines(stage.say(K1_GROUP, K1_OFFICE, "<快进 17:00>"))
    k1 = next(
        x.text
        for x in deadline
        if x.group == "乙1县少先队大队辅导员群" and x.text.startswith("【截止通报】")
    )
    assert "乙1县下属仍有 1 个单位未填报 F1" in k1
    assert k1.endswith("请督促以上单位发送“#填 F1 …”填报。")


def test_characters_no_spreadsheet_may_hold_never_break_the_files(stage, tmp_path):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#填报 统计\u2028=1+2 字段 人数 中队数 截止 17:00")
    stage.reply(K1_GROUP, TEACHER, "#填 F1 12\uffff 4")
    assert answers(stage)["K1S1"] == {"人数": "12", "中队数": "4"}
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#汇总 F1 xlsx")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#汇总 F1 csv")
    [book] = list((tmp_path / "exports").rglob("*.xlsx"))
    load_workbook(book)  # opens: nothing XML forbids is in it
    [table] = list((tmp_path / "exports").rglob("*.csv"))
    lines = table.read_bytes().decode("utf-8-sig").split("\r\n")
    assert not [line for line in lines if line and line[0] in "=+-@"]
    assert '"统计\u2028=1+2汇总表"' in lines[0]


def test_a_forms_notice_is_withdrawn_and_sent_again_not_corrected(stage):
    issue(stage)
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 截止 18:00 请认真填报")
    assert reply == "通知 T1 是填报 F1，不能更正。要改填报，请发送“#撤回 T1”后重新发 #填报。"
    assert count(stage, NOTICE) == 1
    assert stage.reply(K1_GROUP, TEACHER, "#填 F1 120 4").startswith("已记录 乙1县第1小学")


def test_a_form_takes_no_files(stage):
    stage.say(K1_GROUP, K1_OFFICE, "<文件 表格.xlsx 1KB>")
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#填报 统计 字段 人数 截止 17:00 附件")
    assert reply.startswith("填报不能带附件。文件请先用 #通知 … 附件 下发")
    assert count(stage, FORM) == 0 and count(stage, NOTICE) == 0


def test_the_form_id_may_be_followed_by_a_full_width_space_a_tab_or_a_colon(stage):
    issue(stage)
    for typed in ("#填 F1\u3000120\u30004", "#填 F1\t121\t4", "#填 F1：122 4"):
        assert stage.reply(K1_GROUP, TEACHER, typed).startswith("已记录 乙1县第1小学")
    assert answers(stage)["K1S1"] == {"人数": "122", "中队数": "4"}
