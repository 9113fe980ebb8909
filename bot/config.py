"""Settings: one pydantic class, read from ``config.toml`` and ``QUNMATRIX_*`` environment
variables (the environment wins). ``config.example.toml`` documents every field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class WechatySettings(BaseModel):
    """How to reach the Wechaty puppet service (real mode)."""

    endpoint: str = Field(
        default="", description="host:port of the puppet service, e.g. 127.0.0.1:8788"
    )
    token: str = Field(default="", description="puppet service token, e.g. insecure_qunmatrix")
    port: int = Field(
        default=0, description="local port Wechaty probes at login; 0 picks a free one"
    )


class AccountSettings(BaseModel):
    """One bot account and the WeChat quotas the planner schedules it under."""

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

    timeout_hours: float = Field(default=24.0, gt=0, description="how long they wait, e.g. 24")
    on_timeout: Literal["remove", "keep", "remind"] = Field(
        default="remove", description="remove them, keep them, or remind the admins again"
    )


class Settings(BaseSettings):
    """All of qunmatrix's settings."""

    model_config = SettingsConfigDict(
        env_prefix="QUNMATRIX_", env_nested_delimiter="__", extra="forbid"
    )

    db: str = Field(
        default="sqlite:///qunmatrix.db",
        description="SQLAlchemy URL, e.g. postgresql://postgres@127.0.0.1:5432/test",
    )
    blueprint: str = Field(
        default="young_pioneers",
        description="a shipped blueprint (young_pioneers, guangongwei) or a path to a .toml file",
    )
    timezone: str = Field(default="Asia/Shanghai", description="where 'today' and deadlines are")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_file: str = Field(
        default="", description="also write logs here, rotated daily; empty = stderr only"
    )
    platform: str = Field(default="simulated", description="simulated | wechaty")
    wechaty: WechatySettings = Field(default_factory=WechatySettings)
    accounts: list[AccountSettings] = Field(
        default_factory=lambda: [AccountSettings(id="bot")],
        description="the bot accounts that build and run the groups, with their quotas",
    )
    join_review: JoinReviewSettings = Field(default_factory=JoinReviewSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("QUNMATRIX_CONFIG", "config.toml")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config`` (or $QUNMATRIX_CONFIG, or ./config.toml if present), the
    environment, and explicit overrides (CLI options), in rising precedence."""
    if config is not None:
        if not config.is_file():
            from matrix.errors import MatrixError

            raise MatrixError(
                f"找不到配置文件 {config}", fix="可复制 config.example.toml 为 config.toml 再修改"
            )
        os.environ["QUNMATRIX_CONFIG"] = str(config)
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
