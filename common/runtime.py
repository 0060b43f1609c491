"""Small process helpers shared by the entry points: listening sockets, ready files, signals,
the HTTP/2 server Restate calls."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

from hypercorn.config import Config


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 lets the OS choose, read it back with `getsockname`."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def write_ready_file(path: str | None, data: dict[str, Any]) -> None:
    """Tell whoever started us where we listen, atomically (write, then rename)."""
    if not path:
        return
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def stop_event() -> asyncio.Event:
    """An event set on SIGTERM or SIGINT, for a graceful shutdown."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


def restate_endpoint_config(sock: socket.socket, graceful_timeout: float = 5.0) -> Config:
    """hypercorn's settings for an endpoint Restate calls, serving on `sock`.

    Restate multiplexes every invocation over a few long-lived HTTP/2 connections. hypercorn
    closes a connection after `keep_alive_max_requests` (1000) streams, breaking every run
    still streaming on it: Restate retries them, and the steps they had in flight (a model
    call, a command, a Slack post) run again. A connection is never recycled by count here.
    """
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.graceful_timeout = graceful_timeout
    config.keep_alive_max_requests = 2**62
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config
