"""structlog set-up, done once per process: JSON off a terminal, pretty on one."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Literal

import structlog
from structlog.typing import Processor


def configure(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    extra_processors: Sequence[Processor] = (),
) -> None:
    """Configure structlog and route stdlib logging (aiohttp, slack_sdk, restate) through it."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *extra_processors,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Client libraries log request bodies (message text, tokens in URLs) at debug level.
    for noisy in (
        "slack_sdk",
        "slack_bolt",
        "openai",
        "httpx",
        "httpx2",
        "httpcore",
        "hpack",
        "hypercorn",
    ):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))


def _identity(
    _logger: object, _name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return event_dict
