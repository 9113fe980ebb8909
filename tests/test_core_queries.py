"""The core's query functions that the command line, the rehearsal, the health check and the
log view call instead of writing SQL (issue 11 item 4), on the three-county province."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert

from matrix.db import ping
from matrix.provisioning.actual import recorded_rooms, recorded_seats
from matrix.provisioning.binding import bind, names_of_contacts
from matrix.relay.accounts import owed_copies
from matrix.relay.people import (
    first_with_phone,
    group_named,
    groups_with_rooms,
    name_for_wechat_id,
    roster_wechat_ids,
    shard_rooms,
    unit_names_by_wechat_id,
    units_by_wechat_id_under,
)
from matrix.tables import DELIVERY, GROUP, MEMBERSHIP, PERSON
from matrix.tree import roster_size, unit_name, unit_names, units_by_code_or_name

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _groups(engine: Engine) -> None:
    """K1 leads a 县级群 split in two shards and a 学校群 without a room yet."""
    with engine.begin() as conn:
        for gid, unit, kind, shard, name, room in (
            (1, "K1", "county", 1, "乙1县一群", "room-1"),
            (2, "K1", "county", 2, "乙1县二群", "room-2"),
            (3, "K1S1", "school", 0, "乙1县第1小学群", None),
            (4, "K2", "county", 0, "乙2县群", "room-4"),
        ):
            conn.execute(
                insert(GROUP).values(
                    id=gid,
                    unit_code=unit,
                    kind=kind,
                    shard=shard,
                    name=name,
                    room_id=room,
                    owner_account="bot-a" if room else None,
                )
            )


def test_units_are_found_by_code_or_name_and_named(province_db: Engine) -> None:
    with province_db.connect() as conn:
        assert units_by_code_or_name(conn, "K1") == [("K1", "/P/C1/K1/")]
        assert units_by_code_or_name(conn, "乙2县") == [("K2", "/P/C1/K2/")]
        assert units_by_code_or_name(conn, "丙县") == []
        assert unit_name(conn, "K3") == "乙3县"
        assert unit_name(conn, "K9") is None
        assert unit_names(conn, ["P", "K9", None, ""]) == {"P": "示范省"}
        assert unit_names(conn, []) == {}
        # 1 province, 1 city, 3 counties with 2 schools each; 3 + 4 + 3×4 + 6×3 persons
        assert roster_size(conn) == (11, 37)
        ping(conn)


def test_groups_with_rooms_in_the_order_they_were_made(province_db: Engine) -> None:
    _groups(province_db)
    with province_db.connect() as conn:
        assert [g.name for g in groups_with_rooms(conn)] == ["乙1县一群", "乙1县二群", "乙2县群"]
        assert [g.name for g in groups_with_rooms(conn, containing="乙2")] == ["乙2县群"]
        assert [g.id for g in groups_with_rooms(conn, limit=1)] == [1]
        named = group_named(conn, "乙1县第1小学群")
        assert named is not None and (named.unit_code, named.room_id) == ("K1S1", None)
        assert group_named(conn, "没有的群") is None
        assert shard_rooms(conn, "K1", "county") == {1: "room-1", 2: "room-2"}
        assert shard_rooms(conn, "K3", "county") == {}
        assert recorded_rooms(conn) == [
            (1, "乙1县一群", "room-1", "bot-a"),
            (2, "乙1县二群", "room-2", "bot-a"),
            (4, "乙2县群", "room-4", "bot-a"),
        ]


def test_recorded_seats_are_the_actual_members_with_a_contact(province_db: Engine) -> None:
    _groups(province_db)
    with province_db.begin() as conn:
        pid = conn.execute(PERSON.select().where(PERSON.c.wechat_id == "wxK1n008")).one().id
        for contact, state, person, admin in (
            ("wxK1n008", "actual", pid, True),
            ("stranger", "actual", None, False),
            ("wxK1n009", "expected", None, False),
        ):
            conn.execute(
                insert(MEMBERSHIP).values(
                    group_id=1,
                    contact_id=contact,
                    state=state,
                    source="test",
                    person_id=person,
                    is_admin=admin,
                    nickname="乙1县-某" if admin else None,
                )
            )
        conn.execute(insert(MEMBERSHIP).values(group_id=1, state="actual", source="test"))
        assert recorded_seats(conn) == [
            (1, "wxK1n008", "乙1县-某", True, "K1office_staff"),
            (1, "stranger", None, False, None),
        ]


def test_people_by_wechat_id(province_db: Engine) -> None:
    with province_db.connect() as conn:
        everyone = dict(roster_wechat_ids(conn))
        assert len(everyone) == 37 and everyone["wxPn001"] == "Poffice_staff0"
        assert name_for_wechat_id(conn, "wxK1S1n012") == "K1S1大辅"
        assert name_for_wechat_id(conn, "wx-nobody") is None
        assert unit_names_by_wechat_id(conn)["wxK1S1n012"] == "乙1县第1小学"
        under = units_by_wechat_id_under(conn, "K1")
        assert set(under.values()) == {"K1S1", "K1S2"} and len(under) == 6
        ids = [
            r.id
            for r in conn.execute(PERSON.select().order_by(PERSON.c.id))
            if r.name.endswith("大辅")
        ]
        assert first_with_phone(conn, ids, "K2", "brigade_counselor") == ("K2S1大辅", "13900000022")
        assert first_with_phone(conn, ids, "K2", "core_squadron_counselor") is None
        assert first_with_phone(conn, [], "K2", "brigade_counselor") is None


def test_names_of_contacts_take_the_newest_binding(province_db: Engine) -> None:
    with province_db.begin() as conn:
        first, second = (
            conn.execute(PERSON.select().where(PERSON.c.wechat_id == w)).one().id
            for w in ("wxPn001", "wxPn002")
        )
        bind(conn, "contact-x", first, "admin", "cli:test")
        assert names_of_contacts(conn, ["contact-x", "contact-y"]) == {
            "contact-x": "Poffice_staff0"
        }
        bind(conn, "contact-x", second, "admin", "cli:test")
        assert names_of_contacts(conn, {"contact-x"}) == {"contact-x": "Poffice_staff1"}
        assert names_of_contacts(conn, []) == {}


def test_owed_copies_count_pending_and_sending_and_the_oldest(province_db: Engine) -> None:
    _groups(province_db)
    with province_db.begin() as conn:
        assert owed_copies(conn) == (0, None)
        for n, state in enumerate(("pending", "sending", "sent", "failed")):
            conn.execute(
                insert(DELIVERY).values(
                    key=f"k{n}",
                    kind="notice",
                    group_id=1,
                    state=state,
                    attempts=0,
                    resend=False,
                    rank=0,
                    tried="",
                    payload="{}",
                    next_at=NOW,
                    planned_at=NOW.replace(hour=9 - n),
                )
            )
        count, first = owed_copies(conn)
        assert count == 2
        assert first is not None and first.replace(tzinfo=UTC) == NOW.replace(hour=8)
