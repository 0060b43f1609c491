"""Health endpoints: `/healthz` and `/readyz` answer from the process alone, so an absent
Restate never takes every replica out at once; `/readyz/restate` says whether Restate answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import create_web_app
from restate_app.health import health_routes

# A deadline for answers that must not wait on Restate: far above any local answer, far below
# the pytest timeout, so a probe that waits on a hung Restate fails here, not by hanging.
LOCAL_ANSWER_DEADLINE = 10.0


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


@pytest.fixture
async def hung_admin() -> AsyncIterator[str]:
    """An admin API that accepts requests and never answers (a partitioned Restate)."""
    never = asyncio.Event()

    async def services(_request: web.Request) -> web.Response:
        await never.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/services", services)
    async with TestServer(app) as server:
        yield str(server.make_url("/"))
        never.set()


async def test_restate_check_passes_once_restate_lists_both_services(
    admin: tuple[TestServer, list[str]],
) -> None:
    server, names = admin
    routes = health_routes(str(server.make_url("/")))
    not_yet = await routes["/readyz/restate"]()
    assert not_yet.status == 503
    assert json.loads(not_yet.body)["missing"] == ["CodingAgent", "CodingTask"]

    names.extend(["CodingAgent", "CodingTask", "Other"])
    assert (await routes["/readyz/restate"]()).status == 200


async def test_restate_app_stays_live_and_ready_while_restate_is_unreachable() -> None:
    routes = health_routes("http://127.0.0.1:9")
    assert (await routes["/readyz/restate"]()).status == 503
    assert (await routes["/healthz"]()).status == 200
    assert (await routes["/readyz"]()).status == 200


async def test_restate_app_probes_answer_without_waiting_on_a_hung_restate(
    hung_admin: str,
) -> None:
    routes = health_routes(hung_admin)
    async with asyncio.timeout(LOCAL_ANSWER_DEADLINE):
        assert (await routes["/readyz"]()).status == 200
        assert (await routes["/healthz"]()).status == 200


def _bolt() -> AsyncApp:
    return AsyncApp(signing_secret="secret", client=AsyncWebClient(token="xoxb-test"))


@pytest.mark.parametrize(("ingress_up", "status"), [(True, 200), (False, 503)])
async def test_bot_restate_check_follows_the_restate_ingress(ingress_up: bool, status: int) -> None:
    async def restate_ready() -> bool:
        return ingress_up

    web_app = create_web_app(_bolt(), "secret", restate_ready=restate_ready)
    async with TestClient(TestServer(web_app)) as client:
        assert (await client.get("/readyz/restate")).status == status
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200


async def test_bot_probes_answer_without_waiting_on_a_hung_restate() -> None:
    async def restate_ready() -> bool:
        await asyncio.Event().wait()
        return True

    web_app = create_web_app(_bolt(), "secret", restate_ready=restate_ready)
    async with TestClient(TestServer(web_app)) as client, asyncio.timeout(LOCAL_ANSWER_DEADLINE):
        assert (await client.get("/readyz")).status == 200
        assert (await client.get("/healthz")).status == 200


async def test_bot_is_not_ready_once_it_is_stopping_but_stays_live() -> None:
    stop = asyncio.Event()
    web_app = create_web_app(_bolt(), "secret", stopping=stop.is_set)
    async with TestClient(TestServer(web_app)) as client:
        assert (await client.get("/readyz")).status == 200
        stop.set()
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/healthz")).status == 200
