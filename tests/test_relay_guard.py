"""The content guard blocks classified content before it is relayed or reported; the watch list
(舆情监控) flags without blocking, and only so often."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.models import Delivery, Notice, Report, WatchFlag
from matrix.relay import ContentBlocked, RelayOptions, check_content, issue_notice, submit_report
from matrix.relay.attachments import NoticeFile
from tests.worlds import RelayWorld, count

RELAY_AND_OFFICE = [
    "city-youth-heads",
    "county-league-leaders",
    "county-counselors",
    "county-committee",
]


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("请传达机密文件精神", "机密"),
        ("附件系 绝 密 材料", "绝密"),
        ("本材料为内部资料，注意保管", "内部"),
        ("涉*密事项请线下沟通", "涉密"),
        ("这是秘密★1年的文件", "秘密"),
    ],
)
def test_classified_notices_are_blocked_with_a_reason_and_audited(
    province_db: Engine, bp: Blueprint, text: str, marker: str
):
    relay = RelayWorld(province_db, bp)
    office = relay.contact("P", "office_staff")
    reply = relay.say(office, relay.room("P"), f"#通知 {text}")
    assert reply == (
        f"通知正文含有“{marker}”字样，可能涉密，已拦截，未发送。"
        "群内不得发布涉密信息；请删改后重发，如确非涉密内容请联系管理员调整词表"
    )
    assert count(province_db, Notice) == 0 and count(province_db, Delivery) == 0
    with province_db.connect() as conn:
        (entry,) = audit_log.entries(conn, action="relay.blocked")
    assert (entry.actor, entry.unit_code) == (office, "P")
    assert f'"marker": "{marker}"' in entry.detail and text not in entry.detail  # never the text


def test_harmless_words_that_contain_a_marker_pass():
    options = RelayOptions()
    assert check_content(options, "请各地在全省内部署少先队活动") is None
    assert check_content(options, "请于今日 17:00 前报送名单") is None


def test_configured_words_and_attachment_names_are_checked(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp, options=RelayOptions(blocked_words=["考试答案"]))
    office = relay.contact("P", "office_staff")
    assert "含有“考试答案”字样" in relay.say(office, relay.room("P"), "#通知 今年的考试答案如下")
    with pytest.raises(ContentBlocked, match=re.escape("通知附件“秘密-名单.xlsx”含有“秘密”字样")):
        files = [NoticeFile("秘密-名单.xlsx", 10, "/nowhere/秘密-名单.xlsx")]
        issue_notice(relay.env, relay.room("P"), office, "见附件", files=files)
    assert count(province_db, Notice) == 0


def test_classified_reports_are_blocked_too(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    brigade = relay.contact("K1S1", "brigade_counselor")
    reply = relay.say(brigade, relay.room("K1"), "#上报 我校涉密人员名单如下")
    assert reply.startswith("上报正文含有“涉密”字样，可能涉密，已拦截，未发送。")
    with pytest.raises(ContentBlocked):
        submit_report(relay.env, relay.room("K1"), brigade, "见附件", ["内部通报.docx"])
    assert count(province_db, Report) == 0
    with province_db.connect() as conn:
        assert len(audit_log.entries(conn, action="relay.blocked")) == 2


def test_the_watch_list_flags_to_the_groups_admins_without_blocking(
    province_db: Engine, bp: Blueprint
):
    options = RelayOptions(watch_words=["罢课", "上访"], watch_limit=2, watch_window_minutes=60)
    relay = RelayWorld(province_db, bp, options=options, kinds=RELAY_AND_OFFICE)
    core = relay.contact("K1S1", "core_squadron_counselor")
    assert relay.say(core, relay.room("K1"), "听说明天有人要罢 课") == ""  # not blocked, no reply
    assert relay.texts(relay.room("K1")) == ["听说明天有人要罢 课"]
    relay.deliver(until=relay.clock.now().replace(minute=5))

    office_room = relay.room("K1", kind="county-committee")
    (flag,) = relay.bot_messages(office_room)
    assert flag.text == (
        "【舆情提示】“乙1县少先队大队辅导员群”中 K1S1中辅0 的消息含关注词“罢课”：\n"
        "听说明天有人要罢 课\n"
        "请管理员留意，及时处置。"
    )
    assert set(flag.mentions) == {relay.contact("K1", "office_staff", n) for n in (0, 1)}


def test_watch_alerts_are_rate_limited_but_every_match_is_recorded(
    province_db: Engine, bp: Blueprint
):
    options = RelayOptions(watch_words=["上访"], watch_limit=2, watch_window_minutes=60)
    relay = RelayWorld(province_db, bp, options=options, kinds=RELAY_AND_OFFICE)
    core = relay.contact("K1S1", "core_squadron_counselor")
    for _ in range(4):
        relay.say(core, relay.room("K1"), "家长说要去上访")
    relay.deliver(until=relay.clock.now().replace(minute=5))
    flags = relay.bot_messages(relay.room("K1", kind="county-committee"))
    assert len(flags) == 2 and "之后的同类消息只记录、不再提示" in flags[1].text
    assert count(province_db, WatchFlag) == 4

    relay.clock.advance(3600)  # a new window
    relay.say(core, relay.room("K1"), "又有人说要上访")
    relay.deliver(until=relay.clock.now() + timedelta(minutes=5))
    assert len(relay.bot_messages(relay.room("K1", kind="county-committee"))) == 3
