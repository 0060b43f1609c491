"""The dashboard's JSON API: overview, sessions, one session, and the operator's actions."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from bot import metrics
from bot.dashboard import queries
from bot.dashboard.auth import OPERATOR, Handler
from bot.dashboard.data import DashboardData
from bot.restate_sql import RestateError
from common.contract import parse_thread_key

log = structlog.get_logger(__name__)

DATA_KEY: web.AppKey[DashboardData] = web.AppKey("dashboard_data", DashboardData)
SIGN_IN_KEY: web.AppKey[bool] = web.AppKey("dashboard_sign_in", bool)
NO_STORE = {"Cache-Control": "no-store"}


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers=NO_STORE)


def _key(request: web.Request) -> str:
    """The thread key in the path, checked so it can go into a query as a literal."""
    key = request.match_info["key"]
    try:
        parts = parse_thread_key(key)
    except ValueError:
        raise web.HTTPNotFound(text="no such session") from None
    if not all(queries.valid_id(p) for p in parts):
        raise web.HTTPNotFound(text="no such session")
    return key


async def overview(request: web.Request) -> web.Response:
    data = request.app[DATA_KEY]
    return _json(await data.overview(request.query.get("window", "auto")))


async def sessions(request: web.Request) -> web.Response:
    data = request.app[DATA_KEY]
    return _json(await data.sessions(queries.SessionFilter.parse(dict(request.query))))


async def session(request: web.Request) -> web.Response:
    found = await request.app[DATA_KEY].session(_key(request))
    return _json(found) if found is not None else _json({"error": "not_found"}, 404)


async def me(request: web.Request) -> web.Response:
    """Who is asking, and whether there is a sign-in at all (without a token there is none,
    so nothing to sign out of)."""
    return _json({"operator": request[OPERATOR], "sign_in": request.app[SIGN_IN_KEY]})


async def _confirmed(request: web.Request) -> dict[str, Any]:
    """The action's body; without `"confirm": true` it is refused, so nothing acts by accident."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send JSON")
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="malformed JSON") from None
    if not isinstance(body, dict) or body.get("confirm") is not True:
        raise web.HTTPBadRequest(text='confirmation required: send {"confirm": true}')
    return body


async def stop(request: web.Request) -> web.Response:
    key, body = _key(request), await _confirmed(request)
    reason = str(body.get("reason") or "stopped from the dashboard")[:200]
    return await _act(request, "stop", key, lambda d, op: d.stop(key, op, reason))


async def reset(request: web.Request) -> web.Response:
    key = _key(request)
    await _confirmed(request)
    return await _act(request, "reset", key, lambda d, op: d.reset(key, op))


async def _act(request: web.Request, action: str, key: str, call: Any) -> web.Response:
    """Run an operator action and record who did it, whatever the result."""
    operator = str(request[OPERATOR])
    try:
        result = await call(request.app[DATA_KEY], operator)
    except RestateError as exc:
        metrics.dashboard_action(action, ok=False)
        log.warning(
            "dashboard_action_failed", action=action, session=key, operator=operator, error=str(exc)
        )
        return _json({"error": "Restate did not take the action; see the bot's log."}, 502)
    metrics.dashboard_action(action, ok=True)
    log.info(
        "dashboard_action",
        action=action,
        session=key,
        operator=operator,
        remote=request.remote,
        result=result,
    )
    return _json({"ok": True, "result": result})


@web.middleware
async def restate_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 503 with a short message when Restate cannot be queried; the log has the detail."""
    try:
        response: web.StreamResponse = await handler(request)
    except RestateError as exc:
        log.warning("dashboard_query_failed", path=request.path, error=str(exc))
        return _json({"error": "Restate is not answering; retrying shortly."}, 503)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/overview", overview)
    app.router.add_get("/api/sessions", sessions)
    app.router.add_get("/api/sessions/{key}", session)
    app.router.add_post("/api/sessions/{key}/stop", stop)
    app.router.add_post("/api/sessions/{key}/reset", reset)
    app.router.add_get("/api/me", me)
