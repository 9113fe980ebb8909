"""Settings: one pydantic class, read from ``config.toml`` and ``QUNMATRIX_*`` environment
variables (the environment wins). ``config.example.toml`` documents every field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from matrix.errors import MatrixError, Problem
from matrix.relay.options import RelayOptions


class WechatySettings(BaseModel):
    """How to reach the Wechaty puppet service (real mode)."""

    endpoint: str = Field(
        default="", description="host:port of the puppet service, e.g. 127.0.0.1:8788"
    )
    token: str = Field(default="", description="puppet service token, e.g. insecure_qunmatrix")
    port: int = Field(
        default=0, description="local port Wechaty probes at login; 0 picks a free one"
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
    relay: RelayOptions = Field(
        default_factory=RelayOptions,
        description="notice pacing, retries, reminders, content guard, watch list ([relay])",
    )

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
            raise MatrixError(
                f"找不到配置文件 {config}", fix="可复制 config.example.toml 为 config.toml 再修改"
            )
        os.environ["QUNMATRIX_CONFIG"] = str(config)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = [
            Problem(".".join(str(p) for p in err["loc"]), _REASONS.get(err["type"], err["msg"]))
            for err in exc.errors()
        ]
        raise MatrixError(
            "配置有误：" + "；".join(str(p) for p in problems),
            fix="请对照 config.example.toml 修改配置文件或 QUNMATRIX_* 环境变量",
        ) from exc


_REASONS = {
    "extra_forbidden": "不认识的设置项",
    "string_type": "应为字符串",
    "int_parsing": "应为整数",
    "bool_parsing": "应为 true 或 false",
    "float_parsing": "应为数字",
    "greater_than_equal": "数值太小",
    "greater_than": "数值太小",
    "less_than": "数值太大",
}
