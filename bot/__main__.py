"""`python -m bot`: the Slack front door over HTTP (or Socket Mode when an app token is set)."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import EVENTS_PATH, build_app, create_web_app
from bot.background import Background
from bot.dashboard import create_dashboard
from bot.dashboard.auth import check_binding
from bot.forwarder import RestateForwarder
from bot.rules import Rules
from common.logging import configure
from common.runtime import bind_socket, stop_event, write_ready_file
from common.settings import BotSettings, SettingsError, load_or_exit
from common.slack_limiter import LimitedWebClient, make_limiter

log = structlog.get_logger("bot")


async def _serve(settings: BotSettings) -> None:
    stop = stop_event()
    timeout = aiohttp.ClientTimeout(total=10, connect=3)
    # Sends to Restate on Slack's ack path get a connection pool of their own: the minute-long
    # stop calls of background work (on `session`) can never hold every connection they need.
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        aiohttp.ClientSession(timeout=timeout) as ack_session,
    ):
        client = LimitedWebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=str(settings.slack_api_url),
            session=session,
            limiter=make_limiter(settings.slack_rate_share, for_bot=True),
            # Slack waits 3 s for an event's ack: a 429 here is answered, not waited out.
            rate_limit_retries=0,
        )
        forwarder = RestateForwarder(
            ack_session,
            str(settings.restate_ingress_url),
            str(settings.restate_admin_url),
            calls_session=session,
        )
        background = Background()
        bolt = build_app(settings, client, forwarder, background)
        secret = settings.slack_signing_secret
        web_app = create_web_app(
            bolt,
            secret.get_secret_value() if secret else None,
            restate_ready=forwarder.ingress_ready,
            stopping=stop.is_set,
        )
        runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        sock = bind_socket(settings.bot_host, settings.bot_port)
        await web.SockSite(runner, sock).start()
        port = sock.getsockname()[1]
        dashboard, dashboard_url = await _start_dashboard(settings, session, client)
        socket_mode = None
        if settings.slack_app_token is not None:
            socket_mode = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
            await socket_mode.connect_async()  # type: ignore[no-untyped-call]
        ready = {"port": port, "url": f"http://127.0.0.1:{port}", "dashboard_url": dashboard_url}
        write_ready_file(settings.ready_file, ready)
        log.info("bot_ready", port=port, path=EVENTS_PATH, socket_mode=socket_mode is not None)
        log.info("dashboard_ready", url=dashboard_url, token=settings.dashboard_token is not None)
        await stop.wait()
        if socket_mode is not None:
            await socket_mode.close_async()  # type: ignore[no-untyped-call]
        await dashboard.cleanup()
        await runner.cleanup()
        await background.close()
    log.info("bot_stopped")


async def _workspace_url(client: AsyncWebClient) -> str | None:
    """The workspace's base URL (`auth.test`), for links to threads; None if Slack is away."""
    try:
        response = await client.auth_test()
    except Exception as exc:  # links are a convenience: the dashboard works without them
        log.warning("workspace_url_unavailable", error=type(exc).__name__)
        return None
    url = response.get("url")
    return str(url) if url else None


async def _start_dashboard(
    settings: BotSettings, session: aiohttp.ClientSession, client: AsyncWebClient
) -> tuple[web.AppRunner, str]:
    """Serve the ops dashboard and the bot's /metrics on their own, non-public listener."""
    app = create_dashboard(settings, session, await _workspace_url(client), client)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    sock = bind_socket(settings.dashboard_host, settings.dashboard_port)
    await web.SockSite(runner, sock).start()
    host = settings.dashboard_host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return runner, f"http://{shown}:{sock.getsockname()[1]}"


def _check(settings: BotSettings) -> None:
    if settings.slack_signing_secret is None and not settings.socket_mode:
        raise SettingsError(
            "bot: SLACK_SIGNING_SECRET is required unless SLACK_APP_TOKEN selects Socket Mode"
        )
    token = settings.dashboard_token.get_secret_value() if settings.dashboard_token else None
    public = settings.dashboard_public_url
    check_binding(settings.dashboard_host, token, str(public) if public else None)
    Rules.from_settings(settings)  # CHANNEL_POLICIES must parse before anything starts


# Read by Bolt's AsyncApp from the environment whenever it is not handed them.
BOLT_ENV_FALLBACKS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")


def hand_credentials_to_settings() -> None:
    """Leave the Slack credentials to the settings that hold them, out of the environment.

    Bolt's AsyncApp falls back to SLACK_BOT_TOKEN when not given a `token`, and the app is
    given the process's own `client` (which carries the token) instead: Bolt then warned at
    every start that the token it found goes unused. Everything that needs a credential gets
    it from the settings, passed explicitly; nothing reads these variables after this."""
    for name in BOLT_ENV_FALLBACKS:
        os.environ.pop(name, None)


def main() -> None:
    settings = load_or_exit(BotSettings, _check)
    hand_credentials_to_settings()
    configure(settings.log_level, settings.log_format)
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()
