"""Settings: one pydantic class, read from ``config.toml`` and ``QUNMATRIX_*`` environment
variables (the environment wins). ``config.example.toml`` documents every field.

The two sources are read here, in a few lines, rather than by pydantic-settings: importing that
package cost every command 60–90 ms of start-up (issue 12), for two sources we can read as
plainly ourselves."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from datetime import date
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from matrix.errors import MatrixError, Problem
from matrix.limits import InputLimits
from matrix.provisioning.schedule import AccountQuota
from matrix.relay.options import RelayOptions
from matrix.toml_errors import toml_error_text

if TYPE_CHECKING:  # join review loads SQLAlchemy: only the commands that review joins need it
    from matrix.provisioning.join_review import TimeoutPolicy
    from matrix.relay.bind_claims import BindLimits


class WechatySettings(BaseModel):
    """How to reach the Wechaty puppet service (real mode)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or retired setting is named

    endpoint: str = Field(
        default="", description="host:port of the puppet service, e.g. 127.0.0.1:8788"
    )
    token: str = Field(default="", description="puppet service token, e.g. insecure_qunmatrix")
    port: int = Field(
        default=0, description="local port Wechaty probes at login; 0 picks a free one"
    )
    reconnect_max_seconds: float = Field(
        default=60.0,
        gt=0,
        description="longest wait between two reconnection attempts (the wait doubles from 1 s)",
    )
    qr_file: str = Field(
        default="qunmatrix-login.png",
        description="where the login QR code is written as a PNG when the account must scan",
    )
    webhook: str = Field(
        default="",
        description="URL told (HTTP POST, JSON) when the account logs out, is lost or another "
        "process takes its session; empty: only the log",
    )
    webhook_timeout: float = Field(
        default=5.0, gt=0, le=60, description="seconds a webhook call may take"
    )
    files_dir: str = Field(
        default="data/incoming",
        description="where files and images members send are saved for the bot (#通知 … 附件 "
        "copies them into [relay.attachments] dir), e.g. /var/lib/qunmatrix/incoming",
    )


class HealthSettings(BaseModel):
    """``/healthz`` of ``qunmatrix run`` (off unless a port is given)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or retired setting is named

    host: str = Field(
        default="127.0.0.1", description="address to listen on; 127.0.0.1 = this machine only"
    )
    port: int = Field(
        default=0, ge=0, le=65535, description="port of /healthz, e.g. 8790; 0 = no health check"
    )
    max_pending_seconds: float = Field(
        default=600.0,
        gt=0,
        description="unhealthy once a relay message is this many seconds past its planned time",
    )


class SimulatedSettings(BaseModel):
    """What only the in-process simulated WeChat needs (its accounts are ``[[accounts]]``)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or retired setting is named

    burst: int = Field(
        default=5,
        ge=1,
        description="operations an account may make at once before its pace applies, e.g. 5",
    )


class AccountSettings(BaseModel):
    """One bot account: the planner schedules it under these quotas, the simulated WeChat
    paces it at ``ops_per_second``, and so does the Wechaty adapter for what it sends."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or retired setting is named

    id: str = Field(description="the account's stable contact id, e.g. wxid_qunmatrix01")
    daily_group_creations: int = Field(
        default=10, ge=0, description="groups it may create a day (WeChat allows about 10)"
    )
    ops_per_second: float = Field(
        default=1.0, gt=0, description="its pace: operations (invite, send …) per second"
    )
    active_hours: float = Field(
        default=8.0, gt=0, le=24, description="hours a day it works at that pace, e.g. 8"
    )


class JoinReviewSettings(BaseModel):
    """What happens to someone held at join review (入群审核) whom no admin decides on."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or retired setting is named

    timeout_hours: float = Field(default=24.0, gt=0, description="how long they wait, e.g. 24")
    on_timeout: Literal["remove", "keep", "remind"] = Field(
        default="remove", description="remove them, keep them, or remind the admins again"
    )


