"""Join review, as the core decides it: someone joins, they are welcomed or held, an admin
decides, and undecided requests time out by the configured policy. (How the bot says it in
the group is tested in conversation, tests/chat/test_join_review_chat.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.render.findings import fix_text
from matrix import audit_log
from matrix.models import JoinRequest
from matrix.platform import Member
from matrix.provisioning.binding import person_of
from matrix.provisioning.join_review import (
    JoinReviewError,
    NotWaiting,
    TimeoutPolicy,
    approve,
    expire,
    pending,
    reject,
    request_in,
    review_join,
    review_joins,
    withdraw,
)
from tests.worlds import built, findings, join, person_id, plan, room_of, sync

NOW = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
K1 = "乙1县少先队大队辅导员群"


@pytest.fixture
def k1(province_db, bp):
    """The built matrix, and K1's county group id."""
    world = built(province_db, bp)
    survey_targets = [t for t in plan(province_db, bp).survey.targets if t.name == K1]
    assert survey_targets[0].room is not None
    return world, survey_targets[0].room.id


def joins(engine, bp, group_id, member, policy=None, now=NOW):
    with engine.begin() as conn:
        return review_join(conn, bp, group_id, member, now=now, policy=policy or TimeoutPolicy())


def test_a_counselor_of_the_county_is_welcomed_and_asked_for_the_nickname_format(
    province_db, bp, k1
):
    _, gid = k1
    decision = joins(province_db, bp, gid, Member("wxK1S1n012", name="K1S1大辅"))
    assert (decision.outcome, decision.reason) == ("welcome", "expected")
    assert (decision.person_name, decision.nickname_hint) == ("K1S1大辅", "单位-姓名")
    with province_db.connect() as conn:
        assert audit_log.entries(conn)[0].action == "join.welcome"


def test_a_stranger_is_held_and_the_admins_are_told(province_db, bp, k1):
    world, gid = k1
    decision = joins(province_db, bp, gid, Member("wxid_stranger", name="陌生人"))
    assert (decision.outcome, decision.reason) == ("hold", "unknown")
    assert set(decision.notify) == {"wxK1n008", "wxK1n009"}  # the county office, the admins
    assert decision.expires_at == NOW + timedelta(hours=24)

    join(world, room_of(world, K1), "wxid_stranger", nickname="陌生人")
    sync(province_db, world)
    assert plan(province_db, bp).empty  # held, not removed behind the admins' backs
    assert "正在等待入群审核" in fix_text(findings(province_db, bp)[0])


def test_someone_on_the_roster_but_not_for_this_group_is_held(province_db, bp, k1):
    world, gid = k1
    decision = joins(province_db, bp, gid, Member("wxK2S1n022"))  # K2's counselor in K1's group
    assert (decision.outcome, decision.reason) == ("hold", "not_expected")
    join(world, room_of(world, K1), "wxK2S1n022", nickname="单位-K2S1大辅")
    sync(province_db, world)
    assert plan(province_db, bp).empty  # the admins decide, not the planner
    assert [f.code for f in findings(province_db, bp)] == ["WRONG_GROUP"]


def test_an_admin_approves_and_binds_the_joiner_to_the_roster(province_db, bp, k1):
    world, gid = k1
    decision = joins(province_db, bp, gid, Member("wxid_new_phone", name="换了手机的大辅"))
    assert decision.request_id is not None
    counselor = person_id(province_db, "wxK1S1n012")
    with province_db.begin() as conn:
        approve(conn, decision.request_id, "wxK1n008", person_id=counselor, now=NOW)
        assert person_of(conn, "wxid_new_phone") == counselor
        assert [e.action for e in audit_log.entries(conn)][:2] == ["join.approve", "binding.bind"]
    again = joins(province_db, bp, gid, Member("wxid_new_phone"))
    assert (again.outcome, again.reason) == ("welcome", "approved")
    with province_db.begin() as conn, pytest.raises(JoinReviewError, match="已处理"):
        reject(conn, decision.request_id, "wxK1n008", now=NOW)
    assert world


def test_an_admin_rejects_and_the_bot_is_told_whom_to_remove(province_db, bp, k1):
    world, gid = k1
    decision = joins(province_db, bp, gid, Member("wxid_stranger"))
    assert decision.request_id is not None
    with province_db.begin() as conn:
        removal = reject(conn, decision.request_id, "wxK1n008", now=NOW)
    assert (removal.room_id, removal.contact_id) == (room_of(world, K1), "wxid_stranger")


