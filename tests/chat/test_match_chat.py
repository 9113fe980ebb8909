"""#匹配 and #确认匹配 as an office says them in a hand-built, adopted county group of 454
members showing their 群昵称 the way people write them (tests/match_world.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.chat.summary import SummaryOptions
from bot.rehearsal.stage import Line, Stage
from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.provisioning.binding import lookup
from matrix.tables import JOIN_REQUEST, PERSON
from tests import match_world as mw
from tests.chat.conftest import BUILD_DAY

BOT = "bot-1"


@pytest.fixture
def county(engine: Engine, bp: Blueprint, tmp_path: Path) -> mw.County:
    return mw.load(engine, bp, tmp_path / "roster", schools=150)


@pytest.fixture
def stage(engine: Engine, bp: Blueprint, county: mw.County, tmp_path: Path) -> Iterator[Stage]:
    exports = SummaryOptions(export_dir=tmp_path / "exports")
    with Stage(engine, bp, accounts=(BOT,), summaries=exports, start=BUILD_DAY) as s:
        mw.hand_build(engine, bp, s.world, county, BOT)
        yield s


def bot_lines(stage: Stage, sender: str, text: str) -> list[Line]:
    return [line for line in stage.say(mw.TOPIC, sender, text) if line.by_bot]


def suggestions(stage: Stage, typed: str = "#匹配") -> tuple[str, list[dict[str, str]]]:
    """#匹配 by the county office: the reply, and the file's rows."""
    lines = bot_lines(stage, mw.OWNER, typed)
    assert len(lines) == 2 and lines[1].file, lines
    raw = Path(lines[1].file).read_bytes()
    assert raw.startswith("\ufeff".encode())
    return lines[0].text, list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def number_of(rows: list[dict[str, str]], contact: str) -> list[str]:
    return [r["编号"] for r in rows if r["微信联系人"] == contact]


def bound(stage: Stage, contact: str) -> str | None:
    with stage.engine.connect() as conn:
        pid = lookup(conn, contact)
        if pid is None:
            return None
        return conn.execute(select(PERSON.c.name).where(PERSON.c.id == pid)).scalar_one()


def test_the_office_sees_the_counts_and_gets_the_file(stage):
    text, rows = suggestions(stage, "#匹配 本群")
    assert "454 人未对应名册：448 条可确认，2 人重名待定，4 人未匹配" in text
    assert "#确认匹配 全部" in text
    assert "有办公室权限" in text and f"#确认匹配 {number_of(rows, mw.OFFICE_CONTACT)[0]}" in text
    assert len(rows) == 454 + 2  # each 王伟 is listed with both candidates, numbered apart
    wang = [r for r in rows if r["微信联系人"] == mw.WANG[0]]
    assert {r["可信度"] for r in wang} == {"重名待定"} and len(wang) == 2
    assert {r["单位"] for r in wang} == {"乙1县第3小学", "乙1县第7小学"}
    liu = next(r for r in rows if r["微信联系人"] == mw.WRONG_UNIT)
    assert liu["可信度"] == "未匹配" and liu["编号"] == "" and "单位与名册不符" in liu["理由"]


def test_all_binds_the_sure_ones_and_holds_the_rest(stage, county):
    _, rows = suggestions(stage)
    lines = bot_lines(stage, mw.OWNER, "#确认匹配 全部")
    assert len(lines) == 1  # one message: the result, the held strangers, the 群昵称 request
    reply = lines[0]
    assert "已按办公室核实绑定 447 人" in reply.text
    office = number_of(rows, mw.OFFICE_CONTACT)[0]
    assert f"编号 {office} 有办公室权限，未一并确认" in reply.text
    # every way of writing the 群昵称 bound its person
    for style in mw.STYLES:
        for seat in county.by_style(style)[:10]:
            assert bound(stage, seat.contact_id) == seat.name, (style, seat.nickname)
    # the office person, the two 王伟 and the wrong unit are not bound
    assert bound(stage, mw.OFFICE_CONTACT) is None
    assert bound(stage, mw.WANG[0]) is bound(stage, mw.WANG[1]) is None
    assert bound(stage, mw.WRONG_UNIT) is None
    # the stranger and the wrong unit are held by the join review, and the admins told
    assert "以下入群人员待管理员审核" in reply.text and "张三丰" in reply.text
    with stage.engine.connect() as conn:
        held = conn.execute(
            select(JOIN_REQUEST.c.contact_id).where(JOIN_REQUEST.c.status == "held")
        ).scalars()
        assert set(held) == {mw.STRANGER, mw.WRONG_UNIT}
        binds = audit_log.entries(conn, action="binding.bind", limit=1000)
    assert len(binds) == 447 and all(b.actor == mw.OWNER for b in binds)
    # those whose 群昵称 is off the pattern are @-mentioned, in this one message
    fix = {
        s.contact_id
        for style in ("spaced", "wide", "dash", "name", "blank")
        for s in county.by_style(style)
    }
    assert fix <= set(reply.mentions)
    assert not {s.contact_id for s in county.by_style("exact")} & set(reply.mentions)
    assert mw.NAMELESS in reply.mentions and "阳光" in reply.text  # not held, but asked
    assert mw.HONORIFIC in reply.mentions and "孙老师" in reply.text
    assert "请把群昵称改为“单位-姓名”" in reply.text


