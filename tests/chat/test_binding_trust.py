"""Trust in bindings (issue 9, part 1), played as a hostile group member would: nobody becomes an
office by knowing a phone number, guessing is limited and learns no names, a replaced or revoked
binding carries nothing, and the office is told each time. People are named in conftest.py; in
``office_stage`` the second K1 office staff has no 微信号 on the roster (never bound), so a
phone is all that stands for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy import text as sql

from bot.rehearsal.stage import Line, Stage
from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.models import JoinRequest
from matrix.provisioning import binding
from matrix.provisioning.join_review import TimeoutPolicy
from matrix.relay.bind_claims import BindLimits
from matrix.relay.errors import NotAllowed
from matrix.relay.people import person_for_contact
from matrix.relay.reports import submit_report
from matrix.roster import import_roster, read_roster
from tests import worlds
from tests.chat.conftest import (
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    K2_GROUP,
    K2_OFFICE,
    NEWCOMER,
    NEWCOMER_PHONE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    STRANGER,
    TEACHER,
    TEACHER_PHONE,
    audit,
)

OFFICE_NAME = "K1office_staff"  # both K1 office staff are called this on the roster
OFFICE_PHONE = "13900000009"
OFFICE_LINE = "wxK1n009"  # the roster line whose 微信号 office_stage leaves blank
CITY_OFFICES = {"wxC1n004", "wxC1n005"}
RECEIVED = "已收到。如信息无误，本单位办公室核实后会通知你；如有疑问，请联系本群管理员。"
IMPOSTOR = "wxid_impostor"
REAL = "wxid_real_new_phone"
OFFICE_ONLY = ["#通知 全县今天停课", "#汇总 csv", "#核查", "#进度"]


def roster_without(folder: Path, *blank: str) -> tuple[Path, Path]:
    """``worlds.province()`` with the 微信号 of the ``blank`` lines left out."""
    units, persons = worlds.province()
    persons = [(*p[:4], "") if p[4] in blank else p for p in persons]
    folder.mkdir(parents=True, exist_ok=True)
    return worlds.write_roster(folder, units, persons)


def staged(
    engine: Engine,
    bp: Blueprint,
    folder: Path,
    blank: tuple[str, ...] = (OFFICE_LINE,),
    **options: object,
) -> Stage:
    import_roster(engine, read_roster(*roster_without(folder, *blank), bp), bp)
    stage = Stage(engine, bp, accounts=("bot-1",), **options)  # type: ignore[arg-type]
    stage.provision()
    return stage


@pytest.fixture
def office_stage(engine: Engine, bp: Blueprint, tmp_path: Path) -> Iterator[Stage]:
    with staged(engine, bp, tmp_path / "roster") as stage:
        yield stage


def roster_words() -> list[str]:
    """Every person's and unit's name on the roster: none may reach a guesser."""
    units, persons = worlds.province()
    return [u[1] for u in units] + [p[1] for p in persons]


def topic(stage: Stage, group: str) -> str:
    return stage.world.rooms[stage.room_of(group)].topic


def said_in(stage: Stage, lines: list[Line], group: str) -> list[Line]:
    """The bot's lines in ``group`` among ``lines``."""
    return [line for line in lines if line.by_bot and line.group == topic(stage, group)]


def reply_in(stage: Stage, group: str, sender: str, text: str) -> str:
    """The bot's one reply in ``group`` itself (an office elsewhere may be told more)."""
    [line] = said_in(stage, stage.say(group, sender, text), group)
    return line.text


def requests(stage: Stage) -> list[tuple[int, str, str, str]]:
    """Every join request and claim: number, contact, reason, status."""
    t = JoinRequest.__table__  # type: ignore[attr-defined]
    with stage.engine.connect() as conn:
        rows = conn.execute(select(t.c.id, t.c.contact_id, t.c.reason, t.c.status).order_by(t.c.id))
        return [tuple(r) for r in rows]


def who(stage: Stage, contact: str) -> str | None:
    with stage.engine.connect() as conn:
        asker = stage.bot.authority.asker(conn, contact)
    return asker.person_name or None


