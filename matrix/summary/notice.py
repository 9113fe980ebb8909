"""The notice status table (通知回执情况): for one unit's subtree, the most recent notices that
reached it, each with the relay's own progress figures (``matrix.relay.acks``) as seen from that
unit: per level, groups delivered / total and units acknowledged / total, and the units that
have not acknowledged yet. A withdrawn notice and one replaced by its correction say so, and
owe no receipts; the correction says which notice it corrects (its receipts carry over).

A notice *reached* a subtree when it was delivered to a group led inside it, or to the group of
the unit's parent (the unit itself then owes a 收到 there). Seen from a unit at or above the
issuing unit a notice counts in full; seen from a unit below it, only that unit's part counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, or_, select

from matrix.relay.acks import Progress, progress_within
from matrix.relay.codes import notice_code
from matrix.relay.env import RelayEnv
from matrix.relay.people import unit as relay_unit
from matrix.scope import UNIT, UnitRef, resolve_target, under
from matrix.tables import DELIVERY, GROUP, NOTICE

RECENT = 10  # notices listed; a table is about what is going on now, not an archive


@dataclass(frozen=True)
class NoticeLine:
    """One notice in the table: its progress (levels, laggards) and when it was issued."""

    progress: Progress
    issued_at: datetime  # local
    body: str
    overdue: bool  # the deadline has passed and units still owe a 收到
    state: str = "live"  # withdrawn, corrected … (``matrix.relay.lifecycle``)
    corrects: str | None = None  # a correction: the notice it corrects
    corrected_by: str | None = None  # the correction that replaced this one

    @property
    def laggards(self) -> int:
        """Units that still owe a 收到 (0 when none was asked for, or the notice was withdrawn
        or replaced by its correction: its receipts are the correction's)."""
        p = self.progress
        return p.units_total - p.units_acked if p.require_ack and self.state == "live" else 0

    @property
    def missing(self) -> list[str]:
        """Names of the laggards, top level first (each level's list is capped by the relay's
        ``list_limit``; ``laggards`` has the full count)."""
        return [name for level in self.progress.levels for name in level.missing]


@dataclass(frozen=True)
class NoticeTable:
    unit: UnitRef
    as_of: date
    notices: list[NoticeLine]  # newest first
    more: int  # older notices that reached the subtree and are not listed

    @property
    def laggards(self) -> int:
        return sum(n.laggards for n in self.notices)


def notice_table(
    env: RelayEnv,
    *,
    requester: str,
    target: str | None = None,
    as_of: date,
    limit: int = RECENT,
) -> NoticeTable:
    """The newest ``limit`` notices that reached ``target``'s subtree (default: the
    requester's unit), scope-checked like every summary."""
    with env.engine.connect() as conn:
        unit = resolve_target(conn, requester, target)
        within = relay_unit(conn, unit.code)
        assert within is not None  # resolve_target found it current
        led = GROUP.join(UNIT, UNIT.c.code == GROUP.c.unit_code)
        reached_groups = under(UNIT.c.path, unit.path)
        if within.parent_code is not None:
            reached_groups = or_(reached_groups, GROUP.c.unit_code == within.parent_code)
        reached = (
            select(DELIVERY.c.notice_id)
            .select_from(DELIVERY.join(led, GROUP.c.id == DELIVERY.c.group_id))
            .where(DELIVERY.c.kind == "notice", reached_groups)
            .distinct()
        )
        total = conn.execute(select(func.count()).where(NOTICE.c.id.in_(reached))).scalar_one()
        fixes = NOTICE.alias("fixes")  # the correction of each notice, if any
        rows = conn.execute(
            select(
                NOTICE.c.id,
                NOTICE.c.created_at,
                NOTICE.c.body,
                NOTICE.c.state,
                NOTICE.c.corrects_id,
                fixes.c.id.label("fixed_by"),
            )
            .outerjoin(fixes, fixes.c.corrects_id == NOTICE.c.id)
            .where(NOTICE.c.id.in_(reached))
            .order_by(NOTICE.c.id.desc())
            .limit(limit)
        ).all()
        now = env.now()
        lines = []
        for r in rows:
            progress = progress_within(conn, env, r.id, within)
            late = progress.require_ack and progress.units_acked < progress.units_total
            overdue = late and now > progress.deadline and r.state == "live"
            lines.append(
                NoticeLine(
                    progress,
                    env.local(r.created_at),
                    r.body,
                    overdue,
                    r.state,
                    notice_code(r.corrects_id) if r.corrects_id else None,
                    notice_code(r.fixed_by) if r.fixed_by else None,
                )
            )
    return NoticeTable(unit, as_of, lines, total - len(lines))
