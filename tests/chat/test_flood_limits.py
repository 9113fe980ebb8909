"""Limits, as a hostile group member meets them: a flood gets one 请稍后再试 and then silence
until the cooldown is over (on the stage's clock), join/leave churn makes one hold notice, and
no reply repeats more than about 100 characters of what was typed. Defaults throughout: the
tests also show that they are far above what a person types."""

from __future__ import annotations

from sqlalchemy import select

from bot.config import LimitOptions
from bot.rehearsal.stage import Stage
from matrix.models import JoinRequest
from tests.chat.conftest import K1_GROUP, K1_OFFICE, STRANGER, TEACHER

DEFAULTS = LimitOptions()


def bot_said(stage: Stage, group: str, sender: str, text: str, times: int) -> list[str]:
    """Everything the bot says while ``sender`` sends ``text`` ``times`` times."""
    said: list[str] = []
    for _ in range(times):
        said += [line.text for line in stage.say(group, sender, text) if line.by_bot]
    return said


def slow_downs(said: list[str]) -> list[str]:
    return [text for text in said if "后再试" in text]


def test_a_stranger_flooding_help_gets_one_slow_down_then_silence(stage: Stage):
    stage.say(K1_GROUP, STRANGER, "<加入>")
    said = bot_said(stage, K1_GROUP, STRANGER, "#帮助", 200)  # one a second, 200 seconds
    assert len(said) == DEFAULTS.per_contact + 1
    assert all(text.startswith("你还没有绑定名册") for text in said[:-1])
    assert said[-1] == (
        "你发送命令太频繁（每 60 秒最多 20 条，设置 limits.per_contact），请 5 分钟后再试。"
    )


def test_after_the_cooldown_the_contact_is_answered_again(stage: Stage):
    bot_said(stage, K1_GROUP, TEACHER, "#帮助", DEFAULTS.per_contact + 1)
    assert stage.replies(K1_GROUP, TEACHER, "#帮助") == []
    stage.advance(DEFAULTS.cooldown_seconds - 10)
    assert stage.replies(K1_GROUP, TEACHER, "#帮助") == []
    stage.advance(10)
    assert stage.reply(K1_GROUP, TEACHER, "#帮助").startswith("K1S1大辅，你在本群可以使用：")


def test_a_flooder_does_not_silence_the_others(stage: Stage):
    bot_said(stage, K1_GROUP, TEACHER, "#帮助", 40)
    assert stage.reply(K1_GROUP, K1_OFFICE, "#帮助").startswith("K1office_staff，你在本群")


def test_a_whole_group_flooding_gets_one_slow_down(stage: Stage):
    stage.step = 0.25  # four commands a second between them, each under the per-contact limit
    senders = [
        c
        for c in sorted(stage.world.rooms[stage.room_of(K1_GROUP)].members)
        if c not in stage.bot.accounts
    ][:4]
    assert len(senders) == 4
    said: list[str] = []
    for i in range(80):
        said += [x.text for x in stage.say(K1_GROUP, senders[i % 4], "#帮助") if x.by_bot]
    assert slow_downs(said) == [
        "本群命令太多（每 60 秒最多 60 条，设置 limits.per_group），请 5 分钟后再试。"
    ]
    assert len(said) == DEFAULTS.per_group + 1


