"""The audit, one finding code at a time: each test breaks one thing and finds it."""

from __future__ import annotations

from bot.render.findings import fix_text
from bot.render.templates import TEMPLATES
from matrix.blueprint import parse_blueprint
from matrix.platform import NotSupported
from matrix.provisioning.binding import bind_by_admin
from matrix.provisioning.findings import KINDS
from tests import worlds
from tests.worlds import (
    accept,
    apply,
    built,
    codes,
    findings,
    join,
    load,
    name_everyone,
    new_world,
    person_id,
    plan,
    room_of,
    sync,
)

K1 = "乙1县少先队大队辅导员群"


def reimport(engine, bp, tmp_path, change):
    """Import the province world again with its persons changed by ``change``."""
    units, persons = worlds.province()
    load(engine, bp, tmp_path / "again", units, change(persons))


def only(found, code):
    return [f for f in found if f.code == code]


def test_a_matrix_built_by_the_plan_has_no_findings(province_db, bp):
    built(province_db, bp)
    assert findings(province_db, bp) == []


def test_group_missing_before_anything_is_built(province_db, bp):
    missing = only(findings(province_db, bp), "GROUP_MISSING")
    assert [(f.unit, f.group) for f in missing][:2] == [
        ("P", "示范省地市级团委少年部长群"),
        ("C1", "甲市县级少工委负责同志群"),
    ]
    assert missing[0].severity == "error" and "示范省牵头建立" in fix_text(missing[0])


def test_unknown_member(province_db, bp):
    world = built(province_db, bp)
    join(world, room_of(world, K1), "wxid_stranger", nickname="路人甲")
    sync(province_db, world)
    [f] = findings(province_db, bp)
    assert (f.code, f.unit, f.group, f.person, f.contact) == (
        "UNKNOWN_MEMBER",
        "K1",
        K1,
        None,
        "wxid_stranger",
    )
    assert "路人甲" in fix_text(f) and "批准" in fix_text(f)


def test_missing_member(province_db, bp):
    world = built(province_db, bp)
    del world.rooms[room_of(world, K1)].members["wxK1S1n012"]
    sync(province_db, world)
    [f] = findings(province_db, bp)
    assert (f.code, f.person) == ("MISSING_MEMBER", person_id(province_db, "wxK1S1n012"))
    assert "请邀请K1S1大辅加入" in fix_text(f)


def test_missing_member_without_a_wechat_id_is_for_a_person_to_invite(engine, bp, tmp_path):
    units, persons = worlds.province(counties=1)
    persons = [(*p[:4], "") if p[1] == "K1S1大辅" else p for p in persons]
    load(engine, bp, tmp_path, units, persons)
    built(engine, bp)
    [f] = findings(engine, bp)
    assert f.code == "MISSING_MEMBER"
    assert fix_text(f).startswith("K1S1大辅没有微信号，也未绑定微信，机器人无法邀请")
    assert not plan(engine, bp).counts()["invite"]  # listed for people, not for the bot
    assert plan(engine, bp).groups[-1].unreachable == [f.person]


def test_wrong_group(province_db, bp):
    world = built(province_db, bp)
    k2_counselor = "wxK2S1n022"
    join(world, room_of(world, K1), k2_counselor, nickname="单位-某人")
    sync(province_db, world)
    [f] = findings(province_db, bp)
    assert (f.code, f.unit, f.person) == ("WRONG_GROUP", "K1", person_id(province_db, k2_counselor))
    assert "乙2县少先队大队辅导员群" in fix_text(f)


def test_duplicate_member_with_two_accounts(province_db, bp):
    world = built(province_db, bp)
    someone = person_id(province_db, "wxK1S1n012")
    with province_db.begin() as conn:
        bind_by_admin(conn, "wxid_second_phone", someone, "cli:test")
    join(world, room_of(world, K1), "wxid_second_phone", nickname="单位-K1S1大辅")
    sync(province_db, world)
    assert codes(findings(province_db, bp)) == {"DUPLICATE_MEMBER"}


def test_duplicate_member_in_two_shards(engine, bp, tmp_path):
    load(engine, bp, tmp_path, *worlds.province(counties=1, schools=130, cores=3))
    world = built(engine, bp)
    first = room_of(world, "乙1县少先队大队辅导员一群")
    second = room_of(world, "乙1县少先队大队辅导员二群")
    stray = next(c for c in world.rooms[second].members if c not in world.rooms[first].members)
    join(world, first, stray, nickname="单位-某人")
    sync(engine, world)
    found = findings(engine, bp)
    assert codes(found) == {"DUPLICATE_MEMBER", "WRONG_GROUP"}
    assert "同时在" in fix_text(only(found, "DUPLICATE_MEMBER")[0])


def test_no_admin_and_wrong_admin(province_db, bp):
    world = new_world()
    for n in range(1, 11):  # a puppet that cannot appoint admins at all
        world.fail("set_admin", NotSupported("no admins on this puppet"), at=n)
    apply(province_db, plan(province_db, bp), world)
    accept(world)
    name_everyone(province_db, world)
    world.rooms[room_of(world, "示范省地市级团委少年部长群")].admins.add("wxC1n006")
    sync(province_db, world)
    found = findings(province_db, bp)
    assert codes(found) == {"NO_ADMIN", "WRONG_ADMIN"}
    assert only(found, "WRONG_ADMIN")[0].person == person_id(province_db, "wxC1n006")


