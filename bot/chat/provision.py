"""#建群, #确认 and #核查 in chat: the planner, the apply and the auditor behind three executors.

``#建群 [单位]`` plans the groups of a unit in the asker's subtree (``matrix.provisioning.plan``) and shows
it briefly: the groups, the steps, how many days the accounts' quotas need. The plan is kept for
the asker in that room. ``#确认`` carries the asker's last plan there out through the bot
accounts (``matrix.provisioning.apply``) in the background: the bot says it started, and reports the result
in the room when the apply stops — finished, waiting for tomorrow's quotas, or interrupted
(then ``#确认`` again resumes the recorded run without repeating a step).

``#核查 [单位]`` reads the rooms of the unit's subtree from the platform, audits them against
the roster (``matrix.provisioning.findings``) and answers with the findings counted by code;
``#汇总 核查`` tabulates the same findings (``refresh_under``, then ``audit_under``).

A national plan or audit takes seconds: surveying, planning, starting a run and auditing run in
a worker thread (``Services.offload``) with a connection of their own; the shown plans and the
running applies are the core's (``matrix.provisioning.plan.ShownPlans``,
``matrix.provisioning.apply.Applies``), changed only on the event loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Engine

from bot.chat import relay as relay_chat
from bot.chat.adopt import ask_owners
from bot.chat.commands import UNIT, Command, Kind, Param, Who
from bot.chat.context import Call, Reply, Sender
from bot.render.provision import code_totals, plan_units
from bot.render.templates import render
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.platform import Platform
from matrix.provisioning import apply
from matrix.provisioning.actual import refresh_rooms
from matrix.provisioning.adopt import settle_requests
from matrix.provisioning.findings import Finding, audit
from matrix.provisioning.membership import survey
from matrix.provisioning.plan import ACTION_LABELS, PLAN_TTL, Plan, build_plan
from matrix.provisioning.schedule import AccountQuota
from matrix.relay.people import built_groups_under
from matrix.tree import UnitTree

UNITS_SHOWN = 5  # units whose groups #建群 lists; the rest are counted
PROGRESS_EVERY = 1000  # steps between two progress messages of a long apply


class NothingToConfirm(MatrixError):
    """#确认 without a plan shown (or shown too long ago) and no interrupted apply."""


class _Planned(NamedTuple):
    plan: Plan
    counts: dict[str, int]
    unreachable: int  # people the plan cannot reach (no 微信号)
    resumable: bool  # an interrupted apply of the same scope waits for #确认
    units: list[dict[str, Any]]
    hidden: int


def _plan(
    engine: Engine,
    blueprint: Blueprint,
    unit: str,
    bots: frozenset[str],
    accounts: list[AccountQuota],
) -> _Planned:
    """#建群's work, in a worker thread."""
    with engine.connect() as conn:
        plan = build_plan(survey(conn, blueprint, unit, bots=bots), accounts)
        resumable = apply.open_run(conn, plan.scope) is not None
        units, hidden = plan_units(plan, conn, UNITS_SHOWN)
    unreachable = sum(len(g.unreachable) for g in plan.groups)
    return _Planned(plan, plan.counts(), unreachable, resumable, units, hidden)


async def provision(call: Call) -> Reply:
    """#建群 [单位]: the plan for the unit's subtree, kept for the asker's #确认."""
    bot = call.core
    assert call.unit is not None  # an office command always acts on a unit
    plan, counts, unreachable, resumable, units, hidden = await bot.offload(
        _plan, bot.engine, bot.blueprint, call.unit, frozenset(bot.accounts), bot.account_quotas
    )
    asks = sum(len(g.asks) for g in plan.groups)
    if not plan.empty or resumable or asks:
        bot.shown_plans.keep(
            call.message.room_id, call.asker.contact_id, plan, call.unit, bot.clock()
        )
    return Reply(
        "plan.j2",
        {
            "unit": bot.tree.name(call.unit),
            "code": call.unit,
            "plan": plan,
            "counts": counts,
            "labels": ACTION_LABELS,
            "units": units,
            "hidden": hidden,
            "unreachable": unreachable,
            "resumable": resumable,
            "asks": asks,
        },
        audit={"steps": counts, "days": plan.schedule.days},
    )


