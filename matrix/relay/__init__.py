"""Same-day relay (seed 002: 当天快速传导到基层, 下情上知, 不得发布涉密信息).

Each chat command is one function that takes parsed arguments and returns data; templates in
``templates/relay/`` turn that data into Chinese text. Everything they need travels in a
``RelayEnv`` (database, blueprint, settings, time zone, clock).

======================  =========================================================
``#通知``                ``issue_notice`` → ``NoticePlan`` (``relay/notice_plan.j2``); its
                        files (``attachments``) and 群公告 (``announcements``)
``#确认 T12``            ``lifecycle.confirm_notice`` → ``NoticePlan`` (a held notice goes)
``#撤回 T12 [理由]``      ``withdraw.withdraw_notice`` → ``Withdrawn`` (``relay/withdrawn.j2``)
``#更正 T12 <正文>``      ``withdraw.correct_notice`` → ``Corrected`` (``relay/corrected.j2``)
``#停止 T12``            ``lifecycle.stop_notice`` → ``Stopped`` (``relay/stopped.j2``)
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

from typing import TYPE_CHECKING

from matrix.lazy import exports

if TYPE_CHECKING:  # the names for type checkers; at run time each loads on first use
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

# importing the package must stay cheap: the settings need only RelayOptions, and
# `qunmatrix --help` would otherwise load the whole engine (and SQLAlchemy) first
_HOME = {
    "AckRequest": "matrix.relay.acks",
    "AckResult": "matrix.relay.acks",
    "Progress": "matrix.relay.acks",
    "acknowledge": "matrix.relay.acks",
    "notice_progress": "matrix.relay.acks",
    "parse_ack": "matrix.relay.acks",
    "Clock": "matrix.relay.clock",
    "SystemClock": "matrix.relay.clock",
    "VirtualClock": "matrix.relay.clock",
    "Compose": "matrix.relay.delivery",
    "DeliveryWorker": "matrix.relay.delivery",
    "drive": "matrix.relay.delivery",
    "RelayEnv": "matrix.relay.env",
    "BadCommand": "matrix.relay.errors",
    "ContentBlocked": "matrix.relay.errors",
    "NotAllowed": "matrix.relay.errors",
    "NotInMatrix": "matrix.relay.errors",
    "RelayError": "matrix.relay.errors",
    "UnknownCode": "matrix.relay.errors",
    "check_content": "matrix.relay.guard",
    "NoticePlan": "matrix.relay.notices",
    "issue_notice": "matrix.relay.notices",
    "RelayOptions": "matrix.relay.options",
    "next_job_at": "matrix.relay.reminders",
    "run_due_jobs": "matrix.relay.reminders",
    "ReportReceipt": "matrix.relay.reports",
    "forward_report": "matrix.relay.reports",
    "submit_report": "matrix.relay.reports",
    "WatchAlert": "matrix.relay.watch",
    "watch_message": "matrix.relay.watch",
}

__getattr__ = exports(__name__, _HOME)


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
