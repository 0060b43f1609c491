"""The ops dashboard: sessions, runs and interruptions as an operator thinks of them (Slack
threads), served by the bot on its own listener together with the bot's `/metrics`.

`create_dashboard` builds the aiohttp app; `bot/__main__.py` serves it on `DASHBOARD_HOST` /
`DASHBOARD_PORT`, never on the public Slack endpoint.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.dashboard import api, auth, origins, pages
from bot.dashboard.data import DashboardData
from bot.dashboard.views import Links
from bot.names import SlackNames
from bot.restate_sql import RestateSql
from common.settings import BotSettings

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@web.middleware
async def _headers(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
    """Security headers on every answer, refusals included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


async def _metrics(_request: web.Request) -> web.Response:
    """The bot's Prometheus metrics (behind the token when one is set)."""
    body = generate_latest(metrics.REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_dashboard(
    settings: BotSettings,
    http: aiohttp.ClientSession,
    slack_workspace_url: str | None = None,
    slack: AsyncWebClient | None = None,
) -> web.Application:
    """The dashboard app. `http` is the bot's shared session; `slack_workspace_url` (from
    `auth.test`) makes thread links; `slack`, the bot's rate-limited Web API client, names the
    people and channels (without it they show as their ids)."""
    token = settings.dashboard_token.get_secret_value() if settings.dashboard_token else None
    token_auth = auth.TokenAuth(token)
    app = web.Application(
        middlewares=[
            _headers,
            origins.middleware(origins.Origins.from_settings(settings), token_auth.enabled),
            auth.middleware(token_auth),
            api.restate_unavailable,
        ],
        client_max_size=64 * 1024,
    )
    links = Links(slack_workspace_url=slack_workspace_url, restate_ui_url=settings.restate_ui_url)
    sql = RestateSql(http, str(settings.restate_admin_url))
    names = SlackNames(slack)
    app[api.DATA_KEY] = DashboardData(http, sql, str(settings.restate_ingress_url), links, names)
    app[api.SIGN_IN_KEY] = token_auth.enabled
    app[pages.AUTH_KEY] = token_auth

    async def close_names(_app: web.Application) -> None:
        await names.close()

    app.on_cleanup.append(close_names)
    api.add_routes(app)
    pages.add_routes(app)
    app.router.add_get("/metrics", _metrics)
    return app
