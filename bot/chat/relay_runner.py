"""The relay inside a bot process (``matrix.relay`` wired to the accounts): one delivery worker
per bot account, each fed its account's echoes so that they confirm its sends, and the
scheduled reminders and escalation, all driven by one loop on the relay's clock.

The same object runs under the simulated WeChat (``Stage``: a virtual clock, ``catch_up`` after
every step, ``catch_up(until=…)`` to let time pass) and in ``qunmatrix run`` (the real clock,
``serve`` forever next to the Wechaty adapter).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from loguru import logger
from sqlalchemy import Engine

from bot.config import Settings
from bot.render.templates import render
from matrix.blueprint import Blueprint
from matrix.platform import IncomingMessage, Platform, Presence
from matrix.provisioning.actual import store_rooms
from matrix.relay import (
    Clock,
    DeliveryWorker,
    RelayEnv,
    SystemClock,
    drive,
    next_job_at,
    run_due_jobs,
)
from matrix.relay.handover import HandOver

RESTART_AFTER = 5.0  # seconds before the loop starts again after an unexpected error


class EchoingAccount(Platform, Protocol):
    """A bot account that reports its own messages as the platform echoes them back."""

    def on_echo(self, handler: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        """Call ``handler`` with every message this account sent, as the platform echoes it."""
        ...


def compose(template: str, context: dict[str, Any]) -> str:
    """How the engine's messages (copies, reminders, escalations, reports) become text."""
    return render(template, **context)


def relay_env(
    settings: Settings, engine: Engine, blueprint: Blueprint, clock: Clock | None = None
) -> RelayEnv:
    """The relay's bundle as configured (``[relay]``, ``timezone``), on ``clock``."""
    return RelayEnv(
        engine, blueprint, settings.relay, ZoneInfo(settings.timezone), clock or SystemClock()
    )


class PromptClock(SystemClock):
    """The real clock, whose ``sleep`` ends early when work is queued in this process, so that
    a notice's first copies go out at once instead of at the next idle poll."""

    def __init__(self) -> None:
        self._woken = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), max(0.0, seconds))
        self._woken.clear()

    def wake(self) -> None:
        self._woken.set()


class Relay:
    """The relay's moving parts in one bot process."""

    def __init__(self, env: RelayEnv) -> None:
        self.env = env
        self.workers: dict[str, DeliveryWorker] = {}
        self._started: set[str] = set()
        self._ready = asyncio.Event()
        self.due = False  # work was queued since the last catch_up (the stage runs it then)
        self._lost_hooks: list[Callable[[HandOver], None]] = []

    def on_lost(self, hook: Callable[[HandOver], None]) -> None:
        """Call ``hook`` whenever one of this process's accounts hands its groups over."""
        self._lost_hooks.append(hook)
        for worker in self.workers.values():
            worker.on_lost.append(hook)

    def add_account(self, account: EchoingAccount) -> None:
        """Send through ``account`` too; its echoes confirm its copies."""
        if account.account_id in self.workers:
            return
        worker = DeliveryWorker(self.env, account, compose)
        worker.on_lost.extend(self._lost_hooks)
        account.on_echo(worker.observe)
        account.on_presence(self._presence_changed)
        self.workers[account.account_id] = worker

    async def _presence_changed(self, presence: Presence) -> None:
        if presence is Presence.ONLINE:
            self.poke()  # waiting copies go out now, not at the next idle poll

    async def start(self) -> None:
        """Register each account's rooms and take back what a previous run of it left
        half-done (sent again, marked 补发). An account started before only registers its rooms
        again (after a reconnect, or once new groups were built): taking rows back then could
        re-send a copy that is on the wire right now. Every room an account sits in, matrix
        group or not, is recorded too: ``qunmatrix adopt --match`` pairs them with groups."""
        for account_id, worker in self.workers.items():
            again = account_id in self._started
            rooms = await worker.platform.list_rooms()
            await asyncio.to_thread(store_rooms, self.env.engine, account_id, rooms)
            if again:
                await worker.register([r.room_id for r in rooms])
                continue
            recovered = await worker.start(rooms)
            self._started.add(account_id)
            if recovered:
                logger.warning("账号 {} 有 {} 条消息结果未知，将补发", account_id, recovered)
        self._ready.set()
        self.poke()

    def poke(self) -> None:
        """Something was queued: look now rather than at the next idle poll."""
        self.due = True
        if isinstance(self.env.clock, PromptClock):
            self.env.clock.wake()

    async def catch_up(self, until: datetime | None = None) -> None:
        """Send what is owed and run the jobs that are due; with ``until``, let time pass to
        then, running every reminder and escalation that falls due on the way."""
        self.due = False
        await drive(
            self.env,
            list(self.workers.values()),
            until=until,
            jobs=self._jobs,
            next_job=self._next_job if until is not None else None,
        )

    async def serve(self) -> None:
        """Run forever once ``start`` has run (``qunmatrix run``); an unexpected error is
        logged and the loop starts again, since every step is in the database."""
        await self._ready.wait()
        while True:
            try:
                await drive(
                    self.env,
                    list(self.workers.values()),
                    jobs=self._jobs,
                    next_job=self._next_job,
                    forever=True,
                )
            except Exception as exc:
                logger.opt(exception=exc).error("通知下发循环出错，{} 秒后重试", RESTART_AFTER)
                await asyncio.sleep(RESTART_AFTER)

    def _jobs(self) -> int:
        return run_due_jobs(self.env)

    def _next_job(self) -> datetime | None:
        return next_job_at(self.env)
