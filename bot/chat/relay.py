"""The same-day relay in chat: ``#通知``, ``收到``, ``#进度``, ``#上报``, ``#转报``, and a
notice's later life (``#确认`` of a large one, ``#撤回``, ``#更正``, ``#停止`` of a recurring
one) as command executors over ``matrix.relay``, and the watch list (舆情监控) over ordinary
messages. ``#确认`` is one command with the build's: ``bot.chat.provision`` hands it here when
it names a notice or this group has one waiting for its issuer.

The dispatcher has already checked the command table's rule (an office on its own subtree, a
roster member); the relay engine then applies its own, finer ones (only the office of the unit
that leads this group may notify from it, only a child unit's person acknowledges, …) and its
content guard, and raises a ``RelayError`` with a Chinese reason when it refuses. What it queues
(copies, reports, alerts) the process's ``Relay`` sends; executors only poke it. The engine's
calls block (a national notice plans thousands of copies): they run in a worker thread
(``Services.offload_quick``), the poke back on the event loop.

``#通知 … 附件`` takes the files its sender just sent here (``bot.chat.recent_files``), or the
file the command quotes; the relay copies and checks them (``matrix.relay.attachments``).

A bare ``收到`` (typed without #) answers only when it records something: people say 收到 all
day, and the group must not fill with the bot's answers.
"""

from __future__ import annotations

from loguru import logger

from bot.chat.commands import Command, Kind, Param, Who
from bot.chat.context import Call, Reply, Services
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
from matrix.relay.attachments import NoticeFile
from matrix.relay.codes import report_code
from matrix.relay.drafts import parse_notice
from matrix.relay.errors import BadCommand
from matrix.relay.guard import watch_match
from matrix.relay.lifecycle import (
    NoticeState,
    confirm_notice,
    held_in_room,
    notice_state,
    stop_notice,
)
from matrix.relay.withdraw import correct_notice, withdraw_notice
from matrix.returns.table import form_progress

# the relay's own templates (templates/relay/), shown through replies/relay.j2
TEMPLATE = "relay.j2"


async def notice(call: Call) -> Reply:
    """#通知 <正文> [附件] [公告]: plan and queue the copies (and the files the asker just sent,
    or the one quoted); tell the issuer how many groups and by when."""
    relay = call.core.relay
    files = _files_for(call)
    plan = await call.core.offload_quick(
        issue_notice,
        relay.env,
        call.message.room_id,
        call.asker.contact_id,
        call.args["text"],
        files,
        confirm=True,  # a person is here to answer #确认 for a large notice
    )
    call.core.recent_files.taken(call.message.room_id, files)
    relay.poke()
    return Reply(
        TEMPLATE, {"template": "relay/notice_plan.j2", "plan": plan}, audit={"notice": plan.code}
    )


def _files_for(call: Call) -> list[NoticeFile]:
    """The files a #通知 takes: the one it quotes, else with 附件 the files its sender sent
    here in the last minutes (``bot.chat.recent_files``)."""
    msg, recent = call.message, call.core.recent_files
    quoted = recent.quoted(msg.room_id, msg.quoted) if msg.quoted else None
    if quoted is not None:
        return [quoted]
    env = call.core.relay.env
    try:
        wanted = parse_notice(call.args["text"], env.now()).files
    except BadCommand:
        return []  # issue_notice answers the same mistake
    return recent.sent_by(msg.room_id, msg.contact_id, call.core.clock()) if wanted else []


async def confirm(call: Call) -> Reply:
    """#确认 [T12]: the issuer sends a notice held for its size."""
    relay = call.core.relay
    plan = await call.core.offload_quick(
        confirm_notice, relay.env, call.message.room_id, call.asker.contact_id, call.args["notice"]
    )
    relay.poke()
    return Reply(
        TEMPLATE,
        {"template": "relay/notice_plan.j2", "plan": plan, "confirmed": True},
        audit={"notice": plan.code},
    )


async def confirms_notice(call: Call) -> bool:
    """Whether a #确认 is for a notice: it names one, or, with no build plan shown to the
    asker here, this group has a notice waiting for its issuer's #确认."""
    if call.args.get("notice"):
        return True
    core, room = call.core, call.message.room_id
    if core.shown_plans.get(room, call.asker.contact_id, core.clock()) is not None:
        return False
    return await core.offload_quick(held_in_room, core.relay.env, room) is not None


async def withdraw(call: Call) -> Reply:
    """#撤回 T12 [理由]: stop the copies not sent, tell every group that got it."""
    relay = call.core.relay
    done = await call.core.offload_quick(
        withdraw_notice,
        relay.env,
        call.asker.contact_id,
        call.args["notice"],
        call.args["reason"] or "",
    )
    relay.poke()
    return Reply(
        TEMPLATE, {"template": "relay/withdrawn.j2", "w": done}, audit={"notice": done.code}
    )


async def correct(call: Call) -> Reply:
    """#更正 T12 <新正文> [附件]: the correction goes to the same groups (with new files, or
    the original's)."""
    relay = call.core.relay
    files = _files_for(call)
    done = await call.core.offload_quick(
        correct_notice,
        relay.env,
        call.message.room_id,
        call.asker.contact_id,
        call.args["notice"],
        call.args["text"],
        files,
    )
    call.core.recent_files.taken(call.message.room_id, files)
    relay.poke()
    return Reply(
        TEMPLATE, {"template": "relay/corrected.j2", "c": done}, audit={"notice": done.original}
    )


async def stop(call: Call) -> Reply:
    """#停止 T12: a recurring notice goes out no more."""
    done = await call.core.offload_quick(
        stop_notice, call.core.relay.env, call.asker.contact_id, call.args["notice"]
    )
    return Reply(TEMPLATE, {"template": "relay/stopped.j2", "s": done}, audit={"notice": done.code})


