"""Every command in conversation: an admin (or a teacher, or a stranger) types in a simulated
group; the test reads the bot's reply and the database. People are named in conftest.py."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.rehearsal.stage import Stage
from matrix.models import JoinRequest
from matrix.provisioning.binding import lookup
from matrix.provisioning.join_review import TimeoutPolicy, pending
from matrix.roster import import_roster, read_roster
from tests.chat.conftest import (
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    K2_GROUP,
    K2_OFFICE,
    NEWCOMER,
    NEWCOMER_NAME,
    NEWCOMER_PHONE,
    PROVINCE_OFFICE,
    STRANGER,
    TEACHER,
    TEACHER_PHONE,
    audit,
    newcomer_roster,
)

OFFICE_ONLY = [
    "#建群",
    "#确认",
    "#核查",
    "#同意",
    "#拒绝",
    "#解绑",
    "#通知",
    "#进度",
    "#汇总",
    "#登记",
    "#日志",
]


def held(stage: Stage) -> list[tuple[int, str, str]]:
    """Every join request: number, contact, status."""
    t = JoinRequest.__table__  # type: ignore[attr-defined]
    with stage.engine.connect() as conn:
        rows = conn.execute(select(t.c.id, t.c.contact_id, t.c.status).order_by(t.c.id))
        return [tuple(r) for r in rows]


def who(stage: Stage, contact: str) -> str | None:
    """The roster name the bot takes ``contact`` for, or None."""
    with stage.engine.connect() as conn:
        person = lookup(conn, contact)
        if person is None:
            return None
        return stage.bot.authority.asker(conn, contact).person_name


def stranger_joins(stage: Stage, who: str = STRANGER) -> str:
    [notice] = stage.replies(K1_GROUP, who, "<加入>")
    return notice


# --- 帮助 / help --------------------------------------------------------------------------------


def test_help_lists_office_commands_for_the_office(stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#帮助")
    assert reply.startswith("K1office_staff，你在本群可以使用：")
    for name in ["#帮助", "#绑定", "#收到", "#上报", *OFFICE_ONLY]:
        assert name in reply
    assert "#核查（audit）" in reply and "即将开放" not in reply


def test_help_shows_a_teacher_only_what_a_member_may_run(stage):
    reply = stage.reply(K1_GROUP, TEACHER, "#help")
    assert "#收到" in reply and "#上报" in reply
    for name in OFFICE_ONLY:
        assert name not in reply


def test_help_shows_a_stranger_only_help_and_bind(stage):
    stranger_joins(stage)
    reply = stage.reply(K1_GROUP, STRANGER, "#帮助")
    assert reply.startswith("你还没有绑定名册")
    assert "#帮助" in reply and "#绑定" in reply
    for name in ["#收到", "#上报", *OFFICE_ONLY]:
        assert name not in reply


def test_help_for_one_command_shows_its_form_and_example(stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#帮助 同意")
    assert "用法：#同意 <编号> [人员]" in reply
    assert "例如：#同意 3 13900000001" in reply


def test_help_for_a_command_the_asker_may_not_run_says_so(stage):
    assert "你目前不能使用" in stage.reply(K1_GROUP, TEACHER, "#帮助 核查")


def test_help_for_an_unknown_command_is_a_usage_error(stage):
    reply = stage.reply(K1_GROUP, TEACHER, "#帮助 跳舞")
    assert "“跳舞”不是有效的命令" in reply and "用法：#帮助 [命令]" in reply


def test_an_unknown_command_suggests_close_names(stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#hepl")
    assert "没有 #hepl 这个命令" in reply and "#help" in reply


def test_ordinary_chat_gets_no_reply(stage):
    assert stage.replies(K1_GROUP, TEACHER, "大家好，今天的活动几点开始？") == []


@pytest.mark.parametrize("text", ["#核查", "#通知 明天开会", "#汇总", "#登记 抖音 abc", "#建群"])
def test_a_teacher_cannot_run_office_commands(stage, text):
    assert "只有单位办公室（群管理员）可以使用" in stage.reply(K1_GROUP, TEACHER, text)
    assert audit(stage, "command.denied")[0]["reason"] == "not_office"


@pytest.mark.parametrize(
    "text, answer",
    [
        ("#收到", "本群还没有需要回执的通知"),
        ("#收到 T3", "本群没有收到过通知 T3"),
        ("#上报 已完成建队仪式", "已上报乙1县办公室（已私信 2 位办公室同志"),
    ],
)
def test_members_reach_ack_and_report(stage, text, answer):
    assert answer in stage.replies(K1_GROUP, TEACHER, text)[0]


@pytest.mark.parametrize("text", ["#收到", "#上报 你好"])
def test_strangers_cannot_ack_or_report(stage, text):
    stranger_joins(stage)
    assert "还没有绑定名册" in stage.reply(K1_GROUP, STRANGER, text)


def test_a_bare_ack_is_silent_until_it_does_something(stage):
    # people say 收到 all day: no 即将开放 and no refusal for each of them
    stranger_joins(stage)
    assert stage.replies(K1_GROUP, TEACHER, "收到") == []
    assert stage.replies(K1_GROUP, STRANGER, "收到！") == []


def test_hash_words_that_are_no_command_are_left_alone(stage):
    assert stage.replies(K1_GROUP, TEACHER, "#接龙\n1. K1S1大辅") == []
    assert stage.replies(K1_GROUP, TEACHER, "#今日话题 建队日") == []


@pytest.mark.parametrize(
    "text, wrong, form",
    [
        ("#核查 火星县", "找不到单位“火星县”", "#核查 [单位]"),
        (
            "#汇总 K1 建群 pdf",
            "“pdf”不是有效的格式，可选：文本、xlsx、csv、md、html",
            "#汇总 [单位] [表名] [填报编号] [格式]",
        ),
        ("#登记 微博 abc", "“微博”不是有效的类型", "#登记 [单位] <类型> <名称或网址>"),
        ("#登记 公众号", "缺少名称或网址", "#登记 [单位] <类型> <名称或网址>"),
        ("#通知", "缺少正文", "#通知 <正文>"),
        ("#确认 T1 马上", "后面多了“马上”", "#确认 [通知编号]"),
        ("#同意", "缺少编号", "#同意 <编号> [人员]"),
        ("#拒绝 张三", "“张三”不是有效的编号，应为数字", "#拒绝 <编号> [理由]"),
        ("#绑定 12345", "“12345”不是有效的手机号，应为11位手机号", "#绑定 <手机号>"),
    ],
)
def test_bad_input_says_what_was_wrong_and_shows_the_form(stage, text, wrong, form):
    reply = stage.reply(K1_GROUP, K1_OFFICE, text)
    assert wrong in reply
    assert f"用法：{form}" in reply and "例如：" in reply


def test_optional_parameters_can_be_left_out(stage):
    assert stage.reply(K1_GROUP, K1_OFFICE, "#汇总 媒体").startswith(
        "【网站及自媒体建设情况】乙1县"
    )
    text, attachment = stage.replies(K1_GROUP, K1_OFFICE, "#汇总 xlsx")
    assert text.startswith("【微信群矩阵建设情况】乙1县") and attachment.endswith(".xlsx")


# --- the subtree rule -------------------------------------------------------------------------


def test_an_office_cannot_act_on_another_county(stage):
    reply = stage.reply(K2_GROUP, K2_OFFICE, "#核查 K1")
    assert reply == "乙1县（K1） 不在你所在单位的管辖范围内，不能对其使用 #核查。"
    [entry] = audit(stage, "command.denied")
    assert (entry["actor"], entry["unit"], entry["reason"]) == (K2_OFFICE, "K1", "outside")
    assert audit(stage, "command.audit") == []


def test_an_office_in_another_units_group_cannot_act_on_that_group(stage):
    stage.say(K1_GROUP, K2_OFFICE, "<加入>")  # on the roster, but not for this group: held
    stage.replies(K1_GROUP, STRANGER, "<加入>")
    assert "不在你所在单位的管辖范围内" in stage.reply(K1_GROUP, K2_OFFICE, "#同意 2")
    assert held(stage) == [(1, K2_OFFICE, "held"), (2, STRANGER, "held")]


def test_a_higher_office_acts_anywhere_below_it(stage):
    assert stage.reply(CITY_GROUP, "wxC1n004", "#核查 K1S2").startswith("【核查】乙1县第2小学")
    stage.say(K1_GROUP, PROVINCE_OFFICE, "<加入>")
    stranger_joins(stage)
    assert "已同意" in stage.reply(K1_GROUP, PROVINCE_OFFICE, "#同意 2")


def test_a_county_office_cannot_act_on_its_city(stage):
    assert "不在你所在单位的管辖范围内" in stage.reply(K1_GROUP, K1_OFFICE, "#核查 C1")


def test_renaming_yourself_to_an_admins_name_gains_nothing(stage):
    stranger_joins(stage)
    stage.world.rename(STRANGER, "K1office_staff")
    stage.world.set_nickname(stage.room_of(K1_GROUP), STRANGER, "乙1县-K1office_staff")
    assert "还没有绑定名册" in stage.reply(K1_GROUP, STRANGER, "#同意 1")
    assert "还没有绑定名册" in stage.reply(K1_GROUP, STRANGER, "#核查")
    assert "#同意" not in stage.reply(K1_GROUP, STRANGER, "#帮助")
    assert held(stage) == [(1, STRANGER, "held")]
    assert audit(stage, "command.approve") == []


# --- join review: held, 同意, 拒绝 --------------------------------------------------------------


def test_a_stranger_who_joins_is_held_and_the_office_is_mentioned(stage):
    lines = stage.say(K1_GROUP, STRANGER, "<加入>")
    notice = lines[-1]
    assert notice.by_bot and set(notice.mentions) == {"wxK1n008", "wxK1n009"}
    assert notice.text == (
        "以下入群人员待管理员审核：\n"
        "  1号 wxid_stranger（不在名册中）\n"
        "管理员请回复 #同意 1（可加手机号或姓名绑定名册）或 #拒绝 1；24 小时内未处理将自动移出。"
    )
    assert held(stage) == [(1, STRANGER, "held")]
    [entry] = audit(stage, "join.hold")
    assert (entry["contact"], entry["unit"], entry["reason"]) == (STRANGER, "K1", "unknown")


def test_a_roster_member_expected_here_is_welcomed_and_asked_for_the_nickname(stage):
    stage.say(K1_GROUP, TEACHER, "<退出>")
    reply = stage.reply(K1_GROUP, TEACHER, "<加入>")
    assert reply == "欢迎 K1S1大辅入群！请把群昵称改为“单位-姓名”。"
    assert held(stage) == []
    assert audit(stage, "join.welcome")[0]["contact"] == TEACHER


def test_someone_on_the_roster_but_not_for_this_group_is_held_too(stage):
    assert "（不在名册中）" in stage.reply(K1_GROUP, "wxK1S1n012x", "<加入>")  # an unknown id
    reply = stage.reply(K1_GROUP, PROVINCE_OFFICE, "<加入>")
    assert "2号 Poffice_staff0（在名册上，但按规则不属于本群）" in reply


def test_approve_lets_the_joiner_stay_and_is_logged(stage):
    stranger_joins(stage)
    assert stage.reply(K1_GROUP, K1_OFFICE, "#同意 1") == "已同意 wxid_stranger 入群。"
    assert held(stage) == [(1, STRANGER, "approved")]
    [entry] = audit(stage, "command.approve")
    assert (entry["actor"], entry["unit"], entry["joiner"]) == (K1_OFFICE, "K1", STRANGER)
    # decided once: a second approval finds nobody waiting
    assert "没有编号为 1 的待审核入群人员" in stage.reply(K1_GROUP, K1_OFFICE, "#同意 1")


def test_approve_with_a_phone_binds_a_teacher_who_changed_their_wechat(stage):
    stage.say(K1_GROUP, TEACHER, "<退出>")  # gone with the old account
    stage.replies(K1_GROUP, "wx_new_phone", "<加入>")
    reply, told = stage.replies(K1_GROUP, K1_OFFICE, f"#同意 1 {TEACHER_PHONE}")
    assert reply == "已同意 wx_new_phone 入群，并绑定名册人员 K1S1大辅（乙1县第1小学）。"
    assert told.startswith(
        "【绑定通知】名册人员 K1S1大辅"
    )  # in the city group, see test_binding_trust
    assert who(stage, "wx_new_phone") == "K1S1大辅"
    assert who(stage, TEACHER) is None  # the account they replaced no longer speaks for them
    assert stage.reply(K1_GROUP, "wx_new_phone", "#帮助").startswith("K1S1大辅，你在本群可以使用")
    [entry] = audit(stage, "binding.bind")
    assert (entry["actor"], entry["method"], entry["contact"]) == (
        K1_OFFICE,
        "admin",
        "wx_new_phone",
    )
    assert "本群还没有需要回执的通知" in stage.reply(K1_GROUP, "wx_new_phone", "#收到")


def test_approve_binding_someone_outside_the_group_unit_fails_and_changes_nothing(stage):
    stranger_joins(stage)
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#同意 1 13900000022")  # a K2 school's counselor
    assert "找不到“13900000022”" in reply
    assert held(stage) == [(1, STRANGER, "held")]


def test_approve_refuses_to_steal_the_identity_of_someone_in_the_group(stage):
    stranger_joins(stage)
    reply = stage.reply(K1_GROUP, K1_OFFICE, f"#同意 1 {TEACHER_PHONE}")
    assert reply.startswith("K1S1大辅 已绑定另一个微信，且该微信就在本群")
    assert who(stage, STRANGER) is None and who(stage, TEACHER) == "K1S1大辅"
    assert held(stage) == [(1, STRANGER, "held")]


def test_an_unknown_number_lists_who_is_waiting(stage):
    stranger_joins(stage)
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#同意 7")
    assert reply == "本群没有编号为 7 的待审核入群人员。本群待审核：1（wxid_stranger）。"


def test_reject_removes_the_joiner(stage):
    stranger_joins(stage)
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#拒绝 1 非本县教师")
    assert reply == "已拒绝 wxid_stranger 入群（非本县教师），已移出本群。"
    assert STRANGER not in stage.world.rooms[stage.room_of(K1_GROUP)].members
    assert held(stage) == [(1, STRANGER, "rejected")]
    assert audit(stage, "command.reject")[0]["reason"] == "非本县教师"


def test_reject_where_the_bot_is_not_admin_asks_a_person_to_remove(stage):
    room = stage.world.rooms[stage.room_of(K1_GROUP)]
    room.owner_id = K1_OFFICE  # the county office built this group itself
    stranger_joins(stage)
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#拒绝 1")
    assert "请管理员手动将其移出" in reply
    assert STRANGER in room.members and held(stage) == [(1, STRANGER, "rejected")]


def test_a_held_joiner_who_leaves_needs_no_decision(stage):
    stranger_joins(stage)
    stage.say(K1_GROUP, STRANGER, "<退出>")
    assert held(stage) == [(1, STRANGER, "left")]
    assert "没有编号为 1" in stage.reply(K1_GROUP, K1_OFFICE, "#拒绝 1")


def test_a_joiner_who_left_and_comes_back_is_held_again_on_the_same_number(stage):
    stranger_joins(stage)
    stage.say(K1_GROUP, STRANGER, "<退出>")
    assert stage.replies(K1_GROUP, STRANGER, "<加入>") == []  # the admins were told already
    with stage.engine.connect() as conn:
        group = conn.execute(select(JoinRequest.group_id)).scalars().first()
        assert [r.id for r in pending(conn, group)] == [1]
    assert "已同意 wxid_stranger 入群" in stage.reply(K1_GROUP, K1_OFFICE, "#同意 1")


def test_an_approved_joiner_who_comes_back_is_welcomed(stage):
    stranger_joins(stage)
    stage.reply(K1_GROUP, K1_OFFICE, "#同意 1")
    stage.say(K1_GROUP, STRANGER, "<退出>")
    assert stage.reply(K1_GROUP, STRANGER, "<加入>").startswith("欢迎 ")


def test_approve_outside_a_matrix_group_says_where_to_use_it(stage):
    room = stage.world.create_room("bot-1", "闲聊群", [K1_OFFICE, TEACHER])
    reply = stage.reply("闲聊群", K1_OFFICE, "#同意 1")
    assert reply.startswith("本群不在群矩阵中，不能使用 #同意")
    assert "你在本群可以使用" in stage.reply("闲聊群", K1_OFFICE, "#帮助")
    assert stage.replies("闲聊群", STRANGER, "<加入>") == []  # no review outside the matrix
    assert room in stage.world.rooms


# --- 绑定 / bind --------------------------------------------------------------------------------


def test_a_newcomer_binds_their_wechat_with_their_phone_and_is_let_in(newcomer_stage):
    stage = newcomer_stage
    assert "1号 wxid_newcomer（不在名册中）" in stage.reply(K1_GROUP, NEWCOMER, "<加入>")
    _, reply, told = stage.say(K1_GROUP, NEWCOMER, f"#绑定 {NEWCOMER_PHONE}")
    # the group reads it: it names nobody (the office is told in its own group)
    assert reply.text == "绑定成功。入群审核已通过。发送 #帮助 查看你可以使用的命令。"
    assert told.text.startswith("【绑定通知】") and told.group == "甲市县级少工委负责同志群"
    assert held(stage) == [(1, NEWCOMER, "approved")]  # no timeout will remove them now
    [attempt] = audit(stage, "binding.attempt")
    assert (attempt["outcome"], attempt["phone"]) == ("bound", "139****0015")
    assert NEWCOMER_PHONE not in str(audit(stage, "binding.bind"))
    assert stage.reply(K1_GROUP, NEWCOMER, "#帮助").startswith("K1S2大辅，你在本群可以使用")


def test_a_binding_made_in_chat_survives_a_roster_import(newcomer_stage, tmp_path):
    """The roster still has no 微信号 for the newcomer: importing it again (with another change
    in it) must not undo what was bound in chat."""
    stage = newcomer_stage
    stage.replies(K1_GROUP, NEWCOMER, "<加入>")
    assert stage.replies(K1_GROUP, NEWCOMER, f"#绑定 {NEWCOMER_PHONE}")[0].startswith("绑定成功")
    units, persons = newcomer_roster(tmp_path / "again")
    with persons.open("a", encoding="utf-8") as fh:
        fh.write("K1S1,新来的中辅,core_squadron_counselor,13900000999,wxK1S1n999\n")
    report = import_roster(stage.engine, read_roster(units, persons, stage.bp), stage.bp)
    assert report.persons.added  # the import did change the roster
    assert who(stage, NEWCOMER) == NEWCOMER_NAME
    assert stage.reply(K1_GROUP, NEWCOMER, "#帮助").startswith("K1S2大辅，你在本群可以使用")
    assert "你的微信已绑定名册人员 K1S2大辅" in stage.reply(
        K1_GROUP, NEWCOMER, f"#绑定 {NEWCOMER_PHONE}"
    )


RECEIVED = "已收到。如信息无误，本单位办公室核实后会通知你；如有疑问，请联系本群管理员。"


def test_bind_refuses_a_phone_already_bound_to_someone_without_naming_them(stage):
    stranger_joins(stage)
    assert stage.reply(K1_GROUP, STRANGER, f"#绑定 {TEACHER_PHONE}") == RECEIVED
    assert who(stage, STRANGER) is None and who(stage, TEACHER) == "K1S1大辅"
    assert audit(stage, "binding.attempt")[0]["reason"] == "taken"


def test_bind_refuses_an_unknown_phone_with_the_same_words(stage):
    stranger_joins(stage)
    assert stage.reply(K1_GROUP, STRANGER, "#绑定 13800000000") == RECEIVED
    assert audit(stage, "binding.attempt")[0]["reason"] == "none"


def test_bind_refuses_someone_already_bound(stage):
    assert "你的微信已绑定名册人员 K1S1大辅" in stage.reply(K1_GROUP, TEACHER, "#绑定 13900000013")


def test_bind_refuses_a_person_of_another_unit_than_the_groups(newcomer_stage):
    stage = newcomer_stage
    stage.replies(K2_GROUP, NEWCOMER, "<加入>")
    assert stage.reply(K2_GROUP, NEWCOMER, f"#绑定 {NEWCOMER_PHONE}") == RECEIVED
    assert who(stage, NEWCOMER) is None
    assert audit(stage, "binding.attempt")[0]["reason"] == "elsewhere"


# --- room events ------------------------------------------------------------------------------


def test_a_renamed_group_is_told_its_official_name(stage):
    room = stage.room_of(K1_GROUP)
    stage.run(stage.world.change_topic(room, TEACHER, "摸鱼群"))
    stage.settle()
    last = stage.world.messages(room)[-1]
    assert (
        last.text
        == "群名被改为“摸鱼群”。按群矩阵规定，本群名称应为“乙1县少先队大队辅导员群”，请群主改回。"
    )


def test_the_city_group_holds_county_staff_and_answers_them(stage):
    assert "#收到" in stage.reply(CITY_GROUP, "wxK1n010", "#帮助")


# --- join review: the timeout policy, on the bot's clock ----------------------------------------

HOUR = 3600.0


def test_a_held_joiner_nobody_decides_on_is_removed_when_the_time_is_up(stage):
    stranger_joins(stage)
    assert stage.advance(23 * HOUR) == []
    [line] = stage.advance(2 * HOUR)
    assert line.text == "入群审核逾期：wxid_stranger（1号）无人处理，已移出本群。"
    assert set(line.mentions) == {"wxK1n008", "wxK1n009"}
    assert STRANGER not in stage.world.rooms[stage.room_of(K1_GROUP)].members
    assert held(stage) == [(1, STRANGER, "timed_out")]
    assert audit(stage, "join.timeout")[0]["policy"] == "remove"
    assert stage.advance(48 * HOUR) == []  # decided once


def test_a_decision_in_time_is_not_overruled_by_the_timeout(stage):
    stranger_joins(stage)
    stage.reply(K1_GROUP, K1_OFFICE, "#同意 1")
    assert stage.advance(30 * HOUR) == []
    assert STRANGER in stage.world.rooms[stage.room_of(K1_GROUP)].members


@pytest.mark.parametrize(
    "policy, then, says, status",
    [
        (
            "keep",
            "默认保留",
            "入群审核逾期：wxid_stranger（1号）无人处理，按规定保留在本群；如有异议请管理员处理。",
            "approved",
        ),
        (
            "remind",
            "再次提醒",
            "提醒：wxid_stranger（1号）仍待审核，请回复 #同意 1 或 #拒绝 1。",
            "held",
        ),
    ],
)
def test_the_configured_policy_keeps_or_reminds(province_db, bp, policy, then, says, status):
    with Stage(province_db, bp, join_policy=TimeoutPolicy(2, policy)) as stage:
        stage.provision()
        assert stranger_joins(stage).endswith(f"2 小时内未处理将{then}。")
        assert [line.text for line in stage.advance(3 * HOUR)] == [says]
        assert held(stage) == [(1, STRANGER, status)]
        assert STRANGER in stage.world.rooms[stage.room_of(K1_GROUP)].members
        if policy == "remind":  # and again after another period
            assert [line.text for line in stage.advance(3 * HOUR)] == [says]


def test_help_examples_name_units_of_the_loaded_roster(stage):
    """Not the test world's 乙1县 everywhere: the asker's own units."""
    city = stage.reply(CITY_GROUP, CITY_OFFICE, "#帮助 核查")
    assert "例如：#核查 乙1县" in city  # 甲市's first county, as it happens
    county = stage.reply(K1_GROUP, K1_OFFICE, "#帮助 核查")
    assert "例如：#核查 乙1县第1小学" in county
    assert "例如：#汇总 乙1县 建群 xlsx" in stage.reply(K1_GROUP, K1_OFFICE, "#帮助 汇总")
    assert "例如：#登记 公众号 乙1县少先队" in stage.reply(K1_GROUP, K1_OFFICE, "#帮助 登记")
