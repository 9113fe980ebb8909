"""#通知 … 附件 in conversation: an office sends a file in its group, then #通知 … 附件 (or quotes
the file), and the file goes down with the notice to every target group, after the text.
Limits (size, count, type) and the content guard on file names are answered in Chinese with
nothing queued. The world (conftest.py): 示范省 P → 甲市 C1 → 乙1–3县 K1–K3 → two schools each."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot.rehearsal.stage import Line, Stage
from matrix.tables import DELIVERY, NOTICE
from tests.chat.conftest import (
    BUILD_DAY,
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    TEACHER,
    audit,
    bot_lines,
)

RELAY_GROUPS = [
    "示范省地市级团委少年部长群",
    "甲市县级少工委负责同志群",
    "乙1县少先队大队辅导员群",
    "乙2县少先队大队辅导员群",
    "乙3县少先队大队辅导员群",
]


def queued(stage: Stage) -> int:
    with stage.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(DELIVERY)).scalar_one())


def test_a_file_sent_then_notice_with_attachment_goes_to_every_group_after_the_text(stage):
    assert stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 会议通知.pdf 2MB>")[1:] == []
    reply, *out = bot_lines(
        stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 截止 17:00 请查收会议通知 附件")
    )
    assert "附件 1 个（会议通知.pdf）随通知发到每个群，排在正文之后" in reply.text
    # the estimate counts the files too: 5 copies and 5 files at one message a second
    assert "预计 10 秒内发完" in reply.text
    # in every group: the text, then the file
    assert [line.group for line in out] == [g for g in RELAY_GROUPS for _ in (0, 1)]
    for text, file in zip(out[::2], out[1::2], strict=True):
        assert text.text.startswith("【通知 T1】")
        assert "附件 1 个，随后发出：会议通知.pdf" in text.text
        assert file.text == "[文件] 会议通知.pdf"
        assert Path(file.file).name == "会议通知.pdf"
        assert Path(file.file).stat().st_size == 2 * 1024 * 1024
    # the bot sent its own copy, not the member's file
    sent = {line.file for line in out[1::2]}
    assert len(sent) == 1 and "store" in sent.pop()
    [logged] = audit(stage, "relay.notice")
    assert logged["files"] == ["会议通知.pdf"]


def test_the_files_are_taken_once_and_a_later_notice_without_attachment_has_none(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 名单.xlsx 30KB>")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 说明.docx 10KB>")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 附件")
    out = bot_lines(stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 第二条通知"))[1:]
    assert all(not line.file for line in out) and len(out) == 5
    with stage.engine.connect() as conn:
        files = conn.execute(select(NOTICE.c.files).order_by(NOTICE.c.id)).scalars().all()
    assert [f.count("name") for f in files] == [2, 0]
    # and #通知 … 附件 again finds nothing: the files went with T1
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 再发一次 附件")
    assert "没有找到你在 10 分钟内在本群发的文件" in reply


def test_a_quoted_file_goes_with_the_notice(stage):
    stage.say(CITY_GROUP, CITY_OFFICE, "<文件 安排表.xlsx 5KB>")
    stage.say(CITY_GROUP, CITY_OFFICE, "<快进 60分钟>")  # past the window: only a quote finds it
    out = bot_lines(stage.say(CITY_GROUP, CITY_OFFICE, "<引用 安排表.xlsx> #通知 请按表安排"))
    assert [Path(line.file).name for line in out if line.file] == ["安排表.xlsx"] * 4


def test_a_file_from_someone_else_is_not_taken(stage):
    stage.say(K1_GROUP, K1_OFFICE, "<文件 乙1县材料.pdf 5KB>")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 附件")
    assert "没有找到" in reply and "请先在本群发送文件" in reply
    assert queued(stage) == 0


# --- bad input: answered in Chinese, nothing queued ----------------------------------------------


def test_a_file_of_the_wrong_type_is_refused_and_nothing_goes(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 宣传片.mp4 1KB>")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 汇编.pdf 25MB>")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 附件")
    assert "附件“宣传片.mp4”的类型 .mp4 不能随通知下发（可发：pdf、doc" in reply
    assert "请换成可下发的文件后重新发送" in reply
    assert queued(stage) == 0 and not audit(stage, "relay.notice")


def test_a_file_too_large_is_refused(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 汇编.pdf 25MB>")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 附件")
    assert "附件“汇编.pdf”有 25.0 MB，超过 20 MB 的上限" in reply
    assert queued(stage) == 0


def test_a_hostile_file_name_is_repeated_only_in_part(stage):
    long = "q" * 236  # as long as a file system allows
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, f"<文件 {long}.exe 1MB>")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 附件")
    assert "的类型 .exe 不能随通知下发" in reply
    assert reply.count("q") == 116 and len(reply) < 300
    assert queued(stage) == 0


def test_more_files_than_allowed_are_refused(stage):
    for i in range(10):
        stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, f"<文件 表{i}.xlsx 1KB>")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 附件")
    assert "一条通知最多带 9 个附件，这次有 10 个" in reply
    assert "请分成几条通知下发，或把文件打包成一个压缩包" in reply
    assert queued(stage) == 0


def test_a_classified_file_name_is_blocked_and_audited(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 【机密】名单.xlsx 1KB>")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 附件")
    assert reply.startswith("通知附件“【机密】名单.xlsx”含有“机密”字样")
    assert queued(stage) == 0
    [blocked] = audit(stage, "relay.blocked")
    assert (blocked["marker"], blocked["where"]) == ("机密", "附件“【机密】名单.xlsx”")


def test_a_file_that_is_gone_is_refused(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 名单.xlsx 1KB>")
    [sent] = [m for m in stage.world.messages() if m.file]
    Path(sent.file).unlink()  # the platform cleaned it up
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 附件")
    assert "附件“名单.xlsx”已读取不到" in reply
    assert queued(stage) == 0


def test_someone_who_may_not_notify_gets_no_file_copied(stage):
    stage.say(K1_GROUP, TEACHER, "<文件 材料.pdf 1KB>")
    reply = stage.reply(K1_GROUP, TEACHER, "#通知 请查收 附件")
    assert reply == "只有单位办公室（群管理员）可以使用 #通知。"
    assert queued(stage) == 0
    store = Path(stage.bot.relay.env.options.attachments.dir)
    assert not store.exists() or not any(store.iterdir())


def test_the_limits_come_from_the_configuration(province_db, bp, tmp_path):
    from matrix.relay import RelayOptions
    from matrix.relay.options import AttachmentOptions

    options = RelayOptions(
        attachments=AttachmentOptions(max_mb=1, max_count=2, types=["pdf"], dir=str(tmp_path / "s"))
    )
    with Stage(province_db, bp, accounts=("bot-1",), relay=options, start=BUILD_DAY) as s:
        s.provision()
        s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 a.pdf 2MB>")
        assert "超过 1 MB 的上限" in s.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 看 附件")
        s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 b.pdf 1KB>")
        s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<引用 b.pdf> #通知 看这个")
        assert [p.name for p in (tmp_path / "s").rglob("*.pdf")] == ["b.pdf"]


# --- the files keep with the notice through its life ----------------------------------------------


def files_sent(lines: list[Line]) -> list[str]:
    return [line.group for line in lines if line.by_bot and line.file]


def test_a_held_notice_keeps_its_files_until_confirmed(province_db, bp, tmp_path):
    from matrix.relay import RelayOptions

    with Stage(
        province_db, bp, accounts=("bot-1",), relay=RelayOptions(confirm_above=2), start=BUILD_DAY
    ) as s:
        s.provision()
        s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 方案.docx 3KB>")
        held = s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收方案 附件")
        assert files_sent(held) == []
        assert "附件 1 个（方案.docx）" in bot_lines(held)[0].text
        assert files_sent(s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#确认 T1")) == RELAY_GROUPS


def test_a_scheduled_notice_sends_its_files_when_it_goes(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 周报模板.xlsx 3KB>")
    assert (
        files_sent(
            stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 定时 明天 8:00 请填写周报 附件")
        )
        == []
    )
    later = stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<快进 8:30>")
    assert files_sent(later) == RELAY_GROUPS


def test_each_occurrence_of_a_recurring_notice_carries_the_files(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 周报模板.xlsx 3KB>")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请填写周报 每天 8:00 附件")
    first = stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<快进 8:30>")
    second = stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<快进 8:30>")
    assert files_sent(first) == files_sent(second) == RELAY_GROUPS


def test_a_withdrawal_recalls_the_files_too(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 名单.xlsx 3KB>")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请核对名单 附件")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1 名单有误")
    bot_files = [m for m in stage.world.messages() if m.file and m.contact_id == "bot-1"]
    assert len(bot_files) == 5 and all(m.recalled for m in bot_files)


def test_a_withdrawal_during_the_relay_stops_the_files_not_sent(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 名单.xlsx 3KB>")
    issued = stage.bot.relay.env
    from matrix.relay import issue_notice
    from matrix.relay.attachments import NoticeFile

    [member_file] = [m for m in stage.world.messages() if m.file]
    path = member_file.file
    room = stage.room_of(PROVINCE_GROUP)
    issue_notice(issued, room, PROVINCE_OFFICE, "请核对名单", [NoticeFile("名单.xlsx", 3072, path)])
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1 名单有误")  # before any copy went
    with stage.engine.connect() as conn:
        states = conn.execute(
            select(DELIVERY.c.state, func.count())
            .where(DELIVERY.c.kind == "file")
            .group_by(DELIVERY.c.state)
        ).all()
    assert dict(states) == {"withdrawn": 5}
    assert [m for m in stage.world.messages() if m.file and m.contact_id == "bot-1"] == []


def test_a_correction_sends_the_files_again_and_says_so(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 名单.xlsx 3KB>")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请核对名单 附件")
    lines = stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 请核对名单，周五前反馈")
    reply = bot_lines(lines)[0].text
    assert "原通知的附件 1 个（名单.xlsx）随更正再次发出" in reply
    assert files_sent(lines) == RELAY_GROUPS
    copies = [line.text for line in bot_lines(lines)[1:] if not line.file]
    assert all("附件 1 个，随后发出：名单.xlsx" in text for text in copies)


def test_a_made_up_file_too_large_for_a_rehearsal_is_refused(stage):
    import pytest

    from bot.rehearsal.stage import StageError

    with pytest.raises(StageError, match="演练文件最大 1024MB"):
        stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 巨大.pdf 99999999MB>")
    with pytest.raises(StageError, match=r"本群没有名为“无\.pdf”的文件"):
        stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<引用 无.pdf> #通知 看看")


def test_progress_shows_how_far_the_files_went(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 名单.xlsx 3KB>")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 说明.pdf 3KB>")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请核对名单 附件 公告")
    reply = stage.replies(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T1")[0]
    assert "附件 2 个：已发 10/10 份" in reply
    assert "群公告：已设置 5 个群" in reply


def test_a_full_store_first_lets_go_of_copies_no_notice_needs(province_db, bp, tmp_path):
    import os

    from matrix.relay import RelayOptions
    from matrix.relay.options import AttachmentOptions

    store = tmp_path / "store"
    keep = AttachmentOptions(dir=str(store), store_max_mb=3, keep_days=30)
    with Stage(
        province_db, bp, accounts=("bot-1",), relay=RelayOptions(attachments=keep), start=BUILD_DAY
    ) as s:
        s.provision()
        s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 一月.pdf 2MB>")
        s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 一月材料 附件")
        s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 二月.pdf 2MB>")
        reply = s.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 二月材料 附件")
        assert "机器人保存附件的空间已满" in reply  # T1's copy is needed for a month yet
        assert queued(s) == 5 * 2
        # forty days on, T1 is done with: its copy goes to make room
        s.clock.advance(40 * 86400)
        for folder in store.iterdir():
            os.utime(folder, (0, 0))  # and was made long ago
        s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 三月.pdf 2MB>")
        out = s.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 三月材料 附件")
        assert files_sent(out) == RELAY_GROUPS
        assert [p.name for p in store.rglob("*.pdf")] == ["三月.pdf"]


def test_a_file_that_cannot_be_sent_is_told_to_the_issuing_group(stage):
    from matrix.platform import PlatformError

    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 名单.xlsx 3KB>")
    stage.world.fail("send_file", PlatformError("file too large for this room"), at=1)
    lines = stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请核对名单 附件")
    alerts = [line.text for line in bot_lines(lines) if line.text.startswith("【提醒】")]
    assert alerts == [
        "【提醒】通知 T1 的附件“名单.xlsx”未能发到“示范省地市级团委少年部长群”"
        "（已试 1 次：file too large for this room）。\n"
        "通知正文已送达；请该群负责同志向本单位索取附件，或稍后重新下发。"
    ]
    assert files_sent(lines) == RELAY_GROUPS[1:]  # the others got theirs


def test_a_correction_with_new_files_sends_them_instead(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 名单.xlsx 3KB>")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请核对名单 附件")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 名单（修订）.xlsx 3KB>")
    lines = stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 名单有修订，以此为准 附件")
    reply = bot_lines(lines)[0].text
    assert "新的附件 1 个（名单（修订）.xlsx）随更正发出，取代原通知的附件" in reply
    sent = [Path(line.file).name for line in bot_lines(lines) if line.file]
    assert sent == ["名单（修订）.xlsx"] * 5
    [logged] = audit(stage, "relay.correct")
    assert logged["notice"] == "T1"


def test_a_correction_asking_for_files_without_any_changes_nothing(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请核对名单")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 名单有修订 附件")
    assert "没有找到你在 10 分钟内在本群发的文件" in reply
    with stage.engine.connect() as conn:
        states = conn.execute(select(NOTICE.c.state).order_by(NOTICE.c.id)).scalars().all()
    assert states == ["live"]  # T1 stands, no correction written


def test_a_classified_file_on_a_correction_is_blocked(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请核对名单")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 涉密名单.xlsx 3KB>")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 名单有修订 附件")
    assert reply.startswith("更正附件“涉密名单.xlsx”含有“涉密”字样")
