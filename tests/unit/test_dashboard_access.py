"""Who the dashboard answers, over real HTTP to an in-process dashboard (no Restate needed):
Host names (DNS rebinding), origins of state-changing requests, the login's redirect target,
throttled wrong tokens and malformed cookies."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.dashboard import create_dashboard
from common.settings import BotSettings

TOKEN = "t" * 40
KEY = "T0SANDBOX%3AC0GENERAL%3A1700000000.000100"
RESET = f"/api/sessions/{KEY}/reset"


def _closed_port_url() -> str:
    """A URL nothing answers on, for the Restate the dashboard would query."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _settings(**overrides: Any) -> BotSettings:
    nowhere = _closed_port_url()
    values: dict[str, Any] = {
        "slack_bot_token": "xoxb-test",
        "restate_admin_url": nowhere,
        "restate_ingress_url": nowhere,
        # Given, so the environment the tests run in cannot change them.
        "dashboard_host": "127.0.0.1",
        "dashboard_token": None,
        "dashboard_public_url": None,
    }
    return BotSettings(**(values | overrides))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str


@dataclass
class Served:
    """A dashboard on 127.0.0.1:port; `call` sends raw requests with any headers."""

    port: int
    http: aiohttp.ClientSession

    @property
    def here(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def call(
        self, method: str, path: str, *, host: str | None = None, **kwargs: Any
    ) -> Answer:
        headers = dict(kwargs.pop("headers", {}))
        if host is not None:
            headers["Host"] = host
        async with self.http.request(
            method, self.here + path, headers=headers, allow_redirects=False, **kwargs
        ) as resp:
            return Answer(resp.status, dict(resp.headers), await resp.text())


@asynccontextmanager
async def serve(settings: BotSettings) -> AsyncIterator[Served]:
    async with aiohttp.ClientSession() as http:
        runner = web.AppRunner(create_dashboard(settings, http), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client:
                yield Served(port, client)
        finally:
            await runner.cleanup()


def _origin(served: Served) -> dict[str, str]:
    return {"Origin": served.here}


# ------------------------------------------------------------------------- DNS rebinding
async def test_an_open_dashboard_answers_only_to_loopback_host_names() -> None:
    """A page of evil.example whose name now resolves to 127.0.0.1 reaches the dashboard with
    `Host: evil.example`: it gets nothing, not even a GET, and cannot reset a session."""
    async with serve(_settings()) as served:
        evil = f"evil.example:{served.port}"
        for path in ("/api/sessions", "/api/me", "/", "/metrics"):
            assert (await served.call("GET", path, host=evil)).status == 421, path
        reset = await served.call(
            "POST",
            RESET,
            host=evil,
            json={"confirm": True},
            headers={"Origin": f"http://{evil}", "Sec-Fetch-Site": "same-origin"},
        )
        assert reset.status == 421
        assert reset.headers["X-Frame-Options"] == "DENY"
        for name in ("127.0.0.1", "localhost", "[::1]", "LOCALHOST"):
            for host in (name, f"{name}:{served.port}", f"{name}:8080"):
                me = await served.call("GET", "/api/me", host=host)
                assert me.status == 200, host
        for odd in ("127.0.0.1.evil.example", "evil@127.0.0.1", "localhost:x", "127.0.0.1:1:2"):
            assert (await served.call("GET", "/api/me", host=odd)).status == 421, odd


async def test_the_public_url_host_is_allowed_too() -> None:
    settings = _settings(dashboard_token=TOKEN, dashboard_public_url="https://ops.example.com")
    async with serve(settings) as served:
        ok = await served.call("GET", "/login", host="ops.example.com")
        assert ok.status == 200
        assert (await served.call("GET", "/login", host="evil.example")).status == 421


async def test_off_loopback_any_name_is_answered_and_the_token_guards_it() -> None:
    """Bound beyond loopback the dashboard is reached under names it cannot know (pod IPs)."""
    async with serve(_settings(dashboard_host="0.0.0.0", dashboard_token=TOKEN)) as served:
        assert (await served.call("GET", "/login", host="10.0.0.5:3001")).status == 200
        assert (await served.call("GET", "/api/me", host="10.0.0.5:3001")).status == 401


# --------------------------------------------------------------- origins of state changes
async def test_a_state_change_needs_this_dashboards_origin() -> None:
    async with serve(_settings()) as served:
        cross_site: list[dict[str, str]] = [
            {},
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Origin": f"https://127.0.0.1:{served.port}"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Referer": "http://evil.example/page"},
            {"Referer": f"http://127.0.0.1:{served.port}.evil.example/"},
        ]
        for headers in cross_site:
            resp = await served.call("POST", RESET, json={"confirm": True}, headers=headers)
            assert resp.status == 403, headers
        same_site: list[dict[str, str]] = [
            _origin(served),
            {"Sec-Fetch-Site": "same-origin"},
            {"Referer": f"{served.here}/sessions/x"},
        ]
        for headers in same_site:
            assert (await served.call("POST", "/logout", headers=headers)).status == 303, headers
        localhost = f"localhost:{served.port}"
        logout = await served.call(
            "POST", "/logout", host=localhost, headers={"Origin": f"http://{localhost}"}
        )
        assert logout.status == 303


async def test_behind_a_tls_proxy_the_public_url_is_the_expected_origin() -> None:
    """The proxy speaks plain HTTP to the dashboard: the request's own scheme is `http`."""
    settings = _settings(dashboard_token=TOKEN, dashboard_public_url="https://ops.example.com/")
    async with serve(settings) as served:
        form = {"token": TOKEN, "operator": "alice", "next": "/sessions"}

        async def login(origin: str) -> Answer:
            headers = {"Origin": origin}
            return await served.call(
                "POST", "/login", host="ops.example.com", data=form, headers=headers
            )

        signed_in = await login("https://ops.example.com")
        assert signed_in.status == 303
        assert signed_in.headers["Location"] == "/sessions"
        assert (await login("http://ops.example.com")).status == 403
        assert (await login("https://evil.example")).status == 403


async def test_a_bearer_token_client_needs_no_origin() -> None:
    """Browsers never add an Authorization header by themselves: API clients are not CSRF."""
    async with serve(_settings(dashboard_token=TOKEN)) as served:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        resp = await served.call("POST", RESET, json={}, headers=bearer)
        assert resp.status == 400  # past the origin check: refused for want of confirmation
        no_token = await served.call("POST", RESET, json={})
        assert no_token.status == 403


# -------------------------------------------------------------------- login and the token
@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example/phish",
        "/\n/evil.example",
        "/\r/evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "//evil.example",
        "///evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        " /evil",
        "evil.example",
    ],
)
async def test_signing_in_never_sends_the_browser_off_site(target: str) -> None:
    async with serve(_settings(dashboard_token=TOKEN)) as served:
        form = {"token": TOKEN, "operator": "alice", "next": target}
        resp = await served.call("POST", "/login", data=form, headers=_origin(served))
        assert resp.status == 303
        assert resp.headers["Location"] == "/"
        page = await served.call("GET", "/login", params={"next": target})
        assert 'name="next" value="/"' in page.text


