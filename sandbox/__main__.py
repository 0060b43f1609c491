"""Run the sandbox Slack workspace and offline model server in one process.

    python -m sandbox --workspace-port 0 --model-port 0 --bot-url URL --ready-file PATH

Once both listen, writes their URLs as JSON to --ready-file (atomically) and prints them
as one line on stdout. Stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from sandbox.log import configure_logging
from sandbox.model_server import ModelConfig, create_model_app
from sandbox.slack_workspace import WorkspaceConfig, create_workspace_app

log = structlog.get_logger("sandbox")

SHUTDOWN_TIMEOUT = 3.0


@dataclass(frozen=True)
class SandboxSettings:
    """Everything the sandbox process needs, read once from arguments and environment."""

    host: str
    workspace_port: int
    model_port: int
    bot_url: str | None
    signing_secret: str
    bot_token: str
    chunk_delay: float
    ready_file: Path | None
    model_api_key: str | None
    log_level: str
    log_format: str


def parse_settings(argv: Sequence[str] | None, env: Mapping[str, str]) -> SandboxSettings:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workspace-port", type=int, default=0)
    parser.add_argument("--model-port", type=int, default=0)
    parser.add_argument("--bot-url", default=None, help="where Slack events are POSTed")
    parser.add_argument("--signing-secret", default=env.get("SANDBOX_SIGNING_SECRET"))
    parser.add_argument("--bot-token", default=env.get("SANDBOX_BOT_TOKEN"))
    parser.add_argument("--chunk-delay", type=float, default=0.15)
    parser.add_argument("--ready-file", type=Path, default=None)
    parser.add_argument("--model-api-key", default=None, help="if set, other keys get 401")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument(
        "--log-format",
        default=env.get("LOG_FORMAT", "auto"),
        choices=["auto", "console", "json"],
        help="default: LOG_FORMAT, else console on a terminal and JSON otherwise",
    )
    args = parser.parse_args(argv)
    missing = [
        name
        for name, value in (
            ("--signing-secret / SANDBOX_SIGNING_SECRET", args.signing_secret),
            ("--bot-token / SANDBOX_BOT_TOKEN", args.bot_token),
        )
        if not value
    ]
    if missing:
        parser.error("missing " + ", ".join(missing))
    return SandboxSettings(**vars(args))


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])


def write_ready_file(path: Path, info: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


async def serve(settings: SandboxSettings) -> None:
    workspace = create_workspace_app(
        WorkspaceConfig(
            bot_token=settings.bot_token,
            signing_secret=settings.signing_secret,
            bot_url=settings.bot_url,
        )
    )
    model = create_model_app(
        ModelConfig(api_key=settings.model_api_key, chunk_delay=settings.chunk_delay)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        ws_runner, ws_port = await start_site(workspace, settings.host, settings.workspace_port)
        runners.append(ws_runner)
        model_runner, model_port = await start_site(model, settings.host, settings.model_port)
        runners.append(model_runner)
        base = f"http://{settings.host}"
        info = {
            "workspace_url": f"{base}:{ws_port}",
            "api_url": f"{base}:{ws_port}/api/",
            "model_url": f"{base}:{model_port}/v1",
        }
        if settings.ready_file is not None:
            write_ready_file(settings.ready_file, info)
        print(json.dumps(info), flush=True)
        log.info("sandbox_ready", **info, bot_url=settings.bot_url)
        await stop.wait()
        log.info("sandbox_stopping")
    finally:
        await asyncio.gather(*(runner.cleanup() for runner in runners))


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv, os.environ)
    configure_logging(getattr(logging, settings.log_level), settings.log_format)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
