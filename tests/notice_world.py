"""A hand-built relay history on top of ``summary_world``'s groups, with every number known.

Groups (from ``summary_world``): 示范省 P's relay group (room-P), 甲市 C1's (room-C1), 乙1县 K1's
two shards (room-K1a, room-K1b); K2 has not built its group, K3 has none. Notices, written as
the relay would leave them (now: 2026-05-01 12:00 Beijing):

| notice | from | deadline | ack | copies | 收到 from |
| --- | --- | --- | --- | --- | --- |
| T1 | P  | 4-30 17:00 (passed) | yes | P, C1, K1a sent; K1b pending | C1, K1, K1S1 |
| T2 | K1 | 5-01 17:00 | yes | K1a, K1b sent | K1S1, K1S2 |
| T3 | P  | 5-01 23:59 | no | P, C1, K1b sent; K1a failed | – |

T1 owes 收到 from C1 (child of P), K1 K2 K3 (children of C1) and K1S1 K1S2 (children of K1):
city 1/1, county 1/3 (乙2县、乙3县 missing), school 1/2 (乙1县第2小学 missing); groups 3/4. Seen
from K2 only K2 itself counts (0/1); T2 never reached K2 and is not listed there.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select

from matrix.models import Acknowledgement, Delivery, Group, Notice
from tests.summary_world import build_groups

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=TZ)

# (from unit, issued in room, issued at, deadline, ack?, {room: state}, acknowledging units)
NOTICES = [
    (
        "P",
        "room-P",
        datetime(2026, 4, 30, 9, 0, tzinfo=TZ),
        datetime(2026, 4, 30, 17, 0, tzinfo=TZ),
        True,
        {"room-P": "sent", "room-C1": "sent", "room-K1a": "sent", "room-K1b": "pending"},
        ["C1", "K1", "K1S1"],
    ),
    (
        "K1",
        "room-K1a",
        datetime(2026, 5, 1, 8, 0, tzinfo=TZ),
        datetime(2026, 5, 1, 17, 0, tzinfo=TZ),
        True,
        {"room-K1a": "sent", "room-K1b": "sent"},
        ["K1S1", "K1S2"],
    ),
    (
        "P",
        "room-P",
        datetime(2026, 5, 1, 9, 0, tzinfo=TZ),
        datetime(2026, 5, 1, 23, 59, tzinfo=TZ),
        False,
        {"room-P": "sent", "room-C1": "sent", "room-K1a": "failed", "room-K1b": "sent"},
        [],
    ),
]


def build_notices(engine: Engine) -> None:
    """``summary_world``'s groups, then the notices of the table above."""
    build_groups(engine)
    notice_t, delivery_t = Notice.__table__, Delivery.__table__  # type: ignore[attr-defined]
    ack_t, group_t = Acknowledgement.__table__, Group.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        rooms = dict(conn.execute(select(group_t.c.room_id, group_t.c.id)).all())
        for unit, room, issued, deadline, ack, copies, acked in NOTICES:
            notice_id = conn.execute(
                insert(notice_t).values(
                    unit_code=unit,
                    group_id=rooms[room],
                    issuer_contact="wx-office",
                    issuer_name="办公室",
                    body="请于今天报送建群情况",
                    deadline=deadline,
                    require_ack=ack,
                    target_groups=len(copies),
                    created_at=issued,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            at = issued + timedelta(minutes=1)
            conn.execute(
                insert(delivery_t),
                [
                    {
                        "key": f"notice:{notice_id}:{rooms[r]}",
                        "kind": "notice",
                        "notice_id": notice_id,
                        "group_id": rooms[r],
                        "state": state,
                        "next_at": at,
                        "planned_at": at,
                        "sent_at": at if state == "sent" else None,
                    }
                    for r, state in copies.items()
                ],
            )
            if acked:
                conn.execute(
                    insert(ack_t),
                    [
                        {
                            "notice_id": notice_id,
                            "unit_code": code,
                            "group_id": rooms[room],
                            "contact_id": f"wx-{code}",
                            "at": at,
                        }
                        for code in acked
                    ],
                )
