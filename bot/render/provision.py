"""What the plan, the apply and the audit look like to people, as data for templates: the CLI's
(``qunmatrix plan`` / ``audit`` / ``provision``, the demo) and the chat's (#建群 / #核查) views
are drawn from here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from bot.render.findings import finding_title, fix_text, severity_label
from bot.render.templates import render
from matrix.provisioning.findings import KINDS, SEVERITIES, Finding, person_names
from matrix.provisioning.plan import ACTION_LABELS, Plan

if TYPE_CHECKING:
    from matrix.provisioning.apply import ApplyReport


class Applied(Protocol):
    """What a carried-out plan tells (``bot.rehearsal.sim_build.BuildReport`` is one; render
    does not import the rehearsal, which imports render)."""

    plan: Plan
    days: list[ApplyReport]
    accepted: int

    @property
    def finished(self) -> bool: ...

    @property
    def unreachable(self) -> int: ...


NAMES_SHOWN = 5  # names listed per group and kind of step; the rest are counted


def plan_units(plan: Plan, conn: Connection, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The plan grouped by unit for the human view: the first ``limit`` units with steps, and
    how many units were left out."""
    units: dict[str, dict[str, Any]] = {}
    hidden: set[str] = set()
    rows = []
    for g, placement in plan.scheduled():
        if not g.work and not g.unreachable and not g.asks:
            continue
        unit = g.target.unit
        if unit not in units and len(units) >= limit:
            hidden.add(unit)
            continue
        rows.append((g, placement))
        units.setdefault(unit, {"code": unit, "name": plan.survey.view.name(unit), "groups": []})
    shown = [p for g, _ in rows for p, _ in g.removals[:NAMES_SHOWN] if p is not None]
    shown += [p for g, _ in rows for p in g.unreachable[:NAMES_SHOWN]]
    names = person_names(conn, shown)
    for g, placement in rows:
        days = [d for d, _ in placement.days] if placement else []
        units[g.target.unit]["groups"].append(
            {
                "name": g.target.name,
                "members": len(g.target.members),
                "create": g.create,
                "initial": len(g.initial),
                "rename_from": g.rename_from,
                "invites": len(g.invites),
                "invitations": sum(1 for _, asks in g.invites if asks),
                "removals": len(g.removals),
                # a removal is a roster person (named) or a contact bound to nobody
                "removal_names": [
                    {
                        "known": p is not None,
                        "name": "" if p is None else names.get(p, str(p)),
                        "contact": c,
                    }
                    for p, c in g.removals[:NAMES_SHOWN]
                ],
                "admins": len(g.admins),
                # asked of the owner of an adopted room: the bots may not do them there
                "asks": _asks(g.asks),
                "unreachable": len(g.unreachable),
                "unreachable_names": [names.get(p, str(p)) for p in g.unreachable[:NAMES_SHOWN]],
                "account": placement.account if placement else "",
                "first_day": days[0] if days else 0,
                "last_day": days[-1] if days else 0,
            }
        )
    return list(units.values()), len(hidden)


def _asks(asks: list[tuple[str, int | None, str | None]]) -> dict[str, int]:
    """How many steps of each kind a room's owner is asked to do ({} for none)."""
    if not asks:
        return {}
    return {a: sum(1 for x, _, _ in asks if x == a) for a in ("remove", "set_admin", "rename")}


def audit_units(
    findings: list[Finding], names: dict[str, str], limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Findings grouped by unit (tree order), the first ``limit`` units; and how many findings
    were left out."""
    units: dict[str, dict[str, Any]] = {}
    hidden = 0
    for f in findings:
        # a school's finding is listed under the school; the unit order is the tree's
        entry = units.get(f.unit)
        if entry is None:
            if len(units) >= limit:
                hidden += 1
                continue
            entry = units[f.unit] = {
                "code": f.unit,
                "name": names.get(f.unit, f.unit),
                "findings": [],
            }
        entry["findings"].append(
            {
                "severity": severity_label(f.severity),
                "title": finding_title(f.code),
                "group": f.group,
                "fix": fix_text(f),
            }
        )
    return list(units.values()), hidden


def code_totals(findings: list[Finding]) -> list[dict[str, Any]]:
    """How many findings of each code, in the catalogue's order (most severe first), with the
    first finding's fix as an example."""
    first: dict[str, Finding] = {}
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.code] = counts.get(f.code, 0) + 1
        first.setdefault(f.code, f)
    return [
        {
            "code": code,
            "title": finding_title(code),
            "severity": severity_label(k.severity),
            "n": counts[code],
            "example": fix_text(first[code]),
        }
        for code, k in sorted(KINDS.items(), key=lambda kv: _rank(kv[1].severity))
        if code in counts
    ]


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def applied_text(report: Applied) -> str:
    """What ``qunmatrix provision`` (and the demo) print once a plan was carried out."""
    view = report.plan.survey.view
    return render(
        "provision/applied.txt.j2",
        report=report,
        scope=view.name(view.scope),
        scope_code=view.scope,
        counts=report.plan.counts(),
        labels=ACTION_LABELS,
    ).rstrip()
