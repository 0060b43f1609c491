"""Sandbox Slack workspace: a local stand-in for Slack that speaks Slack's public protocols.

`create_workspace_app(config)` builds an aiohttp application serving the Web API under
`/api/`, the control API under `/_sandbox/`, and a small chat page at `/` (its scripts and
colour emoji font under `/static/`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from sandbox.slack_agent_sessions import register_agent_sessions
from sandbox.slack_api import register_api
from sandbox.slack_control import register_control
from sandbox.slack_emoji import emoji_names
from sandbox.slack_emoji_font import register_emoji_font
from sandbox.slack_interactive import register_interactive
from sandbox.workspace import WORKSPACE_KEY, Workspace, WorkspaceConfig

__all__ = ["WorkspaceConfig", "create_workspace_app"]

STATIC = Path(__file__).parent / "static"
SCRIPTS = frozenset({"workspace.js", "mrkdwn.js", "shares.js"})
# Only the page's own scripts run: message text is never parsed as HTML, and this makes sure
# that, should it ever be, nothing in it could run. Fonts come only from the page's own origin
# (its colour emoji font).
PAGE_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
NO_CACHE = {"Cache-Control": "no-cache"}


async def page(request: web.Request) -> web.FileResponse:
    headers = NO_CACHE | {"Content-Security-Policy": PAGE_CSP}
    return web.FileResponse(STATIC / "workspace.html", headers=headers)


async def script(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in SCRIPTS:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers=NO_CACHE)


async def emoji(request: web.Request) -> web.Response:
    """Slack's emoji short names and their characters, for the page to show `:name:` as Slack
    does."""
    names = await asyncio.to_thread(emoji_names)
    return web.json_response({"emoji": names}, headers={"Cache-Control": "max-age=3600"})


async def archive_link(request: web.Request) -> web.Response:
    """Open a Slack-style permalink (`/archives/{channel}/p{ts}`) on the page."""
    channel = request.match_info["channel"]
    packed = request.match_info["packed"].removeprefix("p")
    ts = f"{packed[:-6]}.{packed[-6:]}" if packed.isdigit() and len(packed) > 6 else ""
    thread = request.query.get("thread_ts") or ts
    raise web.HTTPFound(f"/#channel={channel}&thread={thread}")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    workspace = app[WORKSPACE_KEY]
    await workspace.start()
    yield
    await workspace.close()


async def _end_streams(app: web.Application) -> None:
    # Ends the page's event streams so shutdown does not wait for them.
    app[WORKSPACE_KEY].hub.close()


def create_workspace_app(
    config: WorkspaceConfig, clock: Callable[[], float] = time.monotonic
) -> web.Application:
    """Build the sandbox workspace application for `config`; `clock` times its rate limits."""
    app = web.Application()
    app[WORKSPACE_KEY] = Workspace(config, clock)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_end_streams)
    register_api(app)
    register_control(app)
    register_agent_sessions(app)
    register_interactive(app)
    app.router.add_get("/", page)
    register_emoji_font(app)
    app.router.add_get("/static/{name}", script)
    app.router.add_get("/_sandbox/emoji", emoji)
    app.router.add_get("/archives/{channel}/{packed}", archive_link)
    return app