def refused_as_stranger(stage: Stage, group: str, contact: str) -> None:
    for text in OFFICE_ONLY:
        reply = stage.reply(group, contact, text)
        assert reply.startswith("你的微信还没有绑定名册，不能使用"), (text, reply)


def legacy_bind(stage: Stage, contact: str, phone: str) -> None:
    """A binding made by phone before this fix (any roster person, office staff too): the
    issue's impostor, already in the database."""
    with stage.engine.begin() as conn:
        binding.bind_by_phone(conn, contact, phone, contact)


# --- the take-over from the issue --------------------------------------------------------------


def test_a_stranger_who_knows_an_office_phone_gains_no_office_command(office_stage):
    stage = office_stage
    stage.say(K1_GROUP, STRANGER, "<加入>")  # held at the door: request 1 in the K1 group
    lines = stage.say(K1_GROUP, STRANGER, f"#绑定 {OFFICE_PHONE}")
    assert [line.text for line in said_in(stage, lines, K1_GROUP)] == [RECEIVED]
    assert who(stage, STRANGER) is None
    refused_as_stranger(stage, K1_GROUP, STRANGER)

    # the K1 office's only group is where the stranger sits: the city office, above it, is asked
    [asked] = said_in(stage, lines, CITY_GROUP)
    assert asked.text.startswith(
        f"【绑定申请 2号】微信 {STRANGER}在“乙1县少先队大队辅导员群”用手机号 139****0009 申请"
        f"绑定为名册人员 {OFFICE_NAME}（乙1县）。此人有办公室权限，须由办公室核实本人。"
    )
    assert "#同意 2" in asked.text and "#拒绝 2" in asked.text
    assert set(asked.mentions) == CITY_OFFICES
    assert requests(stage) == [(1, STRANGER, "unknown", "held"), (2, STRANGER, "claim", "held")]
    [attempt] = audit(stage, "binding.attempt")
    assert (attempt["outcome"], attempt["reason"], attempt["phone"]) == (
        "pending",
        "office",
        "139****0009",
    )

    # the office decides, in its own group: now the binding is real, and the group is told
    lines = stage.say(CITY_GROUP, CITY_OFFICE, "#同意 2")
    assert [line.text for line in said_in(stage, lines, CITY_GROUP)] == [
        f"已核实：微信 {STRANGER} 绑定为名册人员 {OFFICE_NAME}（乙1县），已通知其本人。"
    ]
    told = said_in(stage, lines, K1_GROUP)
    assert [line.text for line in told] == [
        "你的绑定申请已由办公室核实通过。发送 #帮助 查看你可以使用的命令。",
        f"【绑定通知】名册人员 {OFFICE_NAME}（乙1县）已绑定微信 {STRANGER}，方式：办公室核实。"
        f"如不是本人，请发送 #解绑 {OFFICE_NAME}。",
    ]
    assert told[0].mentions == (STRANGER,)
    assert who(stage, STRANGER) == OFFICE_NAME
    assert stage.reply(K1_GROUP, STRANGER, "#核查").startswith("【核查】乙1县")
    assert requests(stage) == [
        (1, STRANGER, "unknown", "approved"),
        (2, STRANGER, "claim", "approved"),
    ]
    [bound] = audit(stage, "binding.bind")
    assert (bound["actor"], bound["method"], bound["contact"]) == (CITY_OFFICE, "admin", STRANGER)


def test_the_same_claim_again_asks_the_office_once(office_stage):
    stage = office_stage
    stage.say(K1_GROUP, STRANGER, "<加入>")
    first = stage.say(K1_GROUP, STRANGER, f"#绑定 {OFFICE_PHONE}")
    again = stage.say(K1_GROUP, STRANGER, f"#绑定 {OFFICE_PHONE}")
    assert len(said_in(stage, first, CITY_GROUP)) == 1 and said_in(stage, again, CITY_GROUP) == []
    assert [line.text for line in said_in(stage, again, K1_GROUP)] == [RECEIVED]


