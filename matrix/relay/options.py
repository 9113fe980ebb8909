"""The relay's settings (the ``[relay]`` table of config.toml, documented in
config.example.toml). A plain pydantic model so that the core can take it without the bot."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

CLASSIFIED_MARKERS = ["绝密", "机密", "秘密", "涉密", "内部", "密级", "保密期限", "不宜公开"]


ATTACHMENT_TYPES = ["pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "wps", "ofd", "txt"]
ATTACHMENT_TYPES += ["jpg", "jpeg", "png", "zip", "rar"]


class AttachmentOptions(BaseModel):
    """What a notice may carry (``[relay.attachments]``): files a member sent just before
    ``#通知 … 附件``, checked and copied into ``dir`` before anything is queued."""

    model_config = ConfigDict(extra="forbid")

    max_mb: float = Field(default=20.0, gt=0, description="largest file, in MB, e.g. 20")
    max_count: int = Field(
        default=9, ge=1, le=50, description="most files on one notice (WeCom takes 9)"
    )
    types: list[str] = Field(
        default=ATTACHMENT_TYPES,
        description='file name endings a notice may carry, without the dot, e.g. ["pdf", "docx"]',
    )
    window_minutes: int = Field(
        default=10,
        ge=1,
        description="#通知 … 附件 takes the files its sender sent in the group this many minutes "
        "before",
    )
    dir: str = Field(
        default="data/attachments",
        description="where the bot keeps its copies of notice files, e.g. /var/lib/qunmatrix/files",
    )
    store_max_mb: float = Field(
        default=2048.0,
        gt=0,
        description="most MB kept in ``dir``: past it, copies no notice needs any more are "
        "removed first, and a notice whose files would still pass it is refused",
    )
    keep_days: int = Field(
        default=30,
        ge=1,
        description="a notice's files are kept this many days at least (a #更正 sends them again)",
    )


class RelayOptions(BaseModel):
    """How notices are paced, retried, reminded, escalated and guarded."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(
        default=1.0,
        ge=0,
        description="messages per second per bot account, e.g. 1.0; 0 turns pacing off (benchmarks)",
    )
    burst: int = Field(default=1, ge=1, description="messages an idle account may send at once")
    jitter: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="spread of the gap between messages, ±fraction of 1/rate, e.g. 0.2",
    )
    claim_batch: int = Field(
        default=64,
        ge=1,
        description="most messages claimed at once; paced accounts claim only what may go out "
        "now, so after a crash at most that many are re-sent as 补发",
    )
    retry_base_seconds: float = Field(
        default=5.0, gt=0, description="first retry after a failed send, then doubling"
    )
    retry_max_seconds: float = Field(default=600.0, gt=0, description="longest wait between tries")
    max_attempts: int = Field(default=6, ge=1, description="tries per group before giving up")
    steal_after_seconds: float = Field(
        default=120.0,
        ge=0,
        description="an account may take over another account's message this late against plan",
    )
    lease_seconds: float = Field(
        default=600.0,
        gt=0,
        description="a claimed message not confirmed this long is presumed lost and re-sent as 补发",
    )
    look_fresh_ms: float = Field(
        default=20.0,
        ge=0,
        le=1000,
        description="the last look before a send may be one made this recently (ms) for an "
        "earlier copy of the same notice; 0 looks before every copy",
    )
    offline_handover_seconds: float = Field(
        default=600.0,
        ge=0,
        description="an account offline this long hands its pending messages to the other "
        "accounts in those groups (one that logs out hands them over at once)",
    )
    restricted_after_failures: int = Field(
        default=5,
        ge=1,
        description="this many failed sends in a row on a connected account mean WeChat "
        "restricts it: it hands its messages over",
    )
    restricted_rest_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="how long a restricted account rests before it takes messages again",
    )
    idle_poll_seconds: float = Field(
        default=2.0, gt=0, description="how often an idle account looks for new work"
    )
    confirm_above: int = Field(
        default=20,
        ge=0,
        description="a notice to more groups than this is first shown as a plan and goes out "
        "on #确认 from its issuer; 0 asks for #确认 every time",
    )
    confirm_minutes: int = Field(
        default=10, ge=1, description="how long a held notice waits for its #确认"
    )
    require_ack: bool = Field(default=True, description="notices ask for 收到 unless told 无需回执")
    remind_before_minutes: list[int] = Field(
        default=[120, 30],
        description="reminder rounds, minutes before the deadline, e.g. [120, 30]",
    )
    escalate: bool = Field(
        default=True, description="at the deadline, send each office its laggards"
    )
    list_limit: int = Field(
        default=30, ge=1, description="most unit names listed in one reminder or progress line"
    )
    classified_markers: list[str] = Field(
        default=CLASSIFIED_MARKERS,
        description="classification markers that block a notice or report, e.g. 机密",
    )
    blocked_words: list[str] = Field(
        default=[], description="further words that block a notice or report"
    )
    allowed_phrases: list[str] = Field(
        default=["内部署"],
        description="phrases that contain a marker but are harmless (…省内部署…)",
    )
    watch_words: list[str] = Field(
        default=[], description="舆情监控: words that flag a message to the group's admins"
    )
    watch_limit: int = Field(
        default=3, ge=1, description="most watch alerts per group per window; more are recorded"
    )
    watch_window_minutes: int = Field(default=60, ge=1, description="the watch-alert window")
    attachments: AttachmentOptions = Field(
        default_factory=AttachmentOptions,
        description="files a notice may carry: size, count, types, where copies are kept",
    )
