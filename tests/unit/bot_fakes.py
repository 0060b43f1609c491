"""The real bot (Bolt app, listeners, forwarder, aiohttp endpoint) in-process, against local
fakes that speak the wire protocols it uses: Slack's Web API and Restate's ingress and admin
SQL API. Tests send it signed Slack requests, as Slack would.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import EVENTS_PATH, build_app, create_web_app
from bot.background import Background
from bot.forwarder import RestateForwarder
from common.settings import BotSettings
from common.slack_limiter import LimitedWebClient, make_limiter

TEAM = "T0SANDBOX"
GUEST_TEAM = "T0GUEST"
BOT_USER = "U0BOT"
CHANNEL = "C0GENERAL"
SECRET = "unit-test-signing-secret"
JSON = dict[str, Any]


@dataclass
class FakeSlack:
    """The Web API methods the bot calls, recording what it was asked to post."""

    ephemerals: list[JSON] = field(default_factory=list)
    calls: list[tuple[str, JSON]] = field(default_factory=list)
    permalink: JSON = field(default_factory=dict)
    # chat.getPermalink answers with a proxy's plain-text error page, not Slack's JSON.
    permalink_broken: bool = False
    # What auth.test answers beyond ok (the bot token's installation).
    auth: JSON = field(
        default_factory=lambda: {"team_id": TEAM, "user_id": BOT_USER, "bot_id": "B0BOT"}
    )

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: JSON = dict(request.query)
        if request.content_type == "application/json":
            args |= await request.json()
        elif request.can_read_body:
            args |= dict(await request.post())
        self.calls.append((method, args))
        if method == "auth.test":
            body: JSON = self.auth | {"url": "https://sandbox.slack.com/"}
        elif method == "chat.postEphemeral":
            self.ephemerals.append(args)
            body = {"message_ts": f"{time.time():.6f}"}
        elif method == "chat.getPermalink" and self.permalink_broken:
            return web.Response(status=502, text="Bad gateway", content_type="text/plain")
        elif method == "chat.getPermalink":
            body = self.permalink or {
                "permalink": f"https://sandbox.slack.com/archives/{args.get('channel')}/p1"
            }
        else:
            body = {}
        return web.json_response({"ok": True, **body})


@dataclass
class FakeRestate:
    """Restate's ingress (`CodingAgent` handlers) and admin `/query`, recording requests."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    rows: list[JSON] = field(default_factory=list)
    turns: int = 0
    # The task `status` says runs in every thread (None: none runs).
    running_task_id: str | None = None
    hold_stops: asyncio.Event | None = None
    # What `CodingAgent.approval` answers, and the clicks it was given.
    approval_ack: JSON = field(default_factory=lambda: {"reason": "accepted"})
    clicks: list[JSON] = field(default_factory=list)

    async def handler(self, request: web.Request) -> web.Response:
        key, name = unquote(request.match_info["key"]), request.match_info["handler"]
        self.sent.append((key, name))
        if name == "approval":
            self.clicks.append(await request.json())
            return web.json_response(self.approval_ack)
        if name == "status":
            state = "working" if self.running_task_id else "idle"
            status = {"thread_key": key, "state": state, "turns": self.turns}
            return web.json_response(status | {"running_task_id": self.running_task_id})
        if name == "stop" and self.hold_stops is not None:
            await self.hold_stops.wait()
        if name == "stop":
            return web.json_response({"stopped": True, "reason": "stopped"})
        return web.json_response({"invocationId": "inv_1", "status": "Accepted"})

    async def query(self, request: web.Request) -> web.Response:
        self.queries.append(str((await request.json())["query"]))
        return web.json_response({"rows": self.rows})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/CodingAgent/{key}/{handler}", self.handler)
        app.router.add_post("/CodingAgent/{key}/{handler}/send", self.handler)
        app.router.add_post("/query", self.query)
        return app


def signed(body: str, content_type: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }


@dataclass
class Bot:
    http: TestClient[Any, Any]
    slack: FakeSlack
    restate: FakeRestate

    async def event(self, event: JSON, team: str = TEAM) -> aiohttp.ClientResponse:
        envelope = {
            "token": "t",
            "type": "event_callback",
            "team_id": team,
            "api_app_id": "A0SANDBOX",
            "event": event,
            "event_id": f"Ev{time.time_ns()}",
            "event_time": int(time.time()),
        }
        return await self.deliver(envelope)

    async def deliver(self, envelope: JSON) -> aiohttp.ClientResponse:
        """Post a whole Events API envelope (a fixture's, say), signed as Slack signs it."""
        body = json.dumps(envelope)
        return await self.http.post(
            EVENTS_PATH, data=body, headers=signed(body, "application/json")
        )

    async def command(self, text: str, **fields: str) -> aiohttp.ClientResponse:
        form = {
            "token": "t",
            "team_id": TEAM,
            "channel_id": CHANNEL,
            "user_id": "U0ALICE",
            "command": "/agent-status",
            "text": text,
            "api_app_id": "A0SANDBOX",
            "response_url": "http://127.0.0.1:9/hooks",
            "trigger_id": "1.2.3",
            **fields,
        }
        return await self.slash_command(form)

    async def slash_command(self, form: dict[str, str]) -> aiohttp.ClientResponse:
        """Post a slash command's form fields as they are, signed as Slack signs them."""
        return await self._form(urlencode(form))

    async def interaction(self, payload: JSON) -> aiohttp.ClientResponse:
        return await self._form(urlencode({"payload": json.dumps(payload)}))

    async def _form(self, body: str) -> aiohttp.ClientResponse:
        content_type = "application/x-www-form-urlencoded"
        return await self.http.post(EVENTS_PATH, data=body, headers=signed(body, content_type))


def closed_port_url() -> str:
    """A URL on which nothing listens: Restate is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


@asynccontextmanager
async def running_bot(restate_down: bool = False, **settings: Any) -> AsyncIterator[Bot]:
    """The bot, its Slack and its Restate; `settings` are `BotSettings` fields."""
    slack, restate = FakeSlack(), FakeRestate()
    slack_app = web.Application()
    slack_app.router.add_route("*", "/api/{method}", slack.handle)
    slack_server, restate_server = await _serve(slack_app), await _serve(restate.app())
    restate_url = closed_port_url() if restate_down else str(restate_server.make_url(""))
    config = BotSettings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-unit",
        slack_signing_secret=SECRET,
        slack_api_url=str(slack_server.make_url("/api/")),
        restate_ingress_url=restate_url,
        restate_admin_url=restate_url,
        **settings,
    )
    try:
        async with aiohttp.ClientSession() as session:
            client = LimitedWebClient(
                token="xoxb-unit",
                base_url=str(config.slack_api_url),
                session=session,
                limiter=make_limiter(1.0, for_bot=True),
                rate_limit_retries=0,
            )
            forwarder = RestateForwarder(session, restate_url, restate_url)
            background = Background()
            web_app = create_web_app(build_app(config, client, forwarder, background), SECRET)
            try:
                async with TestClient(TestServer(web_app, host="127.0.0.1", port=0)) as http:
                    yield Bot(http, slack, restate)
            finally:
                await background.close(grace_seconds=1.0)
    finally:
        await slack_server.close()
        await restate_server.close()


async def eventually(check: Callable[[], Any], within: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)
