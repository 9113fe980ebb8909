"""Commands for provisioning: plan (who must be in which group, and the steps to get there)
and audit (what is wrong today). Both read only; applying a plan is the bot's job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from sqlalchemy import Connection

from bot.cli_app import app, ctx_of, echo, friendly
from bot.config import Settings
from bot.render import render
from matrix.findings import KINDS, SEVERITY_LABELS, Finding, audit, person_names
from matrix.membership import Survey, survey
from matrix.plan import ACTION_LABELS, Plan, build_plan
from matrix.schedule import AccountQuota

NAMES_SHOWN = 5  # names listed per group and kind of step; the rest are counted

Unit = Annotated[
    str | None, typer.Option("--unit", "-u", help="只看这个单位及其下属单位（单位代码）")
]
AsJson = Annotated[bool, typer.Option("--json", help="输出 JSON，供脚本使用")]
Limit = Annotated[int, typer.Option("--limit", min=1, help="最多列出多少个单位")]


def account_quotas(settings: Settings) -> list[AccountQuota]:
    """The configured bot accounts as the scheduler sees them."""
    return [
        AccountQuota(a.id, a.daily_group_creations, a.ops_per_second, a.active_hours)
        for a in settings.accounts
    ]


@contextmanager
def _surveyed(
    ctx: typer.Context, unit: str | None
) -> Iterator[tuple[Connection, Survey, list[AccountQuota]]]:
    """The scope read once, with the configured bot accounts (left out of member lists)."""
    c = ctx_of(ctx)
    accounts = account_quotas(c.settings)
    with c.ready_engine().connect() as conn:
        yield conn, survey(conn, c.blueprint, unit, bots=[a.id for a in accounts]), accounts


def _plan_units(plan: Plan, conn: Connection, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The plan grouped by unit for the human view: the first ``limit`` units with steps."""
    units: dict[str, dict[str, Any]] = {}
    hidden: set[str] = set()
    rows = []
    for g, placement in plan.scheduled():
        if not g.work and not g.unreachable:
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
                "removal_names": [
                    names.get(p, str(p)) if p is not None else f"未知联系人 {c}"
                    for p, c in g.removals[:NAMES_SHOWN]
                ],
                "admins": len(g.admins),
                "unreachable": len(g.unreachable),
                "unreachable_names": [names.get(p, str(p)) for p in g.unreachable[:NAMES_SHOWN]],
                "account": placement.account if placement else "",
                "first_day": days[0] if days else 0,
                "last_day": days[-1] if days else 0,
            }
        )
    return list(units.values()), len(hidden)


@app.command("plan")
@friendly
def plan_cmd(
    ctx: typer.Context, unit: Unit = None, as_json: AsJson = False, limit: Limit = 30
) -> None:
    """建群计划（只预览，不执行）：要建哪些群、邀请和移出谁、由哪个账号在第几天完成。"""
    with _surveyed(ctx, unit) as (conn, found, accounts):
        plan = build_plan(found, accounts)
        if as_json:
            echo(json.dumps(plan.to_json(), ensure_ascii=False))
            return
        units, hidden = _plan_units(plan, conn, limit)
    echo(
        render(
            "provision/plan.txt.j2",
            scope=found.view.name(found.scope),
            scope_code=found.scope,
            plan=plan,
            counts=plan.counts(),
            labels=ACTION_LABELS,
            units=units,
            hidden=hidden,
            unreachable=sum(len(g.unreachable) for g in plan.groups),
        )
    )


def _audit_units(
    findings: list[Finding], names: dict[str, str], limit: int
) -> tuple[list[dict[str, Any]], int]:
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
                "severity": SEVERITY_LABELS[f.severity],
                "title": f.title,
                "group": f.group,
                "fix": f.fix,
            }
        )
    return list(units.values()), hidden


@app.command("audit")
@friendly
def audit_cmd(
    ctx: typer.Context, unit: Unit = None, as_json: AsJson = False, limit: Limit = 30
) -> None:
    """检查群矩阵：未建的群、缺少或多出的成员、管理员、名额和群昵称问题，并给出处理办法。"""
    with _surveyed(ctx, unit) as (conn, found, _):
        findings = audit(conn, found)
    if as_json:
        echo(json.dumps({"findings": [f.to_json() for f in findings]}, ensure_ascii=False))
        return
    view = found.view
    names = {code: info[0] for code, info in view.units.items()}
    units, hidden = _audit_units(findings, names, limit)
    totals: dict[str, int] = {}
    for f in findings:
        totals[f.code] = totals.get(f.code, 0) + 1
    echo(
        render(
            "provision/audit.txt.j2",
            scope=view.name(found.scope),
            scope_code=found.scope,
            total=len(findings),
            totals=[
                {
                    "code": code,
                    "title": k.title,
                    "severity": SEVERITY_LABELS[k.severity],
                    "n": totals[code],
                }
                for code, k in KINDS.items()
                if code in totals
            ],
            units=units,
            hidden=hidden,
        )
    )
