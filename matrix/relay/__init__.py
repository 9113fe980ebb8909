"""Same-day relay (seed 002: 当天快速传导到基层, 下情上知, 不得发布涉密信息).

Each chat command is one function that takes parsed arguments and returns data; templates in
``templates/relay/`` turn that data into Chinese text. Everything they need travels in a
``RelayEnv`` (database, blueprint, settings, time zone, clock).

======================  =========================================================
``#通知``                ``issue_notice`` → ``NoticePlan`` (``relay/notice_plan.j2``)
``收到`` / ``收到 T12``   ``parse_ack`` + ``acknowledge`` → ``AckResult`` (``relay/ack.j2``)
``#进度 T12``            ``notice_progress`` → ``Progress`` (``relay/progress.j2``)
``#上报 …``              ``submit_report`` → ``ReportReceipt`` (``relay/report_receipt.j2``)
``#转报 R5``             ``forward_report`` → ``ReportReceipt``
any message             ``watch_message`` → ``WatchAlert`` or None (舆情监控)
======================  =========================================================

Sending is the delivery engine's job (``DeliveryWorker``, one per bot account, driven by
``drive`` together with ``run_due_jobs`` for reminders and escalation); it renders each copy
with the ``compose`` function the bot hands it. Wiring, per bot process::

    worker = DeliveryWorker(env, account, lambda name, ctx: render(name, **ctx))
    await worker.start()                      # registers the account's rooms, recovers
    # every IncomingMessage of the account: worker.observe(msg) (it only reads echoes)
    await drive(env, [worker], jobs=lambda: run_due_jobs(env),
                next_job=lambda: next_job_at(env), forever=True)
"""

from matrix.relay.acks import (
    AckRequest,
    AckResult,
    Progress,
    acknowledge,
    notice_progress,
    parse_ack,
)
from matrix.relay.clock import Clock, SystemClock, VirtualClock
from matrix.relay.delivery import Compose, DeliveryWorker, drive
from matrix.relay.env import RelayEnv
from matrix.relay.errors import (
    BadCommand,
    ContentBlocked,
    NotAllowed,
    NotInMatrix,
    RelayError,
    UnknownCode,
)
from matrix.relay.guard import check_content
from matrix.relay.notices import NoticePlan, issue_notice
from matrix.relay.options import RelayOptions
from matrix.relay.reminders import next_job_at, run_due_jobs
from matrix.relay.reports import ReportReceipt, forward_report, submit_report
from matrix.relay.watch import WatchAlert, watch_message

__all__ = [
    "AckRequest",
    "AckResult",
    "BadCommand",
    "Clock",
    "Compose",
    "ContentBlocked",
    "DeliveryWorker",
    "NotAllowed",
    "NotInMatrix",
    "NoticePlan",
    "Progress",
    "RelayEnv",
    "RelayError",
    "RelayOptions",
    "ReportReceipt",
    "SystemClock",
    "UnknownCode",
    "VirtualClock",
    "WatchAlert",
    "acknowledge",
    "check_content",
    "drive",
    "forward_report",
    "issue_notice",
    "next_job_at",
    "notice_progress",
    "parse_ack",
    "run_due_jobs",
    "submit_report",
    "watch_message",
]
