"""Matching in the core: a hand-built county group of 454 contacts the bot cannot bind by 微信号,
suggested a roster person each from the 群昵称 they show (tests/match_world.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, func, select

from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.provisioning import matching
from matrix.provisioning.binding import lookup
from matrix.provisioning.join_review import TimeoutPolicy
from matrix.provisioning.matching import AMBIGUOUS, NONE, SURE, parts, plain
from matrix.tables import JOIN_REQUEST, MATCH_SUGGESTION, PERSON
from tests import match_world as mw
from tests.worlds import BOT, new_world

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
POLICY = TimeoutPolicy()


@pytest.fixture
def county(engine: Engine, bp: Blueprint, tmp_path) -> mw.County:
    county = mw.load(engine, bp, tmp_path / "roster", schools=150)
    world = new_world()
    world.account(BOT)
    return mw.hand_build(engine, bp, world, county, BOT)


def names(county: mw.County) -> dict[str, str]:
    return {s.contact_id: s.name for s in county.seats}


def suggest(engine: Engine, bp: Blueprint, county: mw.County) -> dict[str, matching.MemberMatch]:
    with engine.connect() as conn:
        found = matching.suggest(conn, bp, county.group_id, names(county))
    return {m.contact_id: m for m in found}


def person(engine: Engine, name: str) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(select(PERSON.c.id).where(PERSON.c.name == name)).scalars())


def test_names_are_read_the_way_people_write_them():
    assert parts("乙1县第3小学 -  张子涵") == ["乙1县第3小学", "张子涵"]
    assert parts("第3小学－张子涵") == parts("第3小学—张子涵") == parts("第3小学_张子涵")
    assert parts("第3小学·张子涵") == ["第3小学", "张子涵"]
    assert plain("张　子涵") == "张子涵"


def test_every_way_of_writing_a_nickname_finds_its_person(engine, bp, county):
    found = suggest(engine, bp, county)
    for style in mw.STYLES:
        seats = county.by_style(style)
        assert len(seats) > 50, style
        for seat in seats:
            match = found[seat.contact_id]
            assert match.confidence == SURE, (style, seat.nickname, match)
            assert [c.name for c in match.candidates] == [seat.name]
    reasons = {found[s.contact_id].reason for s in county.by_style("exact")}
    assert reasons == {matching.UNIT_AND_NAME}
    assert {found[s.contact_id].reason for s in county.by_style("name")} == {matching.NAME_ONLY}
    blank = {found[s.contact_id].reason for s in county.by_style("blank")}
    assert blank == {matching.DISPLAY_NAME}
    assert all(found[s.contact_id].fits_pattern for s in county.by_style("exact"))
    assert not any(found[s.contact_id].fits_pattern for s in county.by_style("spaced"))


def test_two_persons_of_one_name_are_listed_never_guessed(engine, bp, county):
    found = suggest(engine, bp, county)
    wangs = person(engine, "王伟")
    for cid in mw.WANG:
        assert found[cid].confidence == AMBIGUOUS
        assert found[cid].reason == matching.SAME_NAME
        assert {c.person_id for c in found[cid].candidates} == wangs


def test_a_wrong_unit_and_a_stranger_are_not_matched(engine, bp, county):
    found = suggest(engine, bp, county)
    assert found[mw.WRONG_UNIT].confidence == NONE
    assert found[mw.WRONG_UNIT].reason == matching.WRONG_UNIT
    assert found[mw.STRANGER].confidence == NONE
    assert found[mw.STRANGER].reason == matching.NOT_FOUND
    assert found[mw.NAMELESS].confidence == NONE
    assert found[mw.NAMELESS].reason == matching.NO_NAME


def test_never_a_person_outside_the_groups_expected_members(engine, bp, county):
    # 刘洋 of 乙2县第1小学 is on the roster, and his county's school is exactly what the nickname
    # says; but he is not expected in 乙1县's group, so he is never suggested
    other = person(engine, "刘洋")
    found = suggest(engine, bp, county)
    suggested = {c.person_id for m in found.values() for c in m.candidates}
    assert len(other) == 2
    with engine.connect() as conn:
        expected = matching.expected_for(conn, bp, county.group_id)
    assert suggested <= set(expected.persons)
    assert len(other & suggested) == 0


def test_an_office_person_is_marked_and_two_members_for_one_person_are_contested(
    engine, bp, county
):
    found = suggest(engine, bp, county)
    office = found[mw.OFFICE_CONTACT]
    assert office.confidence == SURE and office.candidates[0].office_units == ("K1",)
    assert not any(c.office for m in found.values() for c in m.candidates if m is not office)
    # a second contact claims the first exact seat's person
    seat = county.by_style("exact")[0]
    with engine.begin() as conn:
        from matrix.tables import MEMBERSHIP

        conn.execute(
            MEMBERSHIP.insert().values(
                group_id=county.group_id,
                state="actual",
                contact_id="wxid_twin",
                nickname=seat.nickname,
                is_admin=False,
                source="platform",
                updated_at=NOW,
            )
        )
    again = suggest(engine, bp, county)
    assert again[seat.contact_id].confidence == again["wxid_twin"].confidence == AMBIGUOUS
    assert again["wxid_twin"].reason == matching.CONTESTED


def test_a_person_with_another_wechat_is_never_bound_in_bulk(engine, bp, county):
    # anyone may write a name in a 群昵称: a person the roster already knows a WeChat of is
    # listed for a decision, as a same-name person is
    seat = county.by_style("exact")[3]
    with engine.begin() as conn:
        conn.execute(
            PERSON.update().where(PERSON.c.name == seat.name).values(wechat_id="wx_real_one")
        )
    found = suggest(engine, bp, county)
    assert found[seat.contact_id].confidence == AMBIGUOUS
    assert found[seat.contact_id].reason == matching.OTHER_WECHAT
    shown = store(engine, bp, county)
    done = confirm(engine, bp, county, matching.ALL)
    assert seat.contact_id not in {r.contact_id for r in done.bound}
    row = next(r for r in shown.rows if r.contact_id == seat.contact_id)
    assert row.number is not None
    alone = confirm(engine, bp, county, [row.number])
    assert [r.contact_id for r in alone.bound] == [seat.contact_id]


def test_the_index_is_read_once_not_per_member(engine, bp, county):
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        found = suggest(engine, bp, county)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(found) == len(county.seats) == 454
    assert len(statements) < 20, len(statements)


def store(engine, bp, county, now=NOW):
    with engine.begin() as conn:
        found = matching.suggest(conn, bp, county.group_id, names(county))
        return matching.store(conn, county.group_id, found, actor="test", now=now, hours=24)


def confirm(engine, bp, county, numbers, *, office_ok=True, now=NOW):
    return matching.confirm(
        engine,
        bp,
        county.group_id,
        numbers,
        actor="test",
        now=now,
        may_confirm_office=lambda units: office_ok,
        policy=POLICY,
    )


def test_all_binds_the_sure_ones_holds_the_office_person_and_reviews_the_stranger(
    engine, bp, county
):
    shown = store(engine, bp, county)
    numbers = [r.number for r in shown.rows if r.number is not None]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(shown.bulk) == 454 - 7  # two 王伟, 刘洋, 张三丰, 阳光, 孙老师, 周敏
    assert shown.ambiguous_members == 2 and len(shown.unmatched) == 4
    done = confirm(engine, bp, county, matching.ALL)
    assert len(done.bound) == len(shown.bulk)
    assert [r.contact_id for r in done.office_held] == [mw.OFFICE_CONTACT]
    with engine.connect() as conn:
        assert lookup(conn, mw.OFFICE_CONTACT) is None
        assert lookup(conn, mw.WANG[0]) is None and lookup(conn, mw.WRONG_UNIT) is None
        for seat in county.by_style("spaced")[:5]:
            assert lookup(conn, seat.contact_id) in person(engine, seat.name)
        binds = audit_log.entries(conn, action="binding.bind", limit=10_000)
        held = conn.execute(select(JOIN_REQUEST.c.contact_id, JOIN_REQUEST.c.status)).all()
    assert len(binds) == len(done.bound)  # one audit entry per binding
    assert sorted(held) == sorted([(mw.STRANGER, "held"), (mw.WRONG_UNIT, "held")])
    assert {d.contact_id for d in done.held} == {mw.STRANGER, mw.WRONG_UNIT}
    exact = {s.contact_id for s in county.by_style("exact")}
    fix = {contact for contact, _ in done.fix_nickname}
    assert fix and not fix & exact  # only the off-pattern ones are asked
    assert {mw.NAMELESS, mw.HONORIFIC} <= fix  # not held: asked for a 群昵称


def test_a_range_skips_office_and_ambiguous_ones_which_need_their_own_number(engine, bp, county):
    shown = store(engine, bp, county)
    office = shown.office[0].number
    wang = next(r for r in shown.rows if r.contact_id == mw.WANG[0])
    assert office is not None and wang.number is not None
    done = confirm(engine, bp, county, [office, wang.number, 1])
    assert [r.number for r in done.bound] == [1]
    assert [r.number for r in done.office_held] == [office]
    assert [r.number for r in done.ambiguous_held] == [wang.number]
    refused = confirm(engine, bp, county, [office], office_ok=False)
    assert refused.refused_office and not refused.bound
    alone = confirm(engine, bp, county, [office])
    assert [r.contact_id for r in alone.bound] == [mw.OFFICE_CONTACT]
    picked = confirm(engine, bp, county, [wang.number])
    assert [r.contact_id for r in picked.bound] == [mw.WANG[0]]
    again = confirm(engine, bp, county, [1, 999_999])
    assert [r.number for r in again.skipped] == [1] and again.unknown == [999_999]


def test_a_new_match_replaces_the_old_and_suggestions_lapse(engine, bp, county):
    store(engine, bp, county)
    store(engine, bp, county)
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(MATCH_SUGGESTION)).scalar()
    assert rows == 454 + 2  # each 王伟 has two candidates: a row (a number) each
    with pytest.raises(Exception, match="没有待确认的匹配建议"):
        confirm(engine, bp, county, matching.ALL, now=NOW + timedelta(hours=25))


def test_the_same_on_postgresql(pg_engine, bp, tmp_path):
    county = mw.load(pg_engine, bp, tmp_path / "roster", schools=20)
    world = new_world()
    world.account(BOT)
    mw.hand_build(pg_engine, bp, world, county, BOT)
    shown = store(pg_engine, bp, county)
    assert shown.ambiguous_members == 2 and len(shown.unmatched) == 4
    done = confirm(pg_engine, bp, county, matching.ALL)
    assert len(done.bound) == len(shown.bulk) == 64 - 7
    assert {d.contact_id for d in done.held} == {mw.STRANGER, mw.WRONG_UNIT}
    office = shown.office[0].number
    assert office is not None
    assert [r.contact_id for r in confirm(pg_engine, bp, county, [office]).bound] == [
        mw.OFFICE_CONTACT
    ]
