"""Health routes of restate_app, split so a probe can tell a broken replica from an absent Restate.

`/healthz` (liveness) and `/readyz` (readiness) answer from this process alone, at once.
`/readyz/restate` asks the admin API whether Restate lists this app's services (registered):
for operators and start-up scripts, never for a kubelet probe. Restate being away or the app
not registered is the same for every replica; a readiness probe that followed it would take all
of them out together, which blocks `kubectl drain` and changes nothing about where Restate sends
work (the Service lists not-ready pods anyway).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import structlog

from common.contract import AGENT_SERVICE, TASK_SERVICE
from restate_app.asgi import PlainResponse, Route

log = structlog.get_logger(__name__)

SERVICES = (AGENT_SERVICE, TASK_SERVICE)
# The longest `/readyz/restate` waits; a probe asking it needs a timeout above this.
RESTATE_CHECK_TIMEOUT = aiohttp.ClientTimeout(total=3, connect=2)


def _json(status: int, body: dict[str, Any]) -> PlainResponse:
    return PlainResponse(status, json.dumps(body).encode())


async def missing_services(admin_url: str) -> list[str]:
    """The services of this app the admin API does not list; raises when it is unreachable."""
    # A session per check: a stuck pool can never make a check lie.
    async with (
        aiohttp.ClientSession(timeout=RESTATE_CHECK_TIMEOUT) as session,
        session.get(admin_url.rstrip("/") + "/services") as resp,
    ):
        resp.raise_for_status()
        data = await resp.json()
    listed = {str(s.get("name")) for s in data.get("services", [])}
    return [name for name in SERVICES if name not in listed]


def health_routes(admin_url: str) -> dict[str, Route]:
    """`GET /healthz`, `/readyz` and `/readyz/restate`, for `compose(app, routes)`."""

    async def serving() -> PlainResponse:
        return _json(200, {"ok": True})

    async def restate() -> PlainResponse:
        try:
            missing = await missing_services(admin_url)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("restate_check_admin_unreachable", error=type(exc).__name__)
            return _json(503, {"ok": False, "reason": "restate admin API unreachable"})
        if missing:
            return _json(503, {"ok": False, "reason": "not registered", "missing": missing})
        return _json(200, {"ok": True, "services": list(SERVICES)})

    # A replica that serves HTTP takes invocations: nothing else of its own can be unready.
    return {"/healthz": serving, "/readyz": serving, "/readyz/restate": restate}