async def confirm(call: Call) -> Reply:
    """#确认: carry out the asker's last plan in this room (or resume its interrupted apply);
    a #确认 of a notice held for its size is the relay's (``bot.chat.relay.confirm``)."""
    if await relay_chat.confirms_notice(call):
        return await relay_chat.confirm(call)
    # two #确认 in different rooms must not both find no apply running and both start one
    async with call.core.applies.admission:
        return await _confirm(call)


async def _confirm(call: Call) -> Reply:
    bot = call.core
    room, asker = call.message.room_id, call.asker.contact_id
    shown = bot.shown_plans.get(room, asker, bot.clock())
    scope = shown.plan.scope if shown is not None else call.unit
    assert scope is not None
    busy = bot.applies.busy(scope, lambda a, b: _overlap(bot.tree, a, b))
    if busy is not None:
        return Reply("apply_started.j2", {"already": True, "unit": bot.tree.name(busy)})
    # short reads of their own, not the command's transaction: that would stay open (and keep
    # a pooled connection) while the owners are asked and the run is written
    with bot.engine.connect() as conn:
        open_scopes = apply.open_scopes(conn) if shown is not None else []
        found = apply.open_run(conn, scope) if shown is None else None
    if shown is not None:
        other = next(
            (s for s in open_scopes if s != scope and _overlap(bot.tree, s, scope)),
            None,
        )
        if other is not None:
            # two runs over the same rooms would both do what the first leaves undone
            raise NothingToConfirm(
                f"{bot.tree.name(other)}的建群计划还没有执行完，与本计划涉及相同的群",
                fix=f"请先在{bot.tree.name(other)}的群里发送 #确认 把它执行完，再重新发送 #建群",
            )
        # the owners of adopted rooms are asked for what the bots may not do there
        await ask_owners(bot, shown.plan, call.asker.contact_id)
        run_id, resumed = await bot.offload(
            apply.start_run, bot.engine, shown.plan, call.asker.contact_id
        )
        bot.shown_plans.drop(room, asker)
    else:
        if found is None:
            raise NothingToConfirm(
                "没有待确认的建群计划",
                fix=f"请先发送 #建群 查看计划（{int(PLAN_TTL // 60)} 分钟内发送 #确认 执行）",
            )
        run_id, resumed = found, True
    left = await bot.offload(apply.steps_left, bot.engine, run_id)
    bot.applies.started(
        scope, bot.spawn(_carry_out(call, run_id, scope), run=run_id, room=call.message.room_id)
    )
    return Reply(
        "apply_started.j2",
        {"already": False, "unit": bot.tree.name(scope), "resumed": resumed, "left": left},
        audit={"run": run_id, "resumed": resumed, "steps": left},
    )


async def _carry_out(call: Call, run_id: int, scope: str) -> None:
    """The apply itself, in the background; progress and the result go to the room."""
    bot = call.core
    platform, room = call.platform, call.message.room_id
    asker = call.asker.contact_id

    async def progress(report: apply.ApplyReport) -> None:
        done = report.done + report.failed
        if done and done % PROGRESS_EVERY == 0:
            await _say(bot.outbox, platform, room, "apply_progress.j2", report=report)

    try:
        report = await apply.run_steps(
            bot.engine,
            run_id,
            bot.platforms,
            accounts=bot.account_quotas,
            actor=asker,
            now=bot.now(),
            sleep=bot.sleep,
            progress=progress,
        )
        left = apply.steps_left(bot.engine, run_id)
        absent = sorted(apply.accounts_left(bot.engine, run_id) - set(bot.platforms))
        await _say(
            bot.outbox,
            platform,
            room,
            "apply_result.j2",
            mentions=(asker,),
            report=report,
            left=left,
            absent=absent,
            unit=bot.tree.name(scope),
        )
    finally:
        bot.applies.finished(scope)


async def _say(
    outbox: Sender,
    platform: Platform,
    room: str,
    template: str,
    mentions: tuple[str, ...] = (),
    **data: Any,
) -> None:
    await outbox.send(platform, room, render(f"replies/{template}", **data).strip(), mentions)