@pytest.mark.parametrize(
    ("policy", "status"),
    [("remove", "timed_out"), ("keep", "approved"), ("remind", "held")],
)
def test_undecided_requests_follow_the_timeout_policy(province_db, bp, k1, policy, status):
    _, gid = k1
    rule = TimeoutPolicy(hours=2, on_timeout=policy)
    decision = joins(province_db, bp, gid, Member("wxid_stranger", name="陌生人"), rule)
    with province_db.begin() as conn:
        assert expire(conn, now=NOW + timedelta(hours=1), policy=rule) == []
        [timeout] = expire(conn, now=NOW + timedelta(hours=3), policy=rule)
        assert audit_log.entries(conn)[0].action == "join.timeout"
    assert (timeout.request_id, timeout.action, timeout.name) == (
        decision.request_id,
        policy,
        "陌生人",
    )
    table = JoinRequest.__table__  # type: ignore[attr-defined]
    with province_db.connect() as conn:
        assert conn.execute(select(table.c.status)).scalar_one() == status


def test_a_batch_of_joiners_is_reviewed_at_once(province_db, bp, k1):
    _, gid = k1
    with province_db.begin() as conn:
        decisions = review_joins(
            conn,
            bp,
            gid,
            [Member("wxK1S1n012"), Member("wxid_a", name="甲"), Member("wxK2S1n022")],
            now=NOW,
        )
    assert [(d.outcome, d.reason) for d in decisions] == [
        ("welcome", "expected"),
        ("hold", "unknown"),
        ("hold", "not_expected"),
    ]
    assert decisions[1].notify == decisions[2].notify == ("wxK1n008", "wxK1n009")


def test_joining_again_while_held_keeps_the_number(province_db, bp, k1):
    _, gid = k1
    first = joins(province_db, bp, gid, Member("wxid_stranger"))
    again = joins(province_db, bp, gid, Member("wxid_stranger"))
    assert again.request_id == first.request_id
    with province_db.connect() as conn:
        assert [r.id for r in pending(conn, gid)] == [first.request_id]


def test_a_number_from_another_group_or_already_decided_is_not_waiting(province_db, bp, k1):
    _, gid = k1
    held = joins(province_db, bp, gid, Member("wxid_stranger", name="陌生人"))
    assert held.request_id is not None
    with province_db.begin() as conn:
        assert request_in(conn, gid, held.request_id).contact_id == "wxid_stranger"
        with pytest.raises(NotWaiting, match="本群没有编号为 99") as caught:
            request_in(conn, gid, 99)
        assert caught.value.fix == f"本群待审核：{held.request_id}（陌生人）"
        with pytest.raises(NotWaiting):
            request_in(conn, gid + 1, held.request_id)


def test_a_held_joiner_who_leaves_needs_no_decision(province_db, bp, k1):
    _, gid = k1
    held = joins(province_db, bp, gid, Member("wxid_stranger"))
    with province_db.begin() as conn:
        assert withdraw(conn, gid, ["wxid_stranger"], now=NOW) == 1
        assert pending(conn, gid) == []
        assert expire(conn, now=NOW + timedelta(days=2), policy=TimeoutPolicy()) == []
    assert not held.repeat


def test_a_joiner_back_before_their_request_timed_out_is_held_on_it_again(province_db, bp, k1):
    _, gid = k1
    held = joins(province_db, bp, gid, Member("wxid_stranger"))
    for _ in range(3):  # join/leave churn
        with province_db.begin() as conn:
            withdraw(conn, gid, ["wxid_stranger"], now=NOW)
        again = joins(province_db, bp, gid, Member("wxid_stranger"), now=NOW + timedelta(hours=1))
        # the number the admins were told still works, and the deadline does not move
        assert (again.request_id, again.repeat) == (held.request_id, True)
        assert again.expires_at == held.expires_at
    with province_db.connect() as conn:
        assert [r.id for r in pending(conn, gid)] == [held.request_id]


def test_a_joiner_back_after_their_request_would_have_timed_out_is_a_new_request(
    province_db, bp, k1
):
    _, gid = k1
    held = joins(province_db, bp, gid, Member("wxid_stranger"))
    with province_db.begin() as conn:
        withdraw(conn, gid, ["wxid_stranger"], now=NOW)
    later = NOW + timedelta(hours=25)
    rejoined = joins(province_db, bp, gid, Member("wxid_stranger"), now=later)
    assert rejoined.request_id != held.request_id and not rejoined.repeat
