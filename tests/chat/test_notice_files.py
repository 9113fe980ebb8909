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
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    audit,
)

RELAY_GROUPS = [
    "示范省地市级团委少年部长群",
    "甲市县级少工委负责同志群",
    "乙1县少先队大队辅导员群",
    "乙2县少先队大队辅导员群",
    "乙3县少先队大队辅导员群",
]


def bot_lines(lines: list[Line]) -> list[Line]:
    return [line for line in lines if line.by_bot]


def queued(stage: Stage) -> int:
    with stage.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(DELIVERY)).scalar_one())


def test_a_file_sent_then_notice_with_attachment_goes_to_every_group_after_the_text(stage):
    assert stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<文件 会议通知.pdf 2MB>")[1:] == []
    reply, *out = bot_lines(
        stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 截止 17:00 请查收会议通知 附件")
    )
    assert "附件 1 个（会议通知.pdf）随通知发到每个群，排在正文之后" in reply.text
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
