"""`python -m restate_app`: serve the durable services over HTTP/2 and register them."""

from __future__ import annotations

import asyncio
import logging
import signal

import restate
import structlog
from hypercorn.asyncio import serve
from restate.server import install_shutdown_hook

from common.logging import configure
from common.runtime import bind_socket, restate_endpoint_config, stop_event, write_ready_file
from common.settings import AppSettings, load_or_exit
from restate_app.app import build_app, check_sandbox, keep_workspaces, open_clients
from restate_app.deps import deps
from restate_app.registration import register

log = structlog.get_logger("restate_app")


class _SkipReplayedLines(logging.Filter):
    """Replays re-run handler code: do not repeat the log lines of our own code's first run.

    A filter, not a structlog processor: the handler also formats foreign (stdlib) records,
    where a processor's `DropEvent` would escape as an exception.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name.startswith("restate_app")
        return not (ours and restate.server_context.restate_context_is_replaying.get())


async def _serve(settings: AppSettings) -> None:
    sock = bind_socket(settings.restate_app_host, settings.restate_app_port)
    port = sock.getsockname()[1]
    config = restate_endpoint_config(sock)
    stop = stop_event()
    # The Restate app takes over SIGTERM on its first request (one handler per signal and
    # loop): join its dispatcher so our stop still runs alongside its drain.
    install_shutdown_hook(asyncio.get_running_loop(), stop.set, signal.SIGTERM)
    async with open_clients(settings) as clients:
        app = build_app(settings, clients)
        await asyncio.to_thread(check_sandbox, settings, deps())
        housekeeping = asyncio.create_task(keep_workspaces(deps()))
        server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
        url = str(settings.restate_app_advertised_url or f"http://127.0.0.1:{port}").rstrip("/")
        if settings.restate_app_register:
            await register(str(settings.restate_admin_url), url)
        write_ready_file(settings.ready_file, {"url": url, "port": port})
        log.info("restate_app_ready", url=url)
        await stop.wait()
        # hypercorn waits for open HTTP/2 connections, and Restate keeps them open: bound it.
        try:
            await asyncio.wait_for(server, timeout=config.graceful_timeout + 1)
        except TimeoutError:
            log.warning("restate_app_shutdown_forced")
        housekeeping.cancel()
    log.info("restate_app_stopped")


def main() -> None:
    settings = load_or_exit(AppSettings)
    configure(settings.log_level, settings.log_format)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_SkipReplayedLines())
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()