def test_an_office_turns_a_claim_down_and_nobody_is_removed(office_stage):
    stage = office_stage
    stage.say(K1_GROUP, STRANGER, "<加入>")
    stage.say(K1_GROUP, STRANGER, f"#绑定 {OFFICE_PHONE}")
    reply = stage.reply(CITY_GROUP, CITY_OFFICE, "#拒绝 2 不是本人")
    assert reply == f"已拒绝绑定申请 2号（微信 {STRANGER}）（不是本人），该微信未获得任何权限。"
    assert STRANGER in stage.world.rooms[stage.room_of(K1_GROUP)].members
    assert requests(stage)[1] == (2, STRANGER, "claim", "rejected")
    assert who(stage, STRANGER) is None


def test_a_claim_nobody_decides_on_lapses_quietly(engine, bp, tmp_path):
    policy = TimeoutPolicy(2, "keep")  # the joiner is kept; the claim still lapses
    with staged(engine, bp, tmp_path / "roster", join_policy=policy) as stage:
        stage.say(K1_GROUP, STRANGER, "<加入>")
        stage.say(K1_GROUP, STRANGER, f"#绑定 {OFFICE_PHONE}")
        lines = stage.advance(3 * 3600)
        assert said_in(stage, lines, CITY_GROUP) == []
        assert requests(stage)[1] == (2, STRANGER, "claim", "timed_out")
        assert "没有编号为 2" in stage.reply(CITY_GROUP, CITY_OFFICE, "#同意 2")
        assert who(stage, STRANGER) is None


def test_a_claim_to_a_city_office_is_asked_in_the_province_group(engine, bp, tmp_path):
    """Claimed in the city's own group, where the claimant sits: the province office decides,
    and an office below the claimed person's unit has nothing to decide."""
    with staged(engine, bp, tmp_path / "roster", blank=("wxC1n005",)) as stage:
        stage.say(CITY_GROUP, STRANGER, "<加入>")  # request 1
        lines = stage.say(CITY_GROUP, STRANGER, "#绑定 13900000005")  # C1's second office staff
        assert [line.text for line in said_in(stage, lines, CITY_GROUP)] == [RECEIVED]
        [asked] = said_in(stage, lines, PROVINCE_GROUP)
        assert asked.text.startswith("【绑定申请 2号】") and "C1office_staff1（甲市）" in asked.text
        assert set(asked.mentions) == {"wxPn001", "wxPn002"}
        assert "本群没有编号为 2 的待审核入群人员" in stage.reply(K1_GROUP, K1_OFFICE, "#同意 2")
        assert reply_in(stage, PROVINCE_GROUP, PROVINCE_OFFICE, "#同意 2").startswith(
            f"已核实：微信 {STRANGER} 绑定为名册人员 C1office_staff1（甲市）"
        )
        assert who(stage, STRANGER) == "C1office_staff1"


# --- guessing ---------------------------------------------------------------------------------


def test_a_guessing_session_learns_no_name_and_ends_at_the_contact_limit(office_stage):
    stage = office_stage
    stage.say(K1_GROUP, STRANGER, "<加入>")
    guesses = ["13800000000", TEACHER_PHONE, OFFICE_PHONE]  # nobody, bound already, an office
    lines = [line for phone in guesses for line in stage.say(K1_GROUP, STRANGER, f"#绑定 {phone}")]
    here = said_in(stage, lines, K1_GROUP)
    assert [line.text for line in here] == [RECEIVED] * 3  # the same words, whoever it was
    limited = stage.reply(K1_GROUP, STRANGER, "#绑定 13900000022")
    assert limited == "你的绑定尝试次数已达上限（24 小时内 3 次），请稍后再试，或请本群管理员审核。"
    for text in [line.text for line in here] + [limited]:
        for word in roster_words():
            assert word not in text, (word, text)
    attempts = [(a["outcome"], a["reason"]) for a in reversed(audit(stage, "binding.attempt"))]
    assert attempts == [
        ("refused", "none"),
        ("refused", "taken"),
        ("pending", "office"),
        ("limited", "contact_limit"),
    ]
    with stage.engine.connect() as conn:
        details = [e.detail for e in audit_log.entries(conn, limit=1000)]
    for phone in [*guesses, "13900000022"]:
        assert not any(phone in d for d in details), phone  # masked everywhere


