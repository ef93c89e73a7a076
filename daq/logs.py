"""structlog set-up: JSON lines when not on a terminal (journald), readable on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def _drop_secrets(logger: Any, name: str,
                  event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Belt and braces: no event may carry a field that looks like a secret."""
    for key in list(event):
        if any(word in key.lower() for word in ("password", "passphrase", "secret", "token")):
            event[key] = "***"
    return event


def configure(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = (structlog.dev.ConsoleRenderer(colors=stream.isatty()) if console
                     else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # pymodbus logs every timeout at ERROR with a frame dump; the scheduler counts them.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)
