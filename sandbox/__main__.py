"""Run the sandbox Slack workspace and offline model server in one process.

    python -m sandbox --workspace-port 0 --model-port 0 --bot-url URL --ready-file PATH \
        [--channel C0DEPLOY=deploys ...] [--slack-limits on|off] \
        [--github-port 0 --github-root DIR] [--state-file PATH] [--seed-thread]

Also serves the sandbox GitHub (pull requests over the bare repositories under
--github-root, accepting the token SANDBOX_GITHUB_TOKEN). Once all listen, writes their URLs
as JSON to --ready-file (atomically) and prints them as one line on stdout. Stops cleanly on
SIGTERM or SIGINT. With --state-file the workspace keeps its users, channels, messages and files
in that JSON file across restarts (`make run` keeps it beside Restate's data). With --seed-thread
a fresh workspace starts with a thread already under way in #general (sandbox/slack_seed.py).
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

from sandbox.github_page import show_on_page
from sandbox.github_server import GitHubConfig, PullStore, create_github_app
from sandbox.log import configure_logging
from sandbox.model_server import ModelConfig, create_model_app
from sandbox.slack_seed import seed_thread
from sandbox.slack_state import parse_channel_list, parse_channel_spec
from sandbox.slack_workspace import WorkspaceConfig, create_workspace_app
from sandbox.workspace import WORKSPACE_KEY

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
    model_poll_interval: float = 0.01
    model_cancel_on_disconnect: bool = False
    channels: tuple[tuple[str, str], ...] = ()
    slack_limits: bool = True
    github_port: int = 0
    github_root: Path | None = None
    github_token: str | None = None
    state_file: Path | None = None
    seed_thread: bool = False


def on_off(value: str) -> bool:
    switch = {"on": True, "off": False}.get(value.strip().lower())
    if switch is None:
        message = f"{value!r} is neither on nor off (also SANDBOX_SLACK_LIMITS)"
        raise argparse.ArgumentTypeError(message)
    return switch


def channel_arg(spec: str) -> tuple[str, str]:
    try:
        return parse_channel_spec(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


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
    parser.add_argument(
        "--model-poll-interval",
        type=float,
        default=0.01,
        help="how often a waiting stream checks whether its client left (seconds)",
    )
    parser.add_argument(
        "--model-cancel-on-disconnect",
        action="store_true",
        help="cancel a stream as soon as its client hangs up (exact close times, cheap waits)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument(
        "--log-format",
        default=env.get("LOG_FORMAT", "auto"),
        choices=["auto", "console", "json"],
        help="default: LOG_FORMAT, else console on a terminal and JSON otherwise",
    )
    parser.add_argument(
        "--channel",
        dest="channels",
        action="append",
        type=channel_arg,
        default=[],
        metavar="ID=NAME",
        help="an extra public channel (repeatable); SANDBOX_CHANNELS='C1=a,C2=b' adds more",
    )
    parser.add_argument(
        "--slack-limits",
        type=on_off,
        default=env.get("SANDBOX_SLACK_LIMITS") or "on",
        metavar="on|off",
        help="answer calls past Slack's published rate limits with HTTP 429 and Retry-After "
        "(default: SANDBOX_SLACK_LIMITS, else on)",
    )
    parser.add_argument("--github-port", type=int, default=0)
    parser.add_argument(
        "--github-root",
        type=Path,
        default=None,
        help="the sandbox GitHub's bare repositories, <DIR>/<owner>/<name>.git (default: none)",
    )
    parser.add_argument(
        "--github-token",
        default=env.get("SANDBOX_GITHUB_TOKEN"),
        help="the token its API accepts (default: SANDBOX_GITHUB_TOKEN; unset: none is)",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="keep the workspace's messages and files in this JSON file across restarts",
    )
    parser.add_argument(
        "--seed-thread",
        action="store_true",
        help="start a fresh workspace with a thread already under way in #general, for trying "
        "how the agent joins one (a restored workspace is never seeded)",
    )
    args = parser.parse_args(argv)
    try:
        from_env = parse_channel_list(env.get("SANDBOX_CHANNELS", ""))
    except ValueError as exc:
        parser.error(f"SANDBOX_CHANNELS: {exc}")
    args.channels = (*from_env, *args.channels)
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


async def start_site(
    app: web.Application, host: str, port: int, handler_cancellation: bool = False
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        handler_cancellation=handler_cancellation,
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])


def write_ready_file(path: Path, info: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def workspace_config(settings: SandboxSettings) -> WorkspaceConfig:
    """The sandbox Slack workspace's configuration from the process's settings."""
    return WorkspaceConfig(
        bot_token=settings.bot_token,
        signing_secret=settings.signing_secret,
        bot_url=settings.bot_url,
        channels=settings.channels,
        slack_limits=settings.slack_limits,
        state_file=settings.state_file,
        seed_thread=settings.seed_thread,
    )


async def serve(settings: SandboxSettings) -> None:
    workspace = create_workspace_app(workspace_config(settings))
    model_config = ModelConfig(
        api_key=settings.model_api_key,
        chunk_delay=settings.chunk_delay,
        poll_interval=settings.model_poll_interval,
        cancel_on_disconnect=settings.model_cancel_on_disconnect,
    )
    model = create_model_app(model_config)
    root = settings.github_root
    pulls = PullStore(root / "pulls.json" if root is not None else None)
    github = create_github_app(GitHubConfig(token=settings.github_token, root=root), pulls)
    show_on_page(workspace, pulls)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        ws_runner, ws_port = await start_site(workspace, settings.host, settings.workspace_port)
        runners.append(ws_runner)
        base = f"http://{settings.host}"
        # Its files' URLs are on the address it listens at, known only now.
        seed_thread(workspace[WORKSPACE_KEY], f"{base}:{ws_port}")
        model_runner, model_port = await start_site(
            model, settings.host, settings.model_port, model_config.cancel_on_disconnect
        )
        runners.append(model_runner)
        github_runner, github_port = await start_site(github, settings.host, settings.github_port)
        runners.append(github_runner)
        pulls.web_url = f"{base}:{github_port}"
        info = {
            "workspace_url": f"{base}:{ws_port}",
            "api_url": f"{base}:{ws_port}/api/",
            "model_url": f"{base}:{model_port}/v1",
            "github_url": pulls.web_url,
            "github_api_url": f"{pulls.web_url}/api/v3",
        }
        if settings.ready_file is not None:
            write_ready_file(settings.ready_file, info)
        print(json.dumps(info), flush=True)
        log.info(
            "sandbox_ready", **info, bot_url=settings.bot_url, slack_limits=settings.slack_limits
        )
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
