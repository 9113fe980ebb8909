"""A hand-built build-status world on top of ``worlds.province()``, with every number known.

示范省 P → 甲市 C1 → 乙1县 K1, 乙2县 K2, 乙3县 K3 (two schools each). Groups and memberships
are inserted directly, as provisioning would leave them:

| unit | group | built | expected | actual |
| --- | --- | --- | --- | --- |
| P  | city-youth-heads (main)             | yes | 3 | 3 (2 of the expected + 1 unknown contact) |
| P  | province-committee (extension)      | yes | – | 4 |
| C1 | county-league-leaders (main)        | yes | 8 | 6 |
| K1 | county-counselors shard 1 (一群)    | yes | 5 | 4 |
| K1 | county-counselors shard 2 (二群)    | yes | 4 | 4 |
| K2 | county-counselors                   | no  | 7 | 0 |
| K3 | (nothing: forecast from the roster) |     | 8 |   |

So: province level 1/1 groups built (+1 extension), 7 members of 3 expected; city 1/1, 6 of 8
(75%); county 2 of 4 expected groups (50%), 8 of 24 members (33.3%: K3's 8 are forecast as the
planner would shard its roster); K2 and K3 have not built.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from matrix.models import Group, Membership, Person, Position

EXPECTED = {
    "province": {"units": 1, "expected": 1, "built": 1, "ext": 1, "members": 7, "want": 3},
    "city": {"units": 1, "expected": 1, "built": 1, "ext": 0, "members": 6, "want": 8},
    "county": {"units": 3, "expected": 4, "built": 2, "ext": 0, "members": 8, "want": 24},
}

# (unit, kind, shard, name, room id, expected persons, actual persons, unknown contacts)
GROUPS = [
    ("P", "city-youth-heads", 0, "示范省地市级团委少年部长群", "room-P", 3, 2, 1),
    ("P", "province-committee", 0, "示范省少工委委员群", "room-P2", 0, 4, 0),
    ("C1", "county-league-leaders", 0, "甲市县级少工委负责同志群", "room-C1", 8, 6, 0),
    ("K1", "county-counselors", 1, "乙1县少先队大队辅导员一群", "room-K1a", 5, 4, 0),
    ("K1", "county-counselors", 2, "乙1县少先队大队辅导员二群", "room-K1b", 4, 4, 0),
    ("K2", "county-counselors", 0, "乙2县少先队大队辅导员群", None, 7, 0, 0),
]


def build_groups(engine: Engine) -> None:
    """Insert the groups and memberships of the table above into a ``province_db``."""
    person_t, pos_t = Person.__table__, Position.__table__  # type: ignore[attr-defined]
    group_t, member_t = Group.__table__, Membership.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        people = [
            r[0]
            for r in conn.execute(
                select(person_t.c.id)
                .join(pos_t, pos_t.c.person_id == person_t.c.id)
                .order_by(person_t.c.id)
            )
        ]
        for unit, kind, shard, name, room, expected, actual, unknown in GROUPS:
            gid = conn.execute(
                insert(group_t).values(
                    unit_code=unit, kind=kind, shard=shard, name=name, room_id=room
                )
            ).inserted_primary_key[0]
            rows = [
                {"group_id": gid, "state": "expected", "person_id": p, "source": "blueprint"}
                for p in people[:expected]
            ]
            rows += [
                {"group_id": gid, "state": "actual", "person_id": p, "source": "platform"}
                for p in people[:actual]
            ]
            rows += [
                {
                    "group_id": gid,
                    "state": "actual",
                    "person_id": None,
                    "contact_id": f"wxid_stranger{i}",
                    "source": "platform",
                }
                for i in range(unknown)
            ]
            if rows:
                conn.execute(insert(member_t), rows)
