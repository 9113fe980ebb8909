"""Time for the relay: wall-clock datetimes (deadlines, reminders) and monotonic seconds
(pacing), behind one small interface so that tests and benchmarks drive a virtual clock and
never wait in real time.

>>> from datetime import UTC, datetime
>>> clock = VirtualClock(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))
>>> clock.advance(90)
>>> clock.now().isoformat(), clock()
('2026-11-24T01:01:30+00:00', 90.0)
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """``now()`` for timestamps; calling it gives monotonic seconds for pacing."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def __call__(self) -> float:
        """Monotonic seconds, for pacing and the simulated WeChat's rate limits."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a virtual clock just moves on)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __call__(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that moves only when told to (or when someone sleeps on it)."""

    def __init__(self, start: datetime) -> None:
        if start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        self.start = start.astimezone(UTC)
        self.elapsed = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def __call__(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        self.elapsed += max(0.0, seconds)

    def advance_to(self, when: datetime) -> None:
        """Move on to ``when`` (never backwards)."""
        self.advance((when - self.now()).total_seconds())

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
