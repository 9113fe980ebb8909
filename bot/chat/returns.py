"""Structured returns (填报) in chat: ``#填报`` sends a form down the subtree as a notice, ``#填``
answers it for the sender's unit; ``#进度 F3`` and ``#汇总 F3`` (``bot.chat.relay``,
``bot.chat.summary``) read it back.

Answers come in floods (every school of a country answering the same morning), so ``#填`` does
not write on its own: it puts the parsed answer on the process's ``AnswerWriter``, which records
whatever has gathered meanwhile in one transaction (``matrix.returns.answers.record_answers``)
and wakes each waiting executor with its own result; the reply goes out after that commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from typing import Any

from loguru import logger

from bot.chat.commands import Command, Kind, Param, Who
from bot.chat.context import Call, Reply, Services
from bot.render.templates import render
from matrix.relay.env import RelayEnv
from matrix.relay.errors import RelayError
from matrix.returns.answers import Answered, AnswerRequest, parse_answer, record_answers
from matrix.returns.forms import FormCard, issue_form

TEMPLATE = "returns.j2"
BATCH = 500  # answers in one transaction: large enough to amortise the commit, small to reply soon


def compose(card: FormCard) -> str:
    """A form's notice as every group reads it."""
    return render("returns/form_notice.j2", c=card).strip()


async def form(call: Call) -> Reply:
    """#填报 <标题> 字段 <字段1> … 截止 <时间>: the form goes down like a notice."""
    relay = call.core.relay
    issued = await call.core.offload_quick(
        issue_form,
        relay.env,
        call.message.room_id,
        call.asker.contact_id,
        call.args["text"],
        compose=compose,
        confirm=True,  # a large one waits for #确认, as a notice does
    )
    relay.poke()
    return Reply(
        TEMPLATE,
        # the plan as a notice's, without its “回复收到” line: the form's own line says how to answer
        {
            "template": "returns/form_issued.j2",
            "f": issued,
            "plan": dataclasses.replace(issued.plan, require_ack=False),
        },
        audit={"form": issued.code, "notice": issued.plan.code},
    )


async def fill(call: Call) -> Reply:
    """#填 F3 值1 值2 … (or one 字段=值 per line): the sender's unit answers."""
    draft = parse_answer(call.args["text"])
    request = AnswerRequest(call.message.room_id, call.asker.contact_id, draft)
    answered = await writer_for(call.core).submit(request)
    return Reply(TEMPLATE, {"template": "returns/answered.j2", "a": answered})


class AnswerWriter:
    """Gathers the answers that arrive while one batch is being written and writes them as the
    next batch: one transaction per batch instead of one per answer."""

    def __init__(self, env: RelayEnv, core: Services, limit: int = BATCH) -> None:
        self.env = env
        self.core = core
        self.limit = limit
        self.batches = 0  # how many transactions it took (the benchmark reports it)
        self._pending: list[tuple[AnswerRequest, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, request: AnswerRequest) -> Answered:
        """Record ``request`` with whatever else is waiting; its result, or its refusal raised."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        result = await future
        if isinstance(result, RelayError):
            raise result
        assert isinstance(result, Answered)
        return result

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # the answers already on their way join this batch
        while self._pending:
            batch, self._pending = self._pending[: self.limit], self._pending[self.limit :]
            requests = [r for r, _ in batch]
            try:
                results = await self.core.offload_quick(record_answers, self.env, requests)
            except Exception as exc:  # one bad row must not sink its neighbours: each alone
                logger.opt(exception=exc).warning("填报批量写入失败，逐条重试：{} 条", len(batch))
                results = await self._one_by_one(requests)
            self.batches += 1
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException) and not isinstance(result, RelayError):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _one_by_one(self, requests: list[AnswerRequest]) -> list[Any]:
        results: list[Any] = []
        for request in requests:
            try:
                [one] = await self.core.offload_quick(record_answers, self.env, [request])
                results.append(one)
            except Exception as exc:
                results.append(exc)
        return results


_WRITERS: weakref.WeakKeyDictionary[Any, AnswerWriter] = weakref.WeakKeyDictionary()


def writer_for(core: Services) -> AnswerWriter:
    """The bot process's one answer writer."""
    writer = _WRITERS.get(core)
    if writer is None:
        writer = _WRITERS[core] = AnswerWriter(core.relay.env, core)
    return writer


_TEMPLATES = (TEMPLATE,)
FORM = Command(
    "returns_form",
    "填报",
    "form",
    (Param("text", "标题 字段 … 截止 …", Kind.TEXT),),
    Who.OFFICE,
    "向本单位下属各群发出填报表，各单位用 #填 回复，可用 #进度、#汇总 查看",
    "#填报 少先队员人数统计 字段 人数 中队数 截止 明天 17:00",
    templates=_TEMPLATES,
    executor=form,
)
FILL = Command(
    "returns_fill",
    "填",
    "fill",
    (Param("text", "编号 值1 值2 …", Kind.TEXT),),
    Who.MEMBER,
    "为本单位填写填报（截止前可重填更正，以最后一次为准）",
    "#填 F3 120 4",
    templates=_TEMPLATES,  # each answer is audit-logged by the core, in its batch
    executor=fill,
)