def _overlap(tree: UnitTree, a: str, b: str) -> bool:
    """Whether the subtrees of units ``a`` and ``b`` share a unit."""
    if a not in tree or b not in tree:
        return a == b
    return bool(tree.is_within(a, b) or tree.is_within(b, a))


def audit_under(
    engine: Engine, blueprint: Blueprint, unit: str, bots: frozenset[str]
) -> list[Finding]:
    """What is wrong in ``unit``'s subtree by the stored rooms (blocking: in a worker thread)."""
    with engine.connect() as conn:
        found = survey(conn, blueprint, unit, bots=bots)
        findings = audit(conn, found)
    for big in (found.targets, found.expectations, found.shortfalls):
        let_go(big)
    return findings


def let_go(items: list[Any]) -> None:
    """Empty a large list this thread built, one item at a time: freed all at once, a national
    survey holds the GIL (and so the event loop) for a tenth of a second."""
    while items:
        items.pop()


def _audit_totals(
    engine: Engine, blueprint: Blueprint, unit: str, bots: frozenset[str]
) -> tuple[int, list[dict[str, Any]]]:
    # only the totals go back to the loop: a national audit's findings are many objects,
    # built and freed in the worker thread
    findings = audit_under(engine, blueprint, unit, bots)
    totals = len(findings), code_totals(findings)
    let_go(findings)
    return totals


async def refresh_under(call: Call) -> None:
    """Read the rooms of the unit acted on afresh from the platform, as #核查 needs them."""
    bot = call.core
    assert call.unit is not None
    # read the platform first: nothing may wait on the network inside a write
    rooms = await bot.offload(built_groups_under, bot.engine, call.unit)
    # each room is read by the account that owns it; one whose owner is not ours, by every
    # account (whichever is in it)
    by_account: dict[str, set[int]] = {}
    for gid, owner in rooms:
        for account in [owner] if owner in bot.platforms else list(bot.platforms):
            by_account.setdefault(account, set()).add(int(gid))
    for account, groups in by_account.items():
        await refresh_rooms(bot.platforms[account], bot.engine, bots=bot.accounts, only=groups)
    # what the owners of adopted rooms were asked and the rooms now show done is no longer asked
    await bot.offload(_settle, bot.engine, {gid for gids in by_account.values() for gid in gids})


def _settle(engine: Engine, groups: set[int]) -> None:
    with engine.begin() as conn:
        settle_requests(conn, groups)


async def audit_(call: Call) -> Reply:
    """#核查 [单位]: what is wrong in the unit's subtree, counted by finding code."""
    bot = call.core
    assert call.unit is not None
    await refresh_under(call)
    total, codes = await bot.offload(
        _audit_totals, bot.engine, bot.blueprint, call.unit, frozenset(bot.accounts)
    )
    return Reply(
        "audit.j2",
        {
            "unit": bot.tree.name(call.unit),
            "word": bot.unit_word(call.unit) if call.args["unit"] else "",
            "total": total,
            "codes": codes,
        },
        audit={"findings": total},
    )


PROVISION = Command(
    "provision",
    "建群",
    "provision",
    (UNIT,),
    Who.OFFICE,
    "按蓝图列出本单位（或下属单位）要建的群和要拉的人，发 #确认 后执行",
    "#建群 乙1县",
    templates=("plan.j2",),
    executor=provision,
)
CONFIRM = Command(
    "confirm",
    "确认",
    "confirm",
    (Param("notice", "通知编号", Kind.NOTICE, required=False),),
    Who.OFFICE,
    "执行本群最近一次 #建群 列出的计划，或发出等待确认的通知（写通知编号，如 #确认 T12）",
    "#确认",
    templates=("apply_started.j2", "apply_progress.j2", "apply_result.j2", relay_chat.TEMPLATE),
    executor=confirm,
)
AUDIT = Command(
    "audit",
    "核查",
    "audit",
    (UNIT,),
    Who.OFFICE,
    "核查群成员与名册是否一致：陌生人、缺员、群昵称、管理员等",
    "#核查 乙1县",
    templates=("audit.j2",),
    executor=audit_,
)
