"""Health endpoints: `/healthz` says the process is up, `/readyz` that its dependency answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import create_web_app
from restate_app.health import health_routes


@pytest.fixture
async def admin() -> AsyncIterator[tuple[TestServer, list[str]]]:
    """A fake Restate admin API whose `/services` lists the names in the returned list."""
    names: list[str] = []

    async def services(_request: web.Request) -> web.Response:
        return web.json_response({"services": [{"name": n} for n in names]})

    app = web.Application()
    app.router.add_get("/services", services)
    async with TestServer(app) as server:
        yield server, names


async def test_restate_app_is_ready_once_restate_lists_both_services(
    admin: tuple[TestServer, list[str]],
) -> None:
    server, names = admin
    routes = health_routes(str(server.make_url("/")))
    assert (await routes["/healthz"]()).status == 200

    not_yet = await routes["/readyz"]()
    assert not_yet.status == 503
    assert json.loads(not_yet.body)["missing"] == ["CodingAgent", "CodingTask"]

    names.extend(["CodingAgent", "CodingTask", "Other"])
    assert (await routes["/readyz"]()).status == 200


async def test_restate_app_is_not_ready_when_the_admin_api_is_unreachable() -> None:
    routes = health_routes("http://127.0.0.1:9")
    response = await routes["/readyz"]()
    assert response.status == 503
    assert (await routes["/healthz"]()).status == 200


@pytest.mark.parametrize(("ingress_up", "status"), [(True, 200), (False, 503)])
async def test_bot_readiness_follows_the_restate_ingress(ingress_up: bool, status: int) -> None:
    async def ready() -> bool:
        return ingress_up

    bolt = AsyncApp(signing_secret="secret", client=AsyncWebClient(token="xoxb-test"))
    async with TestClient(TestServer(create_web_app(bolt, "secret", ready=ready))) as client:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == status
