"""Adoption (认领) in conversation: 乙1县's office built its counselor group by hand, with one
school's counselor and a stranger in it, and invited the bot. The bot introduces itself once and
stays quiet; the office sends #认领; from then on the room is a matrix group like any other:
#核查 audits it, #通知 reaches it, 收到 counts, and what the bot has no right to do there the
owner is asked to do. The world is conftest.py's (示范省 P → 甲市 C1 → 乙1–3县 K1–K3), with no
group built by the bot: the bot process is running (its relay started), nothing more."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from bot.rehearsal.stage import Line, Stage
from matrix.blueprint import Blueprint
from matrix.tables import GROUP, OWNER_REQUEST, ROOM_GREETING
from tests.chat.conftest import (
    CITY_OFFICE,
    K1_OFFICE,
    K2_OFFICE,
    MORNING,
    STRANGER,
    TEACHER,
    audit,
)

BOT = "bot-1"
ROOM = "乙1县少先队大队辅导员群"
INTRO = "我是群矩阵助手"
ROOM_AS_BUILT = "乙1县 大队辅导员群"


def start(engine: Engine, bp: Blueprint) -> Stage:
    stage = Stage(engine, bp, accounts=(BOT,), start=MORNING)
    stage.run(stage.bot.relay.start())  # the bot process is up: its relay serves its account
    return stage


@pytest.fixture
def stage(province_db: Engine, bp: Blueprint) -> Iterator[Stage]:
    with start(province_db, bp) as s:
        yield s


def hand_built(stage: Stage, room_id: str = "") -> str:
    """乙1县's office builds its counselor group by hand: itself (the owner), the first school's
    counselor and a stranger. Returns the room id."""
    people = [stage.contact(c) for c in (K1_OFFICE, TEACHER, STRANGER)]
    return stage.world.create_room(K1_OFFICE, ROOM, people, room_id=room_id)


def invite_bot(stage: Stage, room_id: str) -> list[Line]:
    """The owner invites the bot in; every message that followed."""
    mark = len(stage.world.messages())
    stage.run(stage.world.join(room_id, BOT, inviter_id=K1_OFFICE))
    stage.settle()
    return [stage._line(m) for m in stage.world.messages(since=mark)]


@pytest.fixture
def adopted(stage: Stage) -> Stage:
    """The hand-built group, the bot invited in, and 乙1县's office's #认领."""
    invite_bot(stage, hand_built(stage))
    assert stage.reply(ROOM, K1_OFFICE, "#认领").startswith("已认领")
    return stage


def group_row(stage: Stage):  # type: ignore[no-untyped-def]
    with stage.engine.connect() as conn:
        return conn.execute(select(GROUP).where(GROUP.c.name == ROOM)).first()


# --- a room outside the matrix -------------------------------------------------------------------


def test_the_bot_invited_into_a_room_it_does_not_know_introduces_itself_once(stage):
    room = hand_built(stage)
    [intro] = invite_bot(stage, room)
    assert intro.by_bot and intro.text.startswith(INTRO)
    assert "请本单位办公室发送 #认领" in intro.text
    # and then it stays quiet: chat, a stranger's or a member's command, a bare 收到
    assert stage.replies(ROOM, TEACHER, "大家好") == []
    assert stage.replies(ROOM, STRANGER, "#通知 明天开会") == []
    assert stage.replies(ROOM, TEACHER, "#进度") == []
    assert stage.replies(ROOM, TEACHER, "收到") == []
    # #帮助 is still answered, listing only what works here
    helped = stage.reply(ROOM, TEACHER, "#帮助")
    assert "可以使用" in helped and "#帮助" in helped
    assert "#进度" not in helped and "收到" not in helped
    assert "#认领" in stage.reply(ROOM, K1_OFFICE, "#帮助")
    with stage.engine.connect() as conn:
        assert conn.execute(select(ROOM_GREETING.c.room_id)).scalars().all() == [room]


