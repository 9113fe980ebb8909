"""What every relay function needs, in one small frozen bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from matrix.blueprint import Blueprint
from matrix.relay.clock import Clock, SystemClock
from matrix.relay.options import RelayOptions


@dataclass(frozen=True)
class RelayEnv:
    """The database, the rules, the relay settings, the local time zone and the clock."""

    engine: Engine
    blueprint: Blueprint
    options: RelayOptions = field(default_factory=RelayOptions)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    clock: Clock = field(default_factory=SystemClock)

    def now(self) -> datetime:
        """Now, in the local time zone."""
        return self.clock.now().astimezone(self.tz)

    def local(self, when: datetime) -> datetime:
        """``when`` in the local time zone."""
        return when.astimezone(self.tz)
