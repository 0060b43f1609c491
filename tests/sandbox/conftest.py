"""Fixtures for the sandbox tests: a recording fake bot, the workspace and the model server,
and the workspace's page in Debian's Chromium.

Everything runs in-process on 127.0.0.1 with port 0.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page, async_playwright, expect

from sandbox.model_server import ModelConfig, create_model_app
from sandbox.slack_workspace import WorkspaceConfig, create_workspace_app
from tests.conftest import CHROMIUM, CHROMIUM_ARGS

BOT_TOKEN = "xoxb-sandbox-test-token"
SIGNING_SECRET = "test-signing-secret"


@dataclass
class BotReply:
    status: int = 200
    delay: float = 0.0
    body: str = ""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    content_type: str
    received_at: float


class FakeBot:
    """Records what Slack (the sandbox) sends; answers from a queue of replies, else 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: deque[BotReply] = deque()
        self.url = ""

    def reply(self, status: int = 200, delay: float = 0.0, **kw: Any) -> None:
        """Queue how the bot answers the next request."""
        self.replies.append(BotReply(status=status, delay=delay, **kw))

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(
            Received(dict(request.headers), await request.read(), request.content_type, time.time())
        )
        reply = self.replies.popleft() if self.replies else BotReply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(
            status=reply.status,
            text=reply.body,
            content_type=reply.content_type,
            headers=reply.headers,
        )


Check = Callable[[], Awaitable[Any]] | Callable[[], Any]


async def poll_until(check: Check, within: float = 5.0) -> Any:
    """Poll `check` until it returns something truthy, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


class FakeClock:
    """A monotonic clock that moves only when told to, for the workspace's rate limits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """`await eventually(check)`: poll for a condition with a deadline instead of sleeping."""
    return poll_until


@pytest.fixture
async def bot() -> AsyncIterator[FakeBot]:
    fake = FakeBot()
    app = web.Application()
    app.router.add_post("/slack/events", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    fake.url = str(server.make_url("/slack/events"))
    try:
        yield fake
    finally:
        await server.close()


@pytest.fixture
def workspace_config(bot: FakeBot) -> WorkspaceConfig:
    return WorkspaceConfig(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        bot_url=bot.url,
        retry_delays=(0.05, 0.05, 0.05),
        delivery_timeout=0.5,
    )


@pytest.fixture
async def workspace(workspace_config: WorkspaceConfig) -> AsyncIterator[TestClient[Any, Any]]:
    server = TestServer(create_workspace_app(workspace_config), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        yield client


@pytest.fixture
async def limited(
    workspace_config: WorkspaceConfig, clock: FakeClock
) -> AsyncIterator[TestClient[Any, Any]]:
    """A workspace (rate limits on, as by default) whose limiter runs on `clock`."""
    server = TestServer(create_workspace_app(workspace_config, clock), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        yield client


@pytest.fixture
def api_url(workspace: TestClient[Any, Any]) -> str:
    return str(workspace.make_url("/api/"))


@pytest.fixture
def model_config() -> ModelConfig:
    return ModelConfig(chunk_delay=0.01)


@pytest.fixture
async def model(model_config: ModelConfig) -> AsyncIterator[TestClient[Any, Any]]:
    server = TestServer(create_model_app(model_config), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        yield client


@pytest.fixture
def model_url(model: TestClient[Any, Any]) -> str:
    return str(model.make_url("/v1"))


@asynccontextmanager
async def open_page(
    workspace: TestClient[Any, Any], width: int = 1280, height: int = 800
) -> AsyncIterator[Page]:
    """The workspace's page in Debian's Chromium (never a downloaded one), its live feed open."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is missing: run `make test`")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(15_000)
            await page.goto(str(workspace.make_url("/")))
            await expect(page.locator("#conn")).to_have_text("live")
            yield page
        finally:
            await browser.close()
