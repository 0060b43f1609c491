"""The dashboard's pages: static HTML and JS (no build step), the login form, the vendored
charting library (Chart.js, installed from npm into node_modules by `make install`)."""

from __future__ import annotations

import html
from pathlib import Path

import structlog
from aiohttp import web

from bot.dashboard.auth import COOKIE, COOKIE_MAX_AGE, TokenAuth, clean_operator, safe_next
from bot.dashboard.throttle import TooManyAttempts, client_key

log = structlog.get_logger(__name__)

STATIC = Path(__file__).parent / "static"
ROOT = Path(__file__).resolve().parents[2]
CHART_JS = ROOT / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"
AUTH_KEY: web.AppKey[TokenAuth] = web.AppKey("dashboard_auth", TokenAuth)

LOGIN_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agent dashboard: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/dashboard.css"></head>
<body class="login"><main class="card login-card">
<h1>Agent dashboard</h1>
<p class="muted">Enter the dashboard token (<code>DASHBOARD_TOKEN</code>). Your name is recorded
in the log with every action you take.</p>
{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label>Your name <input name="operator" autocomplete="username" required maxlength="40"></label>
<label>Token <input name="token" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></main></body></html>
"""


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})


async def overview(_request: web.Request) -> web.FileResponse:
    return _page("overview.html")


async def sessions(_request: web.Request) -> web.FileResponse:
    return _page("sessions.html")


async def session(_request: web.Request) -> web.FileResponse:
    return _page("session.html")


async def chart_js(_request: web.Request) -> web.StreamResponse:
    if not CHART_JS.exists():
        raise web.HTTPNotFound(text="chart.js is not installed: run `make install`")
    return web.FileResponse(CHART_JS, headers={"Cache-Control": "max-age=86400"})


def _login_page(
    next_path: str, error: str = "", status: int = 200, retry_after: int | None = None
) -> web.Response:
    block = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = LOGIN_FORM.format(error=block, next=html.escape(next_path, quote=True))
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.Response(text=body, content_type="text/html", status=status, headers=headers)


async def login_form(request: web.Request) -> web.StreamResponse:
    if not request.app[AUTH_KEY].enabled:
        raise web.HTTPFound("/")
    return _login_page(safe_next(request.query.get("next", "/")))


async def login(request: web.Request) -> web.StreamResponse:
    """Check the token; on success set the signed operator cookie and go where they were going."""
    auth = request.app[AUTH_KEY]
    form = await request.post()
    next_path = safe_next(str(form.get("next", "/")))
    try:
        ok = auth.try_token(str(form.get("token", "")), client_key(request.remote))
    except TooManyAttempts as exc:
        log.warning("dashboard_login_throttled", remote=request.remote)
        wait = f"Too many wrong tokens: try again in {exc.retry_after} s."
        return _login_page(next_path, wait, status=429, retry_after=exc.retry_after)
    if not ok:
        log.warning("dashboard_login_refused", remote=request.remote)
        return _login_page(next_path, "That token is not right.", status=401)
    operator = clean_operator(str(form.get("operator", "")))
    log.info("dashboard_login", operator=operator, remote=request.remote)
    # The checked path itself, not a URL object's rendering of it.
    response = web.Response(status=303, headers={"Location": next_path})
    response.set_cookie(
        COOKIE,
        auth.cookie_for(operator),
        max_age=COOKIE_MAX_AGE,
        path="/",
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    return response


async def logout(_request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/login"})
    response.del_cookie(COOKIE, path="/")
    return response


async def favicon(_request: web.Request) -> web.Response:
    """No icon: answer browsers' automatic request without an error in their console."""
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/", overview)
    app.router.add_get("/sessions", sessions)
    app.router.add_get("/sessions/{key}", session)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/static/vendor/chart.umd.min.js", chart_js)
    app.router.add_static("/static/", STATIC, append_version=False)