class LimitOptions(BaseModel):
    """Per-sender and per-group limits on commands, and the longest command accepted."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or retired setting is named

    window_seconds: float = Field(
        default=60.0, gt=0, description="the window commands are counted in, e.g. 60 seconds"
    )
    per_contact: int = Field(
        default=20, ge=1, description="commands one contact may send in the window, e.g. 20"
    )
    per_group: int = Field(
        default=60, ge=1, description="commands all of one group may send in the window, e.g. 60"
    )
    cooldown_seconds: float = Field(
        default=300.0,
        ge=0,
        description="after going over a limit: how long that contact (or group) is ignored",
    )
    reports_per_hour: int = Field(
        default=10, ge=1, description="#上报 one contact may send in an hour, e.g. 10"
    )
    max_command_chars: int = Field(
        default=4000,
        ge=100,
        description="longest command message, in characters (a #通知 text included), e.g. 4000",
    )


class BindingSettings(BaseModel):
    """Limits on ``#绑定`` by phone, so that nobody finds a roster person by guessing numbers.
    A failed attempt is one that bound nobody (no such phone, someone else's, another unit's,
    or an office person's claim waiting for the office)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or retired setting is named

    failures_per_contact: int = Field(
        default=3,
        ge=1,
        description="failed attempts one WeChat contact may make within window_hours, e.g. 3",
    )
    failures_per_person: int = Field(
        default=5,
        ge=1,
        description="failed attempts aimed at one roster person within window_hours; then "
        "that person cannot be bound by phone for the rest of the window and their office is "
        "told, e.g. 5",
    )
    window_hours: float = Field(
        default=24.0, gt=0, description="the window the attempts are counted in, e.g. 24"
    )


_INPUT = InputLimits()  # the core's defaults: one place for the numbers


class InputSettings(BaseModel):
    """Bounds on roster and media files, checked before a file is parsed ([input]). The
    defaults fit a national roster (746,000 persons, 48 MB of CSV) with room to spare."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or retired setting is named

    max_file_mb: int = Field(
        default=_INPUT.max_file_mb, ge=1, description="largest file, in MB, e.g. 100"
    )
    max_xlsx_uncompressed_mb: int = Field(
        default=_INPUT.max_xlsx_uncompressed_mb,
        ge=1,
        description="largest .xlsx once unzipped (all its parts), in MB, e.g. 400",
    )
    max_rows: int = Field(
        default=_INPUT.max_rows, ge=2, description="most rows in one file, header included"
    )
    max_columns: int = Field(
        default=_INPUT.max_columns,
        ge=5,
        description="most columns with content in one row, e.g. 50",
    )
    max_cell_chars: int = Field(
        default=_INPUT.max_cell_chars, ge=100, description="most characters in one cell, e.g. 5000"
    )

    def limits(self) -> InputLimits:
        """The same bounds as the core takes them."""
        return InputLimits(
            self.max_file_mb,
            self.max_xlsx_uncompressed_mb,
            self.max_rows,
            self.max_columns,
            self.max_cell_chars,
        )


class Settings(BaseModel):
    """All of qunmatrix's settings. Built as is, it holds what it is given and the defaults;
    ``load_settings`` adds the config file and the environment."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    db: str = Field(
        default="sqlite:///qunmatrix.db",
        description="SQLAlchemy URL, e.g. postgresql://postgres@127.0.0.1:5432/test",
    )
    blueprint: str = Field(
        default="young_pioneers",
        description="a shipped blueprint (young_pioneers, guangongwei) or a path to a .toml file",
    )
    timezone: str = Field(default="Asia/Shanghai", description="where 'today' and deadlines are")
    build_deadline: date | None = Field(
        default=None,
        description="date by which every unit must have built its groups (附件2 汇报截止), "
        "e.g. 2017-04-15; summaries mark units still missing after it as overdue",
    )
    export_dir: str = Field(
        default="",
        description="folder where summary files asked for in chat (#汇总 … xlsx) are written "
        "before they are sent, e.g. /var/lib/qunmatrix/exports; empty = the system temp folder",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_file: str = Field(
        default="", description="also write logs here, rotated daily; empty = stderr only"
    )
    platform: str = Field(default="simulated", description="simulated | wechaty")
    wechaty: WechatySettings = Field(default_factory=WechatySettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    simulated: SimulatedSettings = Field(default_factory=SimulatedSettings)

    accounts: list[AccountSettings] = Field(
        default_factory=lambda: [
            AccountSettings(id="qunmatrix-bot-1"),
            AccountSettings(id="qunmatrix-bot-2"),
        ],
        min_length=1,
        description="the bot accounts that build and run the groups, with their quotas",
    )
    join_review: JoinReviewSettings = Field(default_factory=JoinReviewSettings)
    binding: BindingSettings = Field(default_factory=BindingSettings)
    input: InputSettings = Field(
        default_factory=InputSettings,
        description="bounds on roster and media files, checked before parsing ([input])",
    )
    relay: RelayOptions = Field(
        default_factory=RelayOptions,
        description="notice pacing, retries, reminders, content guard, watch list ([relay])",
    )
    limits: LimitOptions = Field(
        default_factory=LimitOptions,
        description="commands per contact and per group, #上报 per hour, longest command "
        "([limits])",
    )

    @field_validator("accounts")
    @classmethod
    def _distinct_ids(cls, accounts: list[AccountSettings]) -> list[AccountSettings]:
        ids = [a.id for a in accounts]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"账号 {'、'.join(twice)} 重复出现")
        return accounts

    def account_quotas(self) -> list[AccountQuota]:
        """The configured bot accounts as the planner and the simulated WeChat see them."""
        return [
            AccountQuota(a.id, a.daily_group_creations, a.ops_per_second, a.active_hours)
            for a in self.accounts
        ]

    def join_policy(self) -> TimeoutPolicy:
        """What happens to a held joiner nobody decides on."""
        from matrix.provisioning.join_review import TimeoutPolicy

        return TimeoutPolicy(self.join_review.timeout_hours, self.join_review.on_timeout)

    def bind_limits(self) -> BindLimits:
        """How many failed #绑定 attempts are allowed, per contact and per target person."""
        from matrix.relay.bind_claims import BindLimits

        b = self.binding
        return BindLimits(b.failures_per_contact, b.failures_per_person, b.window_hours)


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config`` (or $QUNMATRIX_CONFIG, or ./config.toml if present), the
    environment, and explicit overrides (CLI options), in rising precedence."""
    if config is not None and not config.is_file():
        raise MatrixError(
            f"找不到配置文件 {config}", fix="可复制 config.example.toml 为 config.toml 再修改"
        )
    source = (
        str(config) if config is not None else os.environ.get("QUNMATRIX_CONFIG", "config.toml")
    )
    given = _from_toml(Path(source))
    _deep_update(given, _from_env(os.environ))
    _deep_update(given, {k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = [
            Problem(".".join(str(p) for p in err["loc"]), _reason(err)) for err in exc.errors()
        ]
        raise MatrixError(
            "配置有误：" + "；".join(str(p) for p in problems),
            fix="请对照 config.example.toml 修改配置文件或 QUNMATRIX_* 环境变量",
        ) from exc


def _from_toml(path: Path) -> dict[str, Any]:
    """The config file's settings; none when there is no such file."""
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(
            "配置文件语法错误：" + toml_error_text(exc, str(path)),
            fix="请改正该行后重试（可对照 config.example.toml）",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(f"读不了配置文件 {path}", fix="请检查文件权限，并以 UTF-8 保存") from exc


_ENV_PREFIX = "QUNMATRIX_"


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from ``QUNMATRIX_*`` variables, any case: ``QUNMATRIX_DB``, nested ones with a
    double underscore (``QUNMATRIX_WECHATY__TOKEN``). A value for a section or a list is JSON.
    Variables naming no setting (``QUNMATRIX_CONFIG`` among them) are not settings; an unknown
    name inside a known section is, so that a misspelt one is refused rather than ignored."""
    given: dict[str, Any] = {}
    named = [
        (name, name[len(_ENV_PREFIX) :].lower().split("__"), value)
        for name, value in environ.items()
        if name.upper().startswith(_ENV_PREFIX)
    ]
    # a whole section first, so that a variable inside it refines it
    for name, path, value in sorted(named, key=lambda n: len(n[1])):
        if path[0] not in Settings.model_fields:
            continue
        here = given
        for part in path[:-1]:
            here = here.setdefault(part, {})
            if not isinstance(here, dict):
                break
        else:
            leaf = _decoded(name, value) if _is_composite(_annotation(path)) else value
            if isinstance(leaf, dict) and isinstance(here.get(path[-1]), dict):
                _deep_update(here[path[-1]], leaf)
            else:
                here[path[-1]] = leaf
    return given


def _annotation(path: list[str]) -> Any:
    """The declared type of the setting at ``path``, or None for an unknown one."""
    model: Any = Settings
    annotation: Any = None
    for part in path:
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        annotation = field.annotation
        model = next((t for t in (annotation, *get_args(annotation)) if _is_model(t)), None)
    return annotation


def _is_composite(annotation: Any) -> bool:
    return any(
        _is_model(t) or get_origin(t) in (list, dict, tuple, set) or t in (list, dict, tuple, set)
        for t in (annotation, *get_args(annotation))
    )


def _decoded(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise MatrixError(
            f"环境变量 {name} 应为 JSON",
            fix='一节写成 {"键": 值}，列表写成 [...]；或改用 QUNMATRIX_节__键 逐项设置',
        ) from exc


def _deep_update(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """``other`` over ``into``, section by section; a list or a value replaces."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_update(into[key], value)
        else:
            into[key] = value


def _reason(err: Any) -> str:
    kind = err["type"]
    if kind == "value_error":  # our own validators' words, without pydantic's prefix
        return str(err["ctx"]["error"])
    if kind == "extra_forbidden":
        close = get_close_matches(str(err["loc"][-1]), _known_keys(err["loc"][:-1]), n=1)
        return f"不认识的设置项（是不是想写 {close[0]}）" if close else "不认识的设置项"
    if kind in ("literal_error", "enum"):
        expected = err["ctx"]["expected"].replace(" or ", "、").replace(", ", "、")
        return f"应为 {expected} 之一"
    if kind in _LIMITS:
        return f"{_LIMITS[kind]} {err['ctx'][next(iter(err['ctx']))]}"
    return str(_REASONS.get(kind, "取值不符合要求，请对照 config.example.toml 中的说明"))


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The setting names allowed where ``loc`` points (a section, an ``[[accounts]]`` entry)."""
    model: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = next(
            (t for t in (field.annotation, *get_args(field.annotation)) if _is_model(t)), None
        )
        if model is None:
            return []
    return list(model.model_fields)


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


_LIMITS = {
    "greater_than_equal": "应不小于",
    "greater_than": "应大于",
    "less_than_equal": "应不大于",
    "less_than": "应小于",
}


_REASONS = {
    "extra_forbidden": "不认识的设置项",
    "string_type": "应为字符串",
    "int_parsing": "应为整数",
    "bool_parsing": "应为 true 或 false",
    "float_parsing": "应为数字",
    "missing": "缺少此项，请补上",
    "float_type": "应为数字",
    "int_type": "应为整数",
    "bool_type": "应为 true 或 false",
    "list_type": "应为列表，如 [[accounts]]",
    "dict_type": "应为一节，如 [wechaty]",
    "model_type": "应为一节，如 [wechaty]",
    "date_from_datetime_parsing": "应为日期，如 2026-12-01",
    "date_parsing": "应为日期，如 2026-12-01",
}
