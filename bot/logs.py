"""Logging: loguru, configured here and nowhere else. stdlib logging (SQLAlchemy, alembic,
wechaty) is forwarded into it so there is one stream with one format."""

from __future__ import annotations

import logging
import sys

from loguru import logger


class _Forward(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(level: str = "INFO", log_file: str = "") -> None:
    logger.remove()
    # diagnose=False: never print local variables (phone numbers, tokens) into a traceback
    logger.add(
        sys.stderr,
        level=level,
        diagnose=False,
        format="{time:HH:mm:ss} {level:<7} {name}: {message}",
    )
    if log_file:
        logger.add(
            log_file,
            level=level,
            diagnose=False,
            rotation="00:00",
            retention="30 days",
            encoding="utf-8",
        )
    logging.basicConfig(handlers=[_Forward()], level=logging.WARNING, force=True)