def test_matching_again_shows_what_is_left(stage):
    suggestions(stage)
    stage.reply(mw.TOPIC, mw.OWNER, "#确认匹配")  # no numbers: 全部
    text, rows = suggestions(stage)
    assert "7 人未对应名册：1 条可确认，2 人重名待定，4 人未匹配" in text
    assert number_of(rows, mw.OFFICE_CONTACT) == ["1"]  # numbered afresh


def test_an_office_person_needs_their_own_confirmation(stage):
    _, rows = suggestions(stage)
    office = number_of(rows, mw.OFFICE_CONTACT)[0]
    ranged = stage.reply(mw.TOPIC, mw.OWNER, f"#确认匹配 1-2,{office}")
    assert "已按办公室核实绑定 2 人" in ranged and f"编号 {office} 有办公室权限" in ranged
    assert "阳光" in ranged and "张三丰" in ranged  # the unmatched are dealt with once
    assert bound(stage, mw.OFFICE_CONTACT) is None
    alone = stage.reply(mw.TOPIC, mw.CITY_OFFICE, f"#确认匹配 {office}")
    assert "已按办公室核实绑定 1 人" in alone
    assert "阳光" not in alone and "张三丰" not in alone  # not asked or announced again
    assert bound(stage, mw.OFFICE_CONTACT) == mw.OFFICE_NAME


def test_one_of_two_same_name_persons_is_chosen_by_its_own_number(stage):
    _, rows = suggestions(stage)
    first, second = number_of(rows, mw.WANG[0])
    both = stage.reply(mw.TOPIC, mw.OWNER, f"#确认匹配 {first},{second}")
    assert "重名待定，未一并确认" in both and bound(stage, mw.WANG[0]) is None
    wang3 = next(r for r in rows if r["微信联系人"] == mw.WANG[0] and r["单位"] == "乙1县第3小学")
    stage.reply(mw.TOPIC, mw.OWNER, f"#确认匹配 {wang3['编号']}")
    assert bound(stage, mw.WANG[0]) == "王伟"


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("#确认匹配 abc", "看不懂编号“abc”"),
        ("#确认匹配 9-3", "编号范围“9-3”不对"),
        ("#确认匹配 1-99999999", "编号范围"),
        ("#确认匹配 " + "1," * 150, "编号写得太长"),
        ("#确认匹配 99999", "不在本群的匹配建议中"),
    ],
)
def test_bad_numbers_are_answered_in_chinese_and_bind_nobody(stage, typed, says):
    suggestions(stage)
    reply = stage.reply(mw.TOPIC, mw.OWNER, typed)
    assert says in reply and "Traceback" not in reply
    assert "已按办公室核实绑定 0 人" in reply or "绑定" not in reply.split("。")[0]
    assert bound(stage, "wxid_0000") is None


def test_confirming_before_matching_says_what_to_do(stage):
    reply = stage.reply(mw.TOPIC, mw.OWNER, "#确认匹配 全部")
    assert "本群没有待确认的匹配建议" in reply and "#匹配" in reply


def test_a_sibling_countys_office_may_not_match_this_group(stage):
    reply = stage.reply(mw.TOPIC, mw.OTHER_COUNTY_OFFICE, "#匹配")
    assert "乙1县" in reply and "#确认匹配" not in reply
    with stage.engine.connect() as conn:
        denied = audit_log.entries(conn, action="command.denied")
    assert denied and denied[0].actor == mw.OTHER_COUNTY_OFFICE
