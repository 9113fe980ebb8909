"""The same-day relay in chat: ``#通知``, ``收到``, ``#进度``, ``#上报``, ``#转报`` as command
handlers over ``matrix.relay``, and the watch list (舆情监控) over ordinary messages.

The dispatcher has already checked the command table's rule (an office on its own subtree, a
roster member); the relay engine then applies its own, finer ones (only the office of the unit
that leads this group may notify from it, only a child unit's person acknowledges, …) and its
content guard, and raises a ``RelayError`` with a Chinese reason when it refuses. What it queues
(copies, reports, alerts) the process's ``Relay`` sends; handlers only poke it. The engine's
calls block (a national notice plans thousands of copies): they run in a worker thread
(``Bot.offload_quick``), the poke back on the event loop.

A bare ``收到`` (typed without #) answers only when it records something: people say 收到 all
day, and the group must not fill with the bot's answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from bot.chat.calls import Call, Reply
from matrix.platform import IncomingMessage
from matrix.relay import (
    AckRequest,
    Progress,
    RelayEnv,
    acknowledge,
    forward_report,
    issue_notice,
    notice_progress,
    submit_report,
    watch_message,
)
from matrix.relay.acks import latest_notice_in_room
from matrix.relay.codes import report_code
from matrix.relay.guard import watch_match

if TYPE_CHECKING:
    from bot.chat.dispatch import Bot

# the relay's own templates (templates/relay/), shown through replies/relay.j2
TEMPLATE = "relay.j2"


async def notice(call: Call) -> Reply:
    """#通知 <正文>: plan and queue the copies; tell the issuer how many groups and by when."""
    relay = call.bot.relay
    plan = await call.bot.offload_quick(
        issue_notice, relay.env, call.message.room_id, call.asker.contact_id, call.args["text"]
    )
    relay.poke()
    return Reply(
        TEMPLATE, {"template": "relay/notice_plan.j2", "plan": plan}, audit={"notice": plan.code}
    )


async def ack(call: Call) -> Reply | None:
    """收到 [编号]: the asker's unit acknowledges the notice (the latest one in this group)."""
    result = await call.bot.offload_quick(
        acknowledge,
        call.bot.relay.env,
        call.message.room_id,
        call.asker.contact_id,
        AckRequest(call.args["notice"]),
    )
    if call.bare and not result.units:
        return None
    return Reply(TEMPLATE, {"template": "relay/ack.j2", "a": result})


async def status(call: Call) -> Reply:
    """#进度 [编号]: delivery and receipts per level, and who is missing, as the asker may see."""
    env = call.bot.relay.env
    progress = await call.bot.offload_quick(
        _progress, env, call.message.room_id, call.args["notice"], call.asker.contact_id
    )
    return Reply(TEMPLATE, {"template": "relay/progress.j2", "p": progress, "final": False})


def _progress(env: RelayEnv, room_id: str, notice: int | None, asker: str) -> Progress:
    notice_id = notice or latest_notice_in_room(env, room_id)
    return notice_progress(env, notice_id, asker=asker)


async def report(call: Call) -> Reply:
    """#上报 <内容>: to the office of the unit that leads this group."""
    relay = call.bot.relay
    receipt = await call.bot.offload_quick(
        submit_report, relay.env, call.message.room_id, call.asker.contact_id, call.args["text"]
    )
    relay.poke()
    return Reply(TEMPLATE, {"template": "relay/report_receipt.j2", "r": receipt})


async def forward(call: Call) -> Reply:
    """#转报 <编号>: the office holding a report passes it one level up."""
    relay = call.bot.relay
    receipt = await call.bot.offload_quick(
        forward_report, relay.env, call.asker.contact_id, report_code(call.args["report"])
    )
    relay.poke()
    return Reply(
        TEMPLATE,
        {"template": "relay/report_receipt.j2", "r": receipt},
        audit={"report": receipt.code},
    )


def watched(bot: Bot, text: str) -> bool:
    """Whether an ordinary message matches the watch list: no database work, so that it can
    look at every message."""
    options = bot.relay.env.options
    return bool(options.watch_words) and watch_match(options, text) is not None


async def watch(bot: Bot, msg: IncomingMessage) -> None:
    """Flag a watched message to the group's admins (rate-limited by the engine); never
    raises: a failure here must not cost the message its place in the chat."""
    try:
        env = bot.relay.env
        alert = await bot.offload_quick(watch_message, env, msg.room_id, msg.contact_id, msg.text)
        if alert is not None:
            bot.relay.poke()
    except Exception as exc:
        logger.opt(exception=exc).error(
            "舆情监控失败：room={} contact={}", msg.room_id, msg.contact_id
        )
