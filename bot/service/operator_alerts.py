"""Telling the operator of ``qunmatrix run``: every event is logged, and, when ``[wechaty]
webhook`` is set, POSTed there as JSON ``{"event", "account", "text"}``.

The POST uses the standard library (``urllib``) in a worker thread with a bounded timeout, so a
slow or dead webhook never holds up chat or the relay; its failure is a WARNING, never an error
of the bot.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from loguru import logger


class Operator:
    """Where ``qunmatrix run`` reports logouts, lost accounts and taken sessions."""

    def __init__(self, webhook: str = "", timeout: float = 5.0) -> None:
        self.webhook = webhook
        self.timeout = timeout
        self._pending: set[asyncio.Task[None]] = set()

    def tell(self, event: str, account: str, text: str) -> None:
        """Log ``text`` as a WARNING and post it in the background (needs a running loop)."""
        logger.warning("{}", text)
        if not self.webhook:
            return
        task = asyncio.get_running_loop().create_task(self.post(event, account, text))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def post(self, event: str, account: str, text: str) -> None:
        """POST one event to the webhook; a failure is logged, never raised."""
        if not self.webhook:
            return
        body = json.dumps({"event": event, "account": account, "text": text}, ensure_ascii=False)
        try:
            await asyncio.to_thread(self._send, body.encode("utf-8"))
        except Exception as exc:
            logger.warning(
                "通知运维的 webhook 调用失败（{}）：{}: {}", self.webhook, type(exc).__name__, exc
            )

    def _send(self, body: bytes) -> Any:
        req = urllib.request.Request(
            self.webhook,
            data=body,
            method="POST",
            headers={"content-type": "application/json; charset=utf-8"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return resp.status

    async def drained(self) -> None:
        """Wait for the posts under way (at most the timeout each)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