async def test_signing_in_goes_back_to_the_page_asked_for() -> None:
    target = "/sessions?state=working&channel=C0GENERAL"
    async with serve(_settings(dashboard_token=TOKEN)) as served:
        first = await served.call("GET", target)
        assert first.status == 302
        login_page = await served.call("GET", first.headers["Location"])
        assert f'value="{target.replace("&", "&amp;")}"' in login_page.text
        form = {"token": TOKEN, "operator": "alice", "next": target}
        resp = await served.call("POST", "/login", data=form, headers=_origin(served))
        assert resp.headers["Location"] == target


async def test_wrong_tokens_are_throttled_per_client() -> None:
    """After a few wrong tokens a client waits (429, Retry-After), the right token included,
    so guessing costs time; the login form and the bearer header count alike."""
    async with serve(_settings(dashboard_token=TOKEN)) as served:

        async def login(token: str) -> Answer:
            form = {"token": token, "operator": "mallory"}
            return await served.call("POST", "/login", data=form, headers=_origin(served))

        statuses = [(await login(f"guess-{i}")).status for i in range(5)]
        assert statuses == [401] * 5
        throttled = await login("guess-5")
        assert throttled.status == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        assert "Too many wrong tokens" in throttled.text
        assert (await login(TOKEN)).status == 429
        bearer = await served.call("GET", "/api/me", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status == 429
        assert "Retry-After" in bearer.headers


async def test_a_cookie_with_a_non_ascii_signature_is_refused_not_an_error() -> None:
    async with serve(_settings(dashboard_token=TOKEN)) as served:
        for value in ("YWxpY2U.\u00e9t\u00e9", "YWxpY2U.1700000000.\u00e9t\u00e9"):
            cookie = {"Cookie": f"agent_dashboard={value}"}
            resp = await served.call("GET", "/api/me", headers=cookie)
            assert resp.status == 401, value


async def test_the_cookie_set_at_login_signs_in_for_at_most_twelve_hours() -> None:
    async with serve(_settings(dashboard_token=TOKEN)) as served:
        form = {"token": TOKEN, "operator": "alice"}
        resp = await served.call("POST", "/login", data=form, headers=_origin(served))
        cookie = resp.headers["Set-Cookie"]
        assert "Max-Age=43200" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        me = await served.call("GET", "/api/me", headers={"Cookie": f"agent_dashboard={value}"})
        assert me.status == 200


async def test_only_a_dashboard_with_a_token_has_a_sign_in_to_sign_out_of() -> None:
    async with serve(_settings()) as served:
        me = await served.call("GET", "/api/me")
        assert json.loads(me.text) == {"operator": "local", "sign_in": False}
    async with serve(_settings(dashboard_token=TOKEN)) as served:
        bearer = {"Authorization": f"Bearer {TOKEN}", "X-Operator": "alice"}
        me = await served.call("GET", "/api/me", headers=bearer)
        assert json.loads(me.text) == {"operator": "alice", "sign_in": True}
