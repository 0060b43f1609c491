"""Builds the bot: the Bolt app with its listeners, and the aiohttp app that serves Slack."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.background import Background
from bot.edge import refuse
from bot.forwarder import RestateForwarder
from bot.listeners import register
from bot.names import SlackNames
from bot.rules import Rules
from bot.run_rate import RunLimits, RunRate
from common.settings import BotSettings

log = structlog.get_logger(__name__)

# Slack's own payloads are far smaller; anything larger is refused before parsing.
MAX_BODY_BYTES = 1024 * 1024
EVENTS_PATH = "/slack/events"
AUTH_UNAVAILABLE = "The coding agent cannot reach Slack right now. Please try again shortly."


def build_app(
    settings: BotSettings,
    client: AsyncWebClient,
    forwarder: RestateForwarder,
    background: Background | None = None,
) -> AsyncApp:
    """The Bolt app: signature verification on, listeners registered, nothing run at import.

    `background` runs what listeners do after the ack; the process closes it at shutdown."""
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    app = AsyncApp(
        client=client,
        signing_secret=secret,
        request_verification_enabled=not settings.socket_mode,
        # The listener only stores the message in Restate; acking after that loses nothing.
        process_before_response=True,
        logger=logging.getLogger("slack_bolt"),
        user_facing_authorize_error_message=AUTH_UNAVAILABLE,
    )
    app.use(metrics.count_slack_request)

    async def shared_client(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        # Bolt makes a plain client per request; the process's own one keeps every call of
        # the bot inside its share of Slack's rate limits.
        context["client"] = client
        await next()

    app.use(shared_client)
    rules = Rules.from_settings(settings)
    run_rate = RunRate(RunLimits.from_settings(settings))
    background = background or Background()
    names = SlackNames(client)
    register(app, forwarder, rules, settings.reaction_received, background, run_rate, names)
    return app


def create_web_app(
    bolt: AsyncApp,
    signing_secret: str | None = None,
    restate_ready: Callable[[], Awaitable[bool]] | None = None,
    stopping: Callable[[], bool] | None = None,
) -> web.Application:
    """The public HTTP endpoint: events, slash commands and interactivity on one path.

    Health, so probes tell a broken bot from an absent Restate: `/healthz` (liveness: the
    process serves) and `/readyz` (readiness: serving and not `stopping()`) answer at once from
    this process alone; `/readyz/restate` (`restate_ready()`: Restate's ingress answers) is for
    operators, never for a kubelet probe: Restate's absence is the same for every replica, and a
    probe following it would take them all out of the Service together and block drains."""
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def slack_events(request: web.Request) -> web.Response:
        body = await request.text()
        refused = refuse(verifier, body, request.headers, request.content_type)
        if refused is not None:
            status, reason = refused
            log.warning("slack_request_refused", status=status, reason=reason, bytes=len(body))
            return web.json_response({"ok": False, "error": reason}, status=status)
        bolt_request = await to_bolt_request(request)
        bolt_response = await bolt.async_dispatch(bolt_request)
        lost_if_acked = request.content_type == "application/json"
        if lost_if_acked and bolt_response.body == AUTH_UNAVAILABLE:
            # Bolt acks with 200 when auth.test fails (Slack down, rate limited): an event
            # acked then would be lost, so ask Slack to deliver it again later. A command or
            # a click keeps Bolt's answer, which the person sees.
            log.warning("slack_auth_unavailable")
            return web.json_response({"ok": False, "error": "auth_unavailable"}, status=503)
        if bolt_response.status >= 400:
            log.info("slack_request_refused", status=bolt_response.status, path=request.path)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_request: web.Request) -> web.Response:
        if stopping is not None and stopping():
            return web.json_response({"ok": False, "reason": "stopping"}, status=503)
        return web.json_response({"ok": True})

    async def restate(_request: web.Request) -> web.Response:
        if restate_ready is None or await restate_ready():
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "reason": "restate ingress unreachable"}, status=503)

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.router.add_post(EVENTS_PATH, slack_events)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/readyz/restate", restate)
    return web_app