def test_a_group_answering_a_notice_all_at_once_is_not_held_back(stage: Stage):
    stage.step = 0.25
    stage.say(K1_GROUP, K1_OFFICE, "#通知 明天上午开会")
    members = [
        c for c in stage.world.rooms[stage.room_of(K1_GROUP)].members if c not in stage.bot.accounts
    ]
    said: list[str] = []
    for _ in range(DEFAULTS.per_group // len(members) + 2):
        for member in members:
            said += [x.text for x in stage.say(K1_GROUP, member, "收到") if x.by_bot]
    assert slow_downs(said) == []


def test_a_member_flooding_reports_reaches_the_office_ten_times(stage: Stage):
    before = len(stage.world.messages())
    said = bot_said(stage, K1_GROUP, TEACHER, "#上报 我校已完成建队仪式", 200)
    receipts = [text for text in said if text.startswith("已上报")]
    assert len(receipts) == DEFAULTS.reports_per_hour
    assert slow_downs(said) == [
        # 59: the reports go to two staff privately, and pacing those takes the clock on
        "上报太频繁（每人每小时最多 10 条，设置 limits.reports_per_hour），请 59 分钟后再试。"
    ]
    # the receipts, the reports to the office's two staff (privately), and the one
    # slow-down: not 400
    assert len(stage.world.messages()) - before == 200 + 3 * DEFAULTS.reports_per_hour + 1
    # other commands are not held back by the report limit
    assert stage.reply(K1_GROUP, TEACHER, "#帮助").startswith("K1S1大辅，你在本群")


def test_join_and_leave_churn_makes_one_hold_notice(stage: Stage):
    said = []
    for _ in range(100):
        said += [x for x in stage.say(K1_GROUP, STRANGER, "<加入>") if x.by_bot]
        said += [x for x in stage.say(K1_GROUP, STRANGER, "<退出>") if x.by_bot]
    assert len(said) == 1 and "1号 wxid_stranger（不在名册中）" in said[0].text
    assert len(said[0].mentions) == len(set(said[0].mentions)) >= 1
    stage.say(K1_GROUP, STRANGER, "<加入>")
    assert stage.reply(K1_GROUP, K1_OFFICE, "#同意 1").startswith("已同意 wxid_stranger 入群")
    with stage.engine.connect() as conn:
        assert conn.execute(select(JoinRequest.id)).scalars().all() == [1]


# --- no reply repeats what was pasted into it ------------------------------------------------


def test_a_100_kb_help_is_refused_naming_the_limit_and_the_setting(stage: Stage):
    reply = stage.reply(K1_GROUP, TEACHER, "#帮助 " + "帮" * 100_000)
    assert reply == (
        "这条命令有 100,004 字，超过上限 4,000 字（设置 limits.max_command_chars），未处理。"
        "请删减后重发，或分几条发送。"
    )


def test_a_notice_over_the_limit_is_not_sent(stage: Stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#通知 " + "会" * 5000)
    assert "超过上限 4,000 字" in reply
    assert not any(x.by_bot for x in stage.advance(600))


def test_long_words_are_quoted_at_most_100_characters(stage: Stage):
    word = "x" * 3000
    for sender, text in [
        (TEACHER, f"#帮助 {word}"),
        (K1_OFFICE, f"#同意 {word}"),
        (K1_OFFICE, f"#核查 {word}"),
        (K1_OFFICE, f"#汇总 {word}"),
        (K1_OFFICE, f"#确认 {word}"),
        (K1_OFFICE, f"#登记 {word} 公众号 乙1县"),
        (K1_OFFICE, f"#进度 {word}"),
        (TEACHER, f"#收到 {word}"),
        (K1_OFFICE, f"#拒绝 1 {word}"),
        (K1_OFFICE, f"#转报 {word}"),
    ]:
        reply = stage.reply(K1_GROUP, sender, text)
        assert "x" * 101 not in reply, (text[:8], reply)
        assert len(reply) < 400, (text[:8], reply)
    assert "“" + "x" * 100 + "…（共 3,000 字）”不是有效的命令" in stage.reply(
        K1_GROUP, TEACHER, f"#帮助 {word}"
    )


def test_a_long_media_name_is_refused_without_repeating_it(stage: Stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#登记 公众号 " + "号" * 3000)
    assert "号" * 101 not in reply and len(reply) < 300


def test_a_long_group_name_is_quoted_at_most_100_characters(stage: Stage):
    room = stage.room_of(K1_GROUP)
    stage.run(stage.world.change_topic(room, TEACHER, "群" * 3000))
    stage.settle()
    [said] = [m.text for m in stage.world.messages(room) if m.contact_id in stage.bot.accounts][-1:]
    assert "群" * 101 not in said and "（共 3,000 字）" in said
