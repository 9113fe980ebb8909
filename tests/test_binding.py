"""Identity binding: contact ids become roster persons, and a changed id never makes a new one."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from matrix import audit_log
from matrix.models import ContactBinding, Person
from matrix.platform import Member
from matrix.provisioning.binding import (
    BindingError,
    bind_by_admin,
    bind_by_phone,
    bindings,
    contact_of,
    contacts_of,
    lookup,
    person_of,
    resolve,
    revoke,
    revoke_person,
)
from tests import worlds
from tests.worlds import (
    built,
    findings,
    join,
    load,
    new_world,
    person_id,
    plan,
    room_of,
    sync,
)


def persons(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Person.__table__)).scalar_one())  # type: ignore[attr-defined]


def test_a_contact_showing_its_wechat_id_is_bound_automatically(province_db):
    someone = person_id(province_db, "wxK1S1n012")
    with province_db.begin() as conn:
        known = resolve(
            conn, [Member("wxid_a1b2c3", wechat_id="wxK1S1n012"), Member("wxid_nobody")]
        )
        assert known == {"wxid_a1b2c3": someone}
        assert person_of(conn, "wxid_a1b2c3") == someone
        assert person_of(conn, "wxid_nobody") is None


def test_a_person_confirming_their_phone_is_bound(province_db):
    with province_db.begin() as conn:
        pid = bind_by_phone(conn, "wxid_newphone", "+86 139-0000-0012", "wxid_newphone")
        assert pid == person_id(province_db, "wxK1S1n012")
        assert [e.action for e in audit_log.entries(conn)] == ["binding.bind"]


def test_a_phone_not_on_the_roster_or_shared_is_refused(engine, bp, tmp_path):
    units, rows = worlds.province(counties=1, schools=1)
    rows += [
        ("K1S1", "甲", "principal", "13800000001", ""),
        ("K1S1", "乙", "party_secretary", "13800000001", ""),
    ]
    load(engine, bp, tmp_path, units, rows)
    with engine.begin() as conn:
        with pytest.raises(BindingError, match="没有手机号 13700000000"):
            bind_by_phone(conn, "wxid_x", "13700000000", "wxid_x")
        with pytest.raises(BindingError, match="有 2 人使用手机号"):
            bind_by_phone(conn, "wxid_x", "13800000001", "wxid_x")
        with pytest.raises(BindingError, match="格式不对"):
            bind_by_phone(conn, "wxid_x", "12345", "wxid_x")


def test_a_new_contact_id_for_the_same_person_rebinds_without_a_new_person(province_db, bp):
    """The account reconnected and WeChat hands out a new contact id: the old one is kept as
    superseded and still resolves; no person is added; the audit stays clean."""
    world = built(province_db, bp)
    before = persons(province_db)
    someone = person_id(province_db, "wxK1S1n012")
    room = room_of(world, "乙1县少先队大队辅导员群")
    nick = world.rooms[room].members.pop("wxK1S1n012")
    join(world, room, "wxid_reconnected", nickname=nick, wechat_id="wxK1S1n012")
    sync(province_db, world)
    with province_db.connect() as conn:
        assert person_of(conn, "wxid_reconnected") == someone
        assert contact_of(conn, someone) == "wxid_reconnected"
    assert persons(province_db) == before
    assert findings(province_db, bp) == []
    assert plan(province_db, bp).empty

    with province_db.begin() as conn:
        assert bind_by_admin(conn, "wxK1S1n012", someone, "cli:admin") == someone  # and back
        assert contact_of(conn, someone) == "wxK1S1n012"
        table = ContactBinding.__table__  # type: ignore[attr-defined]
        rows = conn.execute(select(table.c.contact_id, table.c.superseded_at.is_(None))).all()
    assert sorted((c, active) for c, active in rows if c in ("wxK1S1n012", "wxid_reconnected")) == [
        ("wxK1S1n012", True),
        ("wxid_reconnected", False),
    ]
    assert persons(province_db) == before


def test_an_admin_can_correct_a_wrong_binding(province_db):
    a, b = person_id(province_db, "wxK1S1n012"), person_id(province_db, "wxK1S2n015")
    with province_db.begin() as conn:
        bind_by_admin(conn, "wxid_who", a, "cli:admin")
        bind_by_admin(conn, "wxid_who", b, "cli:admin")
        assert person_of(conn, "wxid_who") == b
        entries = audit_log.entries(conn, action="binding.bind")
    assert f'"replaced_person": {a}' in entries[0].detail
    with province_db.begin() as conn, pytest.raises(BindingError, match="没有编号为 999999"):
        bind_by_admin(conn, "wxid_who", 999999, "cli:admin")


def test_unbound_members_are_unknown(province_db, bp):
    world = new_world()
    built(province_db, bp, world)
    join(world, room_of(world, "乙1县少先队大队辅导员群"), "wxid_unbound", nickname="单位-谁")
    sync(province_db, world)
    assert [f.code for f in findings(province_db, bp)] == ["UNKNOWN_MEMBER"]


def test_a_superseded_contact_is_history_not_identity(province_db):
    """It still seats its person in the record of a room (the audit finds them twice), but it
    answers for nobody: not the permission check, not the relay, not the join review."""
    someone = person_id(province_db, "wxK1S1n012")
    with province_db.begin() as conn:
        resolve(conn, [Member("wxK1S1n012")])  # seated once, bound by 微信号
        bind_by_admin(conn, "wxid_new", someone, "cli:admin")
        assert lookup(conn, "wxK1S1n012") is None and person_of(conn, "wxK1S1n012") is None
        assert resolve(conn, [Member("wxK1S1n012")]) == {"wxK1S1n012": someone}
        assert resolve(conn, [Member("wxK1S1n012")], superseded=False) == {}
        assert lookup(conn, "wxid_new") == someone


def test_a_roster_wechat_id_no_row_records_is_superseded_by_a_new_binding(province_db):
    office = person_id(province_db, "wxK1n008")
    with province_db.begin() as conn:
        assert lookup(conn, "wxK1n008") == office  # from the roster alone
        bind_by_admin(conn, "wxid_new", office, "cli:admin")
        assert lookup(conn, "wxK1n008") is None
        [old] = bindings(conn, contact_id="wxK1n008", history=True)
        assert (old.state, old.method, old.actor) == ("已替换", "wechat_id", "roster")


def test_revoking_ends_authority_and_reach_and_is_logged(province_db):
    someone = person_id(province_db, "wxK1S1n012")
    with province_db.begin() as conn:
        bind_by_admin(conn, "wxid_who", someone, "cli:admin")
        [b] = bindings(conn, contact_id="wxid_who")
        ended = revoke(conn, b.id, "cli:admin")
        assert (ended.state, ended.revoked_by) == ("已撤销", "cli:admin")
        assert lookup(conn, "wxid_who") is None and contact_of(conn, someone) is None
        # a revoked contact is nobody, even where a room shows the roster's 微信号 for it
        assert resolve(conn, [Member("wxid_who", wechat_id="wxK1S1n012")]) == {}
        with pytest.raises(BindingError, match="已不是有效绑定（已撤销）"):
            revoke(conn, b.id, "cli:admin")
        with pytest.raises(BindingError, match="没有编号为 999999 的绑定"):
            revoke(conn, 999999, "cli:admin")
        [entry] = audit_log.entries(conn, action="binding.revoke")
    assert '"contact": "wxid_who"' in entry.detail and entry.unit_code == "K1S1"


def test_revoking_a_person_known_by_the_roster_wechat_id(province_db):
    someone = person_id(province_db, "wxK1S1n012")
    with province_db.begin() as conn:
        [ended] = revoke_person(conn, someone, "wxK1n008")
        assert (ended.contact_id, ended.path) == ("wxK1S1n012", "名册微信号")
        assert lookup(conn, "wxK1S1n012") is None
        assert someone not in contacts_of(conn, [someone])  # not @-mentioned as them either
        with pytest.raises(BindingError, match="没有绑定任何微信"):
            revoke_person(conn, someone, "wxK1n008")
        bind_by_admin(conn, "wxK1S1n012", someone, "wxK1n008")  # an office binds it again
        assert lookup(conn, "wxK1S1n012") == someone