def test_every_reply_of_a_long_session_is_the_same(engine, bp, tmp_path):
    """With a higher limit, a session over every kind of number: nobody, several people, bound
    already, another county's person, an office person. One text for all of them."""
    limits = BindLimits(per_contact=10)
    units, persons = worlds.province()
    persons.append(("K1S1", "同号人", "core_squadron_counselor", TEACHER_PHONE, ""))
    folder = tmp_path / "roster"
    folder.mkdir()
    import_roster(engine, read_roster(*worlds.write_roster(folder, units, persons), bp), bp)
    with Stage(engine, bp, accounts=("bot-1",), bind_limits=limits) as stage:
        stage.provision()
        stage.say(K1_GROUP, STRANGER, "<加入>")
        phones = ["13800000000", TEACHER_PHONE, "13900000013", "13900000022", "13900000008"]
        replies = [stage.reply(K1_GROUP, STRANGER, f"#绑定 {p}") for p in phones]
        assert replies == [RECEIVED] * len(phones)
        reasons = [a["reason"] for a in reversed(audit(stage, "binding.attempt"))]
        assert reasons == ["none", "many", "taken", "taken", "taken"]


def test_the_target_limit_stops_binding_that_person_and_tells_their_office(newcomer_stage):
    """Five contacts, each trying the newcomer's phone from another county's group: the fifth
    failure reaches the limit and the newcomer's office is told; then not even the right group
    binds them by phone until the window is over."""
    stage = newcomer_stage
    lines: list[Line] = []
    for i in range(5):
        guesser = f"wxid_guesser{i}"
        stage.say(K2_GROUP, guesser, "<加入>")
        lines += stage.say(K2_GROUP, guesser, f"#绑定 {NEWCOMER_PHONE}")
    assert [line.text for line in said_in(stage, lines, K2_GROUP)] == [RECEIVED] * 5
    [alert] = said_in(stage, lines, K1_GROUP)  # K1's own group: no guesser sits there
    assert alert.text.startswith(
        "【绑定提醒】24 小时内已有 5 次用名册人员 K1S2大辅（乙1县第2小学）的手机号 139****0015 "
        "绑定未成功，最近一次来自微信 wxid_guesser4（在“乙2县少先队大队辅导员群”）。"
    )
    assert set(alert.mentions) == {"wxK1n008", "wxK1n009"}
    stage.say(K1_GROUP, NEWCOMER, "<加入>")
    lines = stage.say(K1_GROUP, NEWCOMER, f"#绑定 {NEWCOMER_PHONE}")
    assert [line.text for line in lines if line.by_bot] == [RECEIVED]  # no second alert
    assert who(stage, NEWCOMER) is None
    assert audit(stage, "binding.attempt")[0]["reason"] == "target_limit"
    stage.advance(25 * 3600)  # the window passes (the held joiner is removed on the way)
    stage.say(K1_GROUP, NEWCOMER, "<加入>")
    assert reply_in(stage, K1_GROUP, NEWCOMER, f"#绑定 {NEWCOMER_PHONE}").startswith("绑定成功")


# --- a successful self-bind is told to the office, not to the group ---------------------------


def test_a_self_bind_is_announced_to_the_office_not_to_the_group(newcomer_stage):
    stage = newcomer_stage
    stage.say(K1_GROUP, NEWCOMER, "<加入>")
    lines = stage.say(K1_GROUP, NEWCOMER, f"#绑定 {NEWCOMER_PHONE}")
    here = said_in(stage, lines, K1_GROUP)
    assert [line.text for line in here] == [
        "绑定成功。入群审核已通过。发送 #帮助 查看你可以使用的命令。"
    ]
    [told] = said_in(stage, lines, CITY_GROUP)  # K1's only group is where it was typed
    assert told.text == (
        f"【绑定通知】名册人员 K1S2大辅（乙1县第2小学）已绑定微信 {NEWCOMER}，方式：手机号"
        "（在“乙1县少先队大队辅导员群”）。如不是本人，请发送 #解绑 K1S2大辅。"
    )
    assert set(told.mentions) == CITY_OFFICES


# --- superseded and revoked bindings carry nothing --------------------------------------------


