"""Health routes of restate_app: `/healthz` says the process serves HTTP, `/readyz` that
Restate knows it (the admin API lists both services), so probes can tell the two apart."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import structlog

from common.contract import AGENT_SERVICE, TASK_SERVICE
from restate_app.asgi import PlainResponse, Route

log = structlog.get_logger(__name__)

SERVICES = (AGENT_SERVICE, TASK_SERVICE)
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=3, connect=2)


def _json(status: int, body: dict[str, Any]) -> PlainResponse:
    return PlainResponse(status, json.dumps(body).encode())


async def missing_services(admin_url: str) -> list[str]:
    """The services of this app the admin API does not list; raises when it is unreachable."""
    # A session per probe (one every few seconds): a stuck pool can never make a probe lie.
    async with (
        aiohttp.ClientSession(timeout=PROBE_TIMEOUT) as session,
        session.get(admin_url.rstrip("/") + "/services") as resp,
    ):
        resp.raise_for_status()
        data = await resp.json()
    listed = {str(s.get("name")) for s in data.get("services", [])}
    return [name for name in SERVICES if name not in listed]


def health_routes(admin_url: str) -> dict[str, Route]:
    """`GET /healthz` and `GET /readyz`, for `compose(app, routes)`."""

    async def healthz() -> PlainResponse:
        return _json(200, {"ok": True})

    async def readyz() -> PlainResponse:
        try:
            missing = await missing_services(admin_url)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("readiness_admin_unreachable", error=type(exc).__name__)
            return _json(503, {"ok": False, "reason": "restate admin API unreachable"})
        if missing:
            return _json(503, {"ok": False, "reason": "not registered", "missing": missing})
        return _json(200, {"ok": True, "services": list(SERVICES)})

    return {"/healthz": healthz, "/readyz": readyz}