def test_over_capacity_when_a_room_holds_more_than_the_cap(engine, tmp_path):
    small = parse_blueprint(
        (worlds_blueprint := _blueprint_text()).replace(
            "max_group_size = 500", "max_group_size = 12"
        )
    )
    assert worlds_blueprint
    load(engine, small, tmp_path, *worlds.province(counties=1, schools=2, cores=2))
    world = built(engine, small)
    room = room_of(world, K1)
    for i in range(6):
        join(world, room, f"wxid_extra{i}", nickname="单位-外人")
    sync(engine, world)
    found = only(findings(engine, small), "OVER_CAPACITY")
    assert len(found) == 1 and "15 人，超过 12 人上限" in fix_text(found[0])


def test_over_capacity_when_the_pinned_alone_fill_a_room(engine, tmp_path):
    tiny = parse_blueprint(_blueprint_text().replace("max_group_size = 500", "max_group_size = 3"))
    load(engine, tiny, tmp_path, *worlds.province(counties=1, schools=2, cores=2))
    found = only(findings(engine, tiny), "OVER_CAPACITY")
    assert {f.unit for f in found} == {"P", "C1", "K1"}
    assert "无法分群" in fix_text(found[0])


def test_quota_short_names_the_school(engine, bp, tmp_path):
    load(engine, bp, tmp_path, *worlds.province(counties=1, schools=2, cores=1))
    found = only(findings(engine, bp), "QUOTA_SHORT")
    assert [(f.unit, f.group) for f in found] == [("K1S1", K1), ("K1S2", K1)]
    assert (
        fix_text(found[0])
        == "乙1县第1小学的骨干中队辅导员只有 1 名，规定每单位至少 2 名，请补录名册"
    )


def test_nickname_format(province_db, bp):
    world = built(province_db, bp)
    world.set_nickname(room_of(world, K1), "wxK1S1n012", "老王")
    sync(province_db, world)
    [f] = findings(province_db, bp)
    assert (f.code, f.severity) == ("NICKNAME_FORMAT", "info")
    assert "单位-姓名" in fix_text(f) and "老王" in fix_text(f)


def test_stale_member_after_they_leave_the_roster(province_db, bp, tmp_path):
    world = built(province_db, bp)
    reimport(
        province_db, bp, tmp_path, lambda persons: [p for p in persons if p[4] != "wxK1S1n012"]
    )
    found = findings(province_db, bp)
    assert [(f.code, f.unit) for f in found] == [("STALE_MEMBER", "K1")]
    assert world  # the person is still in the room; only the roster changed


def test_no_responsible_person_and_no_admin_without_office_staff(province_db, bp, tmp_path):
    built(province_db, bp)
    reimport(
        province_db,
        bp,
        tmp_path,
        lambda persons: [p for p in persons if not (p[0] == "K1" and p[2] == "office_staff")],
    )
    found = findings(province_db, bp, "K1")
    assert {"NO_RESPONSIBLE_PERSON", "NO_ADMIN", "STALE_MEMBER"} <= codes(found)
    responsible = only(found, "NO_RESPONSIBLE_PERSON")[0]
    assert fix_text(responsible) == f"名册中乙1县没有办公室同志，请补录名册后由其负责「{K1}」"
    assert "没有可担任" in fix_text(only(found, "NO_ADMIN")[0])


def test_extra_member_on_the_roster_but_in_no_group_of_theirs(province_db, bp, tmp_path):
    world = built(province_db, bp)
    reimport(
        province_db,
        bp,
        tmp_path,
        lambda persons: [*persons, ("K1S1", "校长甲", "principal", "13900009999", "wxprincipal1")],
    )
    join(world, room_of(world, K1), "wxprincipal1", nickname="单位-校长甲")
    sync(province_db, world)
    [f] = findings(province_db, bp)
    assert (f.code, f.severity) == ("EXTRA_MEMBER", "info")


def test_every_code_has_a_severity_and_a_chinese_fix():
    assert len(KINDS) == 13
    for kind in KINDS.values():
        assert kind.severity in ("error", "warning", "info")
        fix = (TEMPLATES / "findings" / f"{kind.code}.j2").read_text(encoding="utf-8")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in fix)


def _blueprint_text() -> str:
    from matrix.blueprint import BUILTIN_DIR

    return (BUILTIN_DIR / "young_pioneers.toml").read_text(encoding="utf-8")


def test_no_admin_when_the_only_office_staff_has_no_wechat_says_what_to_do(engine, bp, tmp_path):
    """The plan cannot appoint someone the bots cannot reach: the fix says how to reach them."""
    units, persons = worlds.province()
    no_wechat = [(*p[:4], "") if (p[0] == "K1" and p[2] == "office_staff") else p for p in persons]
    load(engine, bp, tmp_path / "roster", units, no_wechat)
    built(engine, bp)
    found = findings(engine, bp, "K1")
    [no_admin] = [f for f in only(found, "NO_ADMIN") if f.group == K1]
    assert "qunmatrix plan" not in fix_text(no_admin)
    assert "没有微信号、也未绑定微信" in fix_text(no_admin) and "#绑定 手机号" in fix_text(no_admin)
