"""The HTTP/2 server Restate calls keeps its connections: runs multiplexed on one are never
broken because the connection served many requests before them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config

from common.runtime import bind_socket, restate_endpoint_config

# Past hypercorn's own default (`keep_alive_max_requests`, 1000).
MANY = 1100


async def _hold_one_stream_over_many_requests(config: Config, port: int) -> int:
    released = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/hold":
            await released.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(
            http1=False, http2=True, base_url=f"http://127.0.0.1:{port}"
        ) as client:
            held = asyncio.create_task(client.get("/hold"))
            for _ in range(MANY):
                assert (await client.get("/quick")).status_code == 200
            released.set()
            return (await held).status_code
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=10)


async def test_a_long_run_outlives_many_short_requests_on_its_connection() -> None:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    try:
        config = restate_endpoint_config(sock, graceful_timeout=1.0)
        assert await _hold_one_stream_over_many_requests(config, port) == 200
    finally:
        sock.detach()  # hypercorn served the listening socket by its fd, and closed it