def test_the_introduction_is_not_repeated_after_a_restart(province_db, bp):
    with start(province_db, bp) as first:
        room = hand_built(first)
        assert len(invite_bot(first, room)) == 1
    with start(province_db, bp) as again:  # a new process, the same database and room
        hand_built(again, room_id=room)
        assert invite_bot(again, room) == []
        assert again.replies(ROOM, TEACHER, "#通知 明天开会") == []


def test_two_bot_accounts_invited_together_introduce_the_bot_once(province_db, bp):
    with Stage(province_db, bp, accounts=(BOT, "bot-2"), start=MORNING) as stage:
        stage.run(stage.bot.relay.start())
        room = hand_built(stage)
        mark = len(stage.world.messages())
        stage.run(stage.world.join(room, "bot-2", inviter_id=K1_OFFICE))
        stage.run(stage.world.join(room, BOT, inviter_id=K1_OFFICE))
        stage.settle()
        said = [m.text for m in stage.world.messages(since=mark)]
        assert len(said) == 1 and said[0].startswith(INTRO)


def test_a_room_seen_first_by_a_command_hears_the_introduction_once(stage):
    room = hand_built(stage)
    stage.world.rooms[room].members[BOT] = ""  # there before the bot process started
    [intro] = stage.replies(ROOM, TEACHER, "#进度")
    assert intro.startswith(INTRO)
    assert stage.replies(ROOM, TEACHER, "#进度") == []


def test_an_office_is_still_answered_outside_the_matrix(stage):
    invite_bot(stage, hand_built(stage))
    reply = stage.reply(ROOM, K1_OFFICE, "#同意 1")
    assert reply.startswith("本群不在群矩阵中，不能使用 #同意")


# --- #认领 ---------------------------------------------------------------------------------------


def test_a_county_office_adopts_its_hand_built_counselor_group(stage):
    invite_bot(stage, hand_built(stage))
    reply = stage.reply(ROOM, K1_OFFICE, "#认领")
    assert reply.startswith("已认领：本群登记为乙1县的“乙1县少先队大队辅导员群”。")
    assert "群内 3 人，名册内 2 人；名册外 1 人：wxid_stranger。" in reply
    assert "应入群未入群 " in reply and "K1S2大辅" in reply  # the second school's counselor
    assert "管理员：" in reply and "机器人不是群主或管理员" in reply
    row = group_row(stage)
    assert (row.unit_code, row.kind, row.shard, row.adopted_by) == (
        "K1",
        "county-counselors",
        0,
        K1_OFFICE,
    )
    [logged] = audit(stage, "group.adopt")
    assert (logged["actor"], logged["unit"], logged["kind"]) == (
        K1_OFFICE,
        "K1",
        "county-counselors",
    )


def test_audit_reports_the_stranger_and_the_missing_schools(adopted):
    report = adopted.reply(ROOM, K1_OFFICE, "#核查")
    assert report.startswith("【核查】乙1县")
    assert "名册外人员 1 个：联系人 wxid_stranger" in report
    assert "未入群 " in report


def test_a_county_notice_reaches_the_adopted_room_and_a_schools_receipt_counts(adopted):
    said = [x for x in adopted.say(ROOM, K1_OFFICE, "#通知 截止 17:00 请报送建队情况") if x.by_bot]
    assert said[0].text.startswith("通知 T1 已受理，将发往 1 个群")
    assert [x.group for x in said[1:]] == [ROOM]
    assert said[1].text.startswith("【通知 T1】乙1县")
    assert adopted.reply(ROOM, TEACHER, "收到") == "已记录 乙1县第1小学 收到通知 T1。"


def test_a_sibling_countys_office_cannot_adopt_it(stage):
    room = hand_built(stage)
    invite_bot(stage, room)
    stage.run(stage.world.join(room, stage.contact(K2_OFFICE)))
    reply = stage.reply(ROOM, K2_OFFICE, "#认领 乙1县")
    assert reply == "乙1县（K1） 不在你所在单位的管辖范围内，不能对其使用 #认领。"
    assert group_row(stage) is None
    [denied] = audit(stage, "command.denied")
    assert (denied["actor"], denied["command"], denied["reason"]) == (K2_OFFICE, "adopt", "outside")


