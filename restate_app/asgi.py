"""The ASGI front of restate_app: Restate's app plus a few plain HTTP routes (health, metrics)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class PlainResponse:
    status: int
    body: bytes
    content_type: str = "application/json"


Route = Callable[[], Awaitable[PlainResponse]]


def compose(restate_app: ASGIApp, routes: Mapping[str, Route]) -> ASGIApp:
    """Serve `routes` on GET, everything else by the Restate app; answer lifespan quietly."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        route = routes.get(scope.get("path", "")) if scope.get("method") == "GET" else None
        if route is None:
            await restate_app(scope, receive, send)
            return
        response = await route()
        headers = [(b"content-type", response.content_type.encode())]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    return asgi


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
