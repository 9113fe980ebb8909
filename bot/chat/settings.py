"""Settings the chat layer's executors read besides the database (where summary files go,
the time zone, the build deadline), as configured."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import Settings


@dataclass(frozen=True)
class SummaryOptions:
    """What summaries in chat need besides the database: where files go, and what day it is."""

    export_dir: Path | None = None  # None: qunmatrix-exports in the system's temporary folder
    timezone: str = "Asia/Shanghai"
    deadline: date | None = None  # the build deadline the build-status table shows

    def today(self, now: datetime | None = None) -> date:
        """The date in the configured time zone of ``now`` (the bot's clock; default: real now)."""
        return (now or datetime.now(UTC)).astimezone(ZoneInfo(self.timezone)).date()

    def new_folder(self) -> Path:
        """A folder of its own for one file, so that the attachment keeps its readable name
        (微信群矩阵建设情况汇总表_乙1县_20260501.xlsx) however often it is asked for."""
        base = self.export_dir or Path(tempfile.gettempdir()) / "qunmatrix-exports"
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{self.today():%Y%m%d}-", dir=base))

    @classmethod
    def of(cls, settings: Settings) -> SummaryOptions:
        """The options as configured."""
        export_dir = Path(settings.export_dir) if settings.export_dir else None
        return cls(export_dir, settings.timezone, settings.build_deadline)
