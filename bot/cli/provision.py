"""Commands for provisioning: plan (who must be in which group, and the steps to get there),
audit (what is wrong today), both read only; and provision, which carries a plan out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.app import app, ctx_of, echo, friendly
from bot.render.templates import render
from matrix.errors import MatrixError
from matrix.provisioning.schedule import AccountQuota

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from sqlalchemy import Connection

    from matrix.provisioning.membership import Survey


Unit = Annotated[
    str | None, typer.Option("--unit", "-u", help="只看这个单位及其下属单位（单位代码）")
]
AsJson = Annotated[bool, typer.Option("--json", help="输出 JSON，供脚本使用")]
Limit = Annotated[int, typer.Option("--limit", min=1, help="最多列出多少个单位")]


@contextmanager
def _surveyed(
    ctx: typer.Context, unit: str | None
) -> Iterator[tuple[Connection, Survey, list[AccountQuota]]]:
    """The scope read once, with the configured bot accounts (left out of member lists)."""
    from matrix.provisioning.membership import survey

    c = ctx_of(ctx)
    accounts = c.settings.account_quotas()
    with c.ready_engine().connect() as conn:
        yield conn, survey(conn, c.blueprint, unit, bots=[a.id for a in accounts]), accounts


@app.command("plan")
@friendly
def plan_cmd(
    ctx: typer.Context, unit: Unit = None, as_json: AsJson = False, limit: Limit = 30
) -> None:
    """建群计划（只预览，不执行）：要建哪些群、邀请和移出谁、由哪个账号在第几天完成。"""
    from bot.cli.progress import progress
    from bot.render.provision import plan_units
    from matrix.provisioning.plan import ACTION_LABELS, build_plan

    with (
        progress(quiet=as_json) as bar,
        bar.step("读取名册和群"),
        _surveyed(ctx, unit) as (conn, found, accounts),
    ):
        plan = build_plan(found, accounts, bar.counter("计算建群计划", "个群"))
        if as_json:
            echo(json.dumps(plan.to_json(), ensure_ascii=False))
            return
        units, hidden = plan_units(plan, conn, limit)
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
            asks=sum(len(g.asks) for g in plan.groups),
        )
    )


@app.command("audit")
@friendly
def audit_cmd(
    ctx: typer.Context, unit: Unit = None, as_json: AsJson = False, limit: Limit = 30
) -> None:
    """检查群矩阵：未建的群、缺少或多出的成员、管理员、名额和群昵称问题，并给出处理办法。"""
    from bot.cli.progress import progress
    from bot.render.findings import finding_json
    from bot.render.provision import audit_units, code_totals
    from matrix.provisioning.findings import audit

    with (
        progress(quiet=as_json) as bar,
        bar.step("读取名册和群"),
        _surveyed(ctx, unit) as (conn, found, _),
    ):
        findings = audit(conn, found, bar.counter("审计各群", "个群"))
    if as_json:
        echo(json.dumps({"findings": [finding_json(f) for f in findings]}, ensure_ascii=False))
        return
    view = found.view
    names = {code: info[0] for code, info in view.units.items()}
    units, hidden = audit_units(findings, names, limit)
    echo(
        render(
            "provision/audit.txt.j2",
            scope=view.name(found.scope),
            scope_code=found.scope,
            total=len(findings),
            totals=code_totals(findings),
            units=units,
            hidden=hidden,
        )
    )


@app.command("provision")
@friendly
def provision_cmd(ctx: typer.Context, unit: Unit = None) -> None:
    """按建群计划执行：在模拟微信中（嵌入模式）按各账号每天的配额逐日建群、邀请、设管理员。

    邀请被接受后同步群成员。真实微信下由运行中的机器人执行（群里发送 #建群、#确认）。"""
    from bot.cli.console import open_stage
    from bot.cli.progress import progress
    from bot.render.provision import applied_text

    c = ctx_of(ctx)
    if c.settings.platform != "simulated":
        raise MatrixError(
            "真实微信模式下不能从命令行直接执行建群计划",
            where="config.toml platform",
            fix="请运行 qunmatrix run 接入各机器人账号，再由单位办公室在群里发送 #建群 查看计划、"
            '#确认 执行（见 README“真实微信”一节）；要演练可设 platform = "simulated"',
        )
    with progress() as bar, open_stage(c) as stage:
        text = applied_text(stage.provision(unit, bar.counter("按建群计划逐日执行", "步")))
    echo(text)