def test_an_adopted_room_cannot_be_adopted_again_nor_the_group_twice(adopted):
    again = adopted.reply(ROOM, K1_OFFICE, "#认领")
    assert again.startswith("本群已登记为“乙1县少先队大队辅导员群”")
    assert "#解除认领" in again
    other = adopted.world.create_room(K1_OFFICE, "乙1县辅导员二群", [BOT])
    second = adopted.reply("乙1县辅导员二群", K1_OFFICE, "#认领 中小学少先队大队辅导员群")
    assert second.startswith("乙1县少先队大队辅导员群已有对应的群")
    with adopted.engine.connect() as conn:
        rooms = conn.execute(select(GROUP.c.room_id).where(GROUP.c.room_id.is_not(None)))
        assert other not in rooms.scalars().all()


def test_the_rooms_name_says_which_group_it_is_and_whose(stage):
    committee = stage.world.create_room(K1_OFFICE, "乙1县 少工委委员群", [BOT])
    reply = stage.reply("乙1县 少工委委员群", K1_OFFICE, "#认领")
    assert reply.startswith("已认领：本群登记为乙1县的“乙1县少工委委员群”。")  # a 延展群
    room = hand_built(stage)
    invite_bot(stage, room)
    stage.run(stage.world.join(room, stage.contact(K2_OFFICE)))
    # 乙2县's office, sending #认领 in 乙1县's room, would make it 乙2县's group
    refused = stage.reply(ROOM, K2_OFFICE, "#认领")
    assert refused.startswith("群名“乙1县少先队大队辅导员群”是乙1县的群，不是乙2县的。")
    with stage.engine.connect() as conn:
        rooms = conn.execute(select(GROUP.c.room_id).where(GROUP.c.room_id.is_not(None)))
        assert rooms.scalars().all() == [committee]


def test_a_city_office_adopts_for_a_county_below_by_naming_it(stage):
    room = hand_built(stage)
    invite_bot(stage, room)
    stage.run(stage.world.join(room, stage.contact(CITY_OFFICE)))
    assert stage.reply(ROOM, CITY_OFFICE, "#认领 乙1县 1").startswith("已认领")
    assert group_row(stage).unit_code == "K1"


# --- owner rights -------------------------------------------------------------------------------


def test_the_owner_is_asked_to_remove_the_stranger_once_and_the_audit_clears(adopted):
    plan = adopted.reply(ROOM, K1_OFFICE, "#建群")
    assert "请群主移出 1 人" in plan and "#确认 后将在该群请群主办理" in plan
    said = [x for x in adopted.say(ROOM, K1_OFFICE, "#确认") if x.by_bot]
    [ask] = [x for x in said if x.text.startswith("群主、管理员您好")]
    assert ask.group == ROOM and ask.mentions == (K1_OFFICE,)
    assert "请移出（不在名册或不应在本群）：wxid_stranger" in ask.text
    [logged] = audit(adopted, "group.ask_owner")
    assert (logged["actor"], logged["unit"], logged["new"]) == (K1_OFFICE, "K1", 2)
    # a second go-ahead does not ask again: nothing new appeared
    adopted.reply(ROOM, K1_OFFICE, "#建群")
    again = [x.text for x in adopted.say(ROOM, K1_OFFICE, "#确认") if x.by_bot]
    assert not any(t.startswith("群主、管理员您好") for t in again)
    assert asked(adopted) == {("remove", STRANGER), ("set_admin", None)}
    adopted.say(ROOM, STRANGER, "<退出>")  # the owner removed them
    report = adopted.reply(ROOM, K1_OFFICE, "#核查")
    assert "名册外人员" not in report
    assert asked(adopted) == {("set_admin", None)}  # the second office staff is no admin yet


def asked(stage: Stage) -> set[tuple[str, str | None]]:
    """What the owner was asked and has not done yet: (action, contact)."""
    with stage.engine.connect() as conn:
        rows = conn.execute(select(OWNER_REQUEST.c.action, OWNER_REQUEST.c.contact_id))
        return {(a, c) for a, c in rows}