async def ack(call: Call) -> Reply | None:
    """收到 [编号]: the asker's unit acknowledges the notice (the latest one in this group)."""
    result = await call.core.offload_quick(
        acknowledge,
        call.core.relay.env,
        call.message.room_id,
        call.asker.contact_id,
        AckRequest(call.args["notice"]),
    )
    if call.bare and not result.units:
        return None
    return Reply(TEMPLATE, {"template": "relay/ack.j2", "a": result})


async def status(call: Call) -> Reply:
    """#进度 [编号]: delivery and receipts per level, and who is missing, as the asker may see;
    for a form (#进度 F3), who has answered it."""
    env = call.core.relay.env
    if call.args.get("form"):
        answered = await call.core.offload_quick(
            form_progress, env, call.args["form"], asker=call.asker.contact_id
        )
        return Reply("returns.j2", {"template": "returns/progress.j2", "fp": answered})
    progress, state = await call.core.offload_quick(
        _progress, env, call.message.room_id, call.args["notice"], call.asker.contact_id
    )
    return Reply(
        TEMPLATE, {"template": "relay/progress.j2", "p": progress, "s": state, "final": False}
    )


def _progress(
    env: RelayEnv, room_id: str, notice: int | None, asker: str
) -> tuple[Progress, NoticeState]:
    notice_id = notice or latest_notice_in_room(env, room_id)
    progress = notice_progress(env, notice_id, asker=asker)
    with env.engine.connect() as conn:
        return progress, notice_state(conn, env, notice_id)


async def report(call: Call) -> Reply:
    """#上报 <内容>: to the office of the unit that leads this group."""
    relay = call.core.relay
    receipt = await call.core.offload_quick(
        submit_report, relay.env, call.message.room_id, call.asker.contact_id, call.args["text"]
    )
    relay.poke()
    return Reply(TEMPLATE, {"template": "relay/report_receipt.j2", "r": receipt})


async def forward(call: Call) -> Reply:
    """#转报 <编号>: the office holding a report passes it one level up."""
    relay = call.core.relay
    receipt = await call.core.offload_quick(
        forward_report, relay.env, call.asker.contact_id, report_code(call.args["report"])
    )
    relay.poke()
    return Reply(
        TEMPLATE,
        {"template": "relay/report_receipt.j2", "r": receipt},
        audit={"report": receipt.code},
    )


def watched(bot: Services, text: str) -> bool:
    """Whether an ordinary message matches the watch list: no database work, so that it can
    look at every message."""
    options = bot.relay.env.options
    return bool(options.watch_words) and watch_match(options, text) is not None


async def watch(bot: Services, msg: IncomingMessage) -> None:
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


_TEMPLATES = (TEMPLATE,)
NOTICE = Command(
    "notice",
    "通知",
    "notice",
    (Param("text", "正文", Kind.TEXT),),
    Who.OFFICE,
    "把通知当天下发到本单位下属的所有群，并跟踪回执",
    "#通知 请于今天17:00前报送建群情况 截止 17:00",
    templates=_TEMPLATES,
    executor=notice,
)
ACK = Command(
    "ack",
    "收到",
    "ack",
    (Param("notice", "通知编号", Kind.NOTICE, required=False),),
    Who.MEMBER,
    "回执：确认本单位已收到通知（不写编号即最近一条）",
    "#收到 T12",
    bare=True,
    templates=_TEMPLATES,
    executor=ack,
)
STATUS = Command(
    "status",
    "进度",
    "status",
    (
        Param("notice", "通知编号", Kind.NOTICE, required=False),
        Param("form", "填报编号", Kind.FORM, required=False),
    ),
    Who.OFFICE,
    "查看通知或填报（F3）的送达和回执进度，列出未回执的单位（不写编号即本群最近一条）",
    "#进度 T12",
    templates=(*_TEMPLATES, "returns.j2"),
    executor=status,
)
WITHDRAW = Command(
    "withdraw",
    "撤回",
    "withdraw",
    (Param("notice", "通知编号", Kind.NOTICE), Param("reason", "理由", Kind.TEXT, required=False)),
    Who.OFFICE,
    "撤回通知：未发出的不再发送，已收到的群会收到撤回说明；定时通知就此取消",
    "#撤回 T12 时间有误，另行通知",
    templates=_TEMPLATES,
    executor=withdraw,
)
CORRECT = Command(
    "correct",
    "更正",
    "correct",
    (Param("notice", "通知编号", Kind.NOTICE), Param("text", "新正文", Kind.TEXT)),
    Who.OFFICE,
    "发出更正通知到原通知的各群；已回执的单位无需再回复（写“需回执”则请大家重新回复）",
    "#更正 T12 会议改在周五下午3点",
    templates=_TEMPLATES,
    executor=correct,
)
STOP = Command(
    "stop",
    "停止",
    "stop",
    (Param("notice", "通知编号", Kind.NOTICE),),
    Who.OFFICE,
    "停止按周（或每天）重复发送的通知",
    "#停止 T12",
    templates=_TEMPLATES,
    executor=stop,
)
REPORT = Command(
    "report",
    "上报",
    "report",
    (Param("text", "内容", Kind.TEXT),),
    Who.MEMBER,
    "把工作情况上报给本群牵头单位的办公室",
    "#上报 我校已完成少先队建队仪式",
    templates=_TEMPLATES,
    executor=report,
)
FORWARD = Command(
    "forward",
    "转报",
    "forward",
    (Param("report", "上报编号", Kind.REPORT),),
    Who.OFFICE,
    "把本单位收到的上报再转给上一级单位办公室",
    "#转报 R5",
    templates=_TEMPLATES,
    executor=forward,
)