def test_the_impostor_loses_everything_when_the_real_person_rebinds(office_stage):
    """The issue's scenario: an impostor bound as the K1 office (before this fix); the real
    person rebinds through #同意 with their phone; the impostor's id, back in the group, is
    nobody."""
    stage = office_stage
    stage.say(K1_GROUP, IMPOSTOR, "<加入>")  # request 1
    legacy_bind(stage, IMPOSTOR, OFFICE_PHONE)
    assert stage.reply(K1_GROUP, IMPOSTOR, "#核查").startswith("【核查】乙1县")  # it did work
    stage.say(K1_GROUP, IMPOSTOR, "<退出>")
    stage.say(K1_GROUP, REAL, "<加入>")  # request 2
    reply = reply_in(stage, K1_GROUP, K1_OFFICE, f"#同意 2 {OFFICE_PHONE}")
    assert reply == f"已同意 {REAL} 入群，并绑定名册人员 {OFFICE_NAME}（乙1县）。"
    assert stage.reply(K1_GROUP, REAL, "#核查").startswith("【核查】乙1县")

    # back in the group before request 1 timed out: held again on it, a stranger, and the
    # admins are not asked a second time (join/leave churn folds into one notice)
    joined = stage.say(K1_GROUP, IMPOSTOR, "<加入>")
    assert said_in(stage, joined, K1_GROUP) == []
    with stage.engine.connect() as conn:
        assert (
            conn.execute(
                sql("SELECT status FROM join_request WHERE id = 1 AND contact_id = :c"),
                {"c": IMPOSTOR},
            ).scalar_one()
            == "held"
        )
    assert who(stage, IMPOSTOR) is None
    refused_as_stranger(stage, K1_GROUP, IMPOSTOR)
    assert stage.replies(K1_GROUP, IMPOSTOR, "收到") == []  # no receipt in its name
    assert stage.reply(K1_GROUP, IMPOSTOR, f"#绑定 {OFFICE_PHONE}") == RECEIVED
    assert who(stage, IMPOSTOR) is None
    with stage.engine.connect() as conn:
        [real] = binding.bindings(conn, contact_id=REAL)
        [old] = binding.bindings(conn, contact_id=IMPOSTOR, history=True)
    assert (real.state, old.state) == ("有效", "已替换")  # history kept


def test_an_office_revokes_an_impostor(office_stage):
    stage = office_stage
    stage.say(K1_GROUP, IMPOSTOR, "<加入>")
    legacy_bind(stage, IMPOSTOR, OFFICE_PHONE)
    assert stage.reply(K1_GROUP, IMPOSTOR, "#核查").startswith("【核查】乙1县")
    lines = stage.say(K1_GROUP, K1_OFFICE, f"#解绑 {OFFICE_PHONE}")
    assert [line.text for line in said_in(stage, lines, K1_GROUP)] == [
        f"已解除 {OFFICE_NAME}（乙1县）的绑定：微信 {IMPOSTOR}（手机号）。这些微信不再代表此人；"
        "本人可请办公室用 #同意 重新绑定。"
    ]
    [told] = said_in(stage, lines, CITY_GROUP)  # typed in K1's only group: the city is told
    assert told.text == (
        f"【解绑通知】名册人员 {OFFICE_NAME}（乙1县）与微信 {IMPOSTOR} 的绑定（方式：手机号）"
        f"已由 {OFFICE_NAME} 解除，该微信不再代表此人。"
    )
    refused_as_stranger(stage, K1_GROUP, IMPOSTOR)
    [entry] = audit(stage, "binding.revoke")
    assert (entry["actor"], entry["contact"], entry["method"]) == (K1_OFFICE, IMPOSTOR, "phone")
    assert audit(stage, "command.unbind")[0]["bindings"] == [entry["binding"]]
    assert "此人目前没有绑定任何微信" in stage.reply(K1_GROUP, K1_OFFICE, f"#解绑 {OFFICE_PHONE}")


def test_a_revoked_contact_cannot_bind_itself_again(newcomer_stage):
    stage = newcomer_stage
    stage.say(K1_GROUP, NEWCOMER, "<加入>")
    assert reply_in(stage, K1_GROUP, NEWCOMER, f"#绑定 {NEWCOMER_PHONE}").startswith("绑定成功")
    assert stage.replies(K1_GROUP, NEWCOMER, "#上报 已完成")[0].startswith("已上报乙1县")
    reply_in(stage, K1_GROUP, K1_OFFICE, "#解绑 K1S2大辅")
    assert "还没有绑定名册" in stage.reply(K1_GROUP, NEWCOMER, "#上报 又来了")
    assert stage.reply(K1_GROUP, NEWCOMER, f"#绑定 {NEWCOMER_PHONE}") == RECEIVED
    assert who(stage, NEWCOMER) is None
    assert audit(stage, "binding.attempt")[0]["reason"] == "history"