# --- #解除认领 -----------------------------------------------------------------------------------


def test_unadopt_releases_the_room_and_it_is_outside_the_matrix_again(adopted):
    reply = adopted.reply(ROOM, K1_OFFICE, "#解除认领")
    assert reply.startswith("已解除认领：本群不再是乙1县的“乙1县少先队大队辅导员群”")
    assert group_row(adopted).room_id is None
    assert audit(adopted, "group.unadopt")[0]["actor"] == K1_OFFICE
    assert adopted.replies(ROOM, TEACHER, "收到") == []
    assert adopted.replies(ROOM, TEACHER, "#进度") == []  # introduced already: quiet
    assert adopted.reply(ROOM, K1_OFFICE, "#认领").startswith("已认领")  # and adopted again


# --- on PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_adoption_and_the_owner_requests_on_postgres(pg_engine: Engine, bp: Blueprint, tmp_path):
    from matrix.roster import import_roster, read_roster
    from tests import worlds

    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    import_roster(pg_engine, read_roster(units, persons, bp), bp)
    with start(pg_engine, bp) as stage:
        room = hand_built(stage)
        assert invite_bot(stage, room)[0].text.startswith(INTRO)
        assert stage.replies(ROOM, TEACHER, "#进度") == []
        assert stage.reply(ROOM, K1_OFFICE, "#认领").startswith("已认领")
        stage.reply(ROOM, K1_OFFICE, "#建群")
        said = [x.text for x in stage.say(ROOM, K1_OFFICE, "#确认") if x.by_bot]
        assert any(t.startswith("群主、管理员您好") for t in said)
        stage.say(ROOM, STRANGER, "<退出>")
        stage.reply(ROOM, K1_OFFICE, "#核查")
        assert asked(stage) == {("set_admin", None)}
        assert stage.reply(ROOM, K1_OFFICE, "#解除认领").startswith("已解除认领")
        assert asked(stage) == set()


def test_the_operators_plan_shows_what_the_owner_will_be_asked(adopted, monkeypatch):
    from typer.testing import CliRunner

    from bot.cli import app

    monkeypatch.setenv("QUNMATRIX_ACCOUNTS", f'[{{"id": "{BOT}"}}]')
    url = adopted.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--db", url, "plan", "--unit", "K1"])
    assert result.exit_code == 0, result.output
    assert "请群主办理（机器人无权限）：移出 1 人 设管理员 1 人" in result.stdout
    assert "认领的群里有 2 项调整机器人无权限" in result.stdout


def test_an_appointed_admin_and_a_rename_done_by_the_owner_clear_their_requests(stage):
    from matrix.tables import PERSON

    room = hand_built(stage)
    stage.world.rooms[room].topic = ROOM_AS_BUILT  # as people write it
    invite_bot(stage, room)
    stage.reply(ROOM_AS_BUILT, K1_OFFICE, "#认领 乙1县 中小学少先队大队辅导员群")
    assert "请群主移出 1 人、设管理员 1 人、改群名" in stage.reply(
        ROOM_AS_BUILT, K1_OFFICE, "#建群"
    )
    [ask] = [x.text for x in stage.say(ROOM_AS_BUILT, K1_OFFICE, "#确认") if x.by_bot][:1]
    assert "· 请把群名改为：乙1县少先队大队辅导员群" in ask
    with stage.engine.connect() as conn:
        appointee = conn.execute(
            select(PERSON.c.wechat_id)
            .join(OWNER_REQUEST, OWNER_REQUEST.c.person_id == PERSON.c.id)
            .where(OWNER_REQUEST.c.action == "set_admin")
        ).scalar_one()
    # the owner appoints the admin and renames the room, on the phone
    stage.world.rooms[room].admins.add(appointee)
    stage.run(stage.world.change_topic(room, K1_OFFICE, ROOM))
    stage.reply(ROOM, K1_OFFICE, "#核查")
    assert asked(stage) == {("remove", STRANGER)}
