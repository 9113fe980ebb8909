"""Logging: loguru, configured here and nowhere else. stdlib logging (SQLAlchemy, alembic,
wechaty) is forwarded into it so there is one stream with one format."""

from __future__ import annotations

import logging
import sys
from typing import Any

from loguru import logger


class _Forward(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


ERROR_LOG = "qunmatrix-error.log"


def _terminal_format(record: Any) -> str:
    # a callable format gets no traceback appended: the terminal reads one line per record,
    # the traceback goes to the log file only
    return "{time:HH:mm:ss} {level:<7} {name}: {message}\n"


def setup_logging(level: str = "INFO", log_file: str = "") -> str:
    """Configure the sinks; return the file that receives tracebacks (``log_file``, or
    ``qunmatrix-error.log`` in the working directory, created on the first error only)."""
    logger.remove()
    # diagnose=False: never print local variables (phone numbers, tokens) into a traceback
    logger.add(
        sys.stderr,
        level=level,
        diagnose=False,
        format=_terminal_format,
        # a failure the terminal already shows in Chinese (with its reference) is for the file
        filter=lambda record: not record["extra"].get("file_only"),
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
    else:
        logger.add(ERROR_LOG, level="ERROR", diagnose=False, encoding="utf-8", delay=True)
    logging.basicConfig(handlers=[_Forward()], level=logging.WARNING, force=True)
    return log_file or ERROR_LOG