def test_revoking_a_roster_wechat_id_takes_its_authority_away(stage):
    """A person known only through the roster's 微信号: #解绑 records that 微信号 as revoked,
    and it speaks for nobody until an office binds it again."""
    assert stage.reply(K1_GROUP, TEACHER, "#收到").startswith("本群还没有需要回执的通知")
    assert reply_in(stage, K1_GROUP, K1_OFFICE, f"#解绑 {TEACHER_PHONE}").startswith(
        f"已解除 K1S1大辅（乙1县第1小学）的绑定：微信 {TEACHER}（名册微信号）"
    )
    assert "还没有绑定名册" in stage.reply(K1_GROUP, TEACHER, "#上报 你好")


def test_an_office_cannot_unbind_outside_its_subtree(stage):
    reply = stage.reply(K2_GROUP, K2_OFFICE, f"#解绑 {TEACHER_PHONE}")
    assert "找不到“13900000012”" in reply
    assert who(stage, TEACHER) == "K1S1大辅"
    assert "只有单位办公室" in stage.reply(K1_GROUP, TEACHER, f"#解绑 {TEACHER_PHONE}")


def test_only_offices_see_unbind_in_help(stage):
    assert "#解绑（unbind）" in stage.reply(K1_GROUP, K1_OFFICE, "#帮助")
    assert "#解绑" not in stage.reply(K1_GROUP, TEACHER, "#帮助")


def test_relay_receipts_and_reports_need_an_active_binding(office_stage):
    """The relay asks who a contact is on its own (收到, #上报, #转报): a replaced id is nobody
    there too, and its person is whoever they are bound as now."""
    stage = office_stage
    stage.say(K1_GROUP, IMPOSTOR, "<加入>")
    legacy_bind(stage, IMPOSTOR, "13900000013")  # a core counselor of K1S1
    with stage.engine.begin() as conn:
        [person] = binding.phone_holders(conn, "13900000013")
        assert getattr(person_for_contact(conn, IMPOSTOR), "id", None) == person
        binding.bind_by_admin(conn, REAL, person, K1_OFFICE)
    with stage.engine.begin() as conn:
        assert person_for_contact(conn, IMPOSTOR) is None
        assert getattr(person_for_contact(conn, REAL), "id", None) == person
    with pytest.raises(NotAllowed):
        submit_report(stage.bot.relay.env, stage.room_of(K1_GROUP), IMPOSTOR, "冒名上报")


@pytest.mark.postgres
def test_claims_limits_and_revocation_on_postgres(pg_engine, bp, tmp_path):
    with staged(pg_engine, bp, tmp_path / "roster") as stage:
        stage.say(K1_GROUP, STRANGER, "<加入>")
        lines = stage.say(K1_GROUP, STRANGER, f"#绑定 {OFFICE_PHONE}")
        assert [line.text for line in said_in(stage, lines, K1_GROUP)] == [RECEIVED]
        assert said_in(stage, lines, CITY_GROUP)[0].text.startswith("【绑定申请 2号】")
        refused_as_stranger(stage, K1_GROUP, STRANGER)
        assert reply_in(stage, CITY_GROUP, CITY_OFFICE, "#同意 2").startswith("已核实")
        assert stage.reply(K1_GROUP, STRANGER, "#核查").startswith("【核查】乙1县")
        assert reply_in(stage, K1_GROUP, K1_OFFICE, f"#解绑 {OFFICE_PHONE}").startswith("已解除")
        refused_as_stranger(stage, K1_GROUP, STRANGER)
        stage.say(K1_GROUP, "wxid_guesser", "<加入>")
        replies = [stage.reply(K1_GROUP, "wxid_guesser", f"#绑定 1380000000{i}") for i in range(4)]
        assert replies[:3] == [RECEIVED] * 3 and replies[3].startswith("你的绑定尝试次数已达上限")
