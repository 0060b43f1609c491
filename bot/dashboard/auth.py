"""Access to the dashboard: an optional shared token, given once on a login form (which sets a
signed, secure, HTTP-only cookie naming the operator) or as a bearer header on the JSON API.

Without `DASHBOARD_TOKEN` everything is open, which is only allowed on a loopback address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from common.settings import SettingsError

log = structlog.get_logger(__name__)

COOKIE = "agent_dashboard"
COOKIE_MAX_AGE = 7 * 86_400
OPERATOR = "dashboard_operator"
PUBLIC_PATHS = frozenset({"/login", "/static/dashboard.css", "/favicon.ico"})
_NAME = re.compile(r"[^\w .@-]")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve an open dashboard beyond this machine."""
    if not token and not is_loopback(host):
        raise SettingsError(
            f"bot: DASHBOARD_HOST={host} is reachable from other machines, and the dashboard "
            "can stop and reset sessions: set DASHBOARD_TOKEN, or bind it to 127.0.0.1"
        )


def clean_operator(name: str) -> str:
    """An operator's name as it appears in the log: short, no control or markup characters."""
    return _NAME.sub("", name).strip()[:40] or "operator"


class TokenAuth:
    """Checks requests against the token; the cookie carries the operator's name, signed."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def token_ok(self, candidate: str) -> bool:
        return self._token is not None and hmac.compare_digest(candidate.encode(), self._token)

    def _sign(self, name: str) -> str:
        assert self._token is not None
        return hmac.new(self._token, f"dashboard-v1:{name}".encode(), hashlib.sha256).hexdigest()

    def cookie_for(self, operator: str) -> str:
        encoded = base64.urlsafe_b64encode(operator.encode()).decode().rstrip("=")
        return f"{encoded}.{self._sign(operator)}"

    def operator_from_cookie(self, value: str) -> str | None:
        encoded, _, signature = value.partition(".")
        try:
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return name if hmac.compare_digest(signature, self._sign(name)) else None

    def operator(self, request: web.Request) -> str | None:
        """Who is asking, when they may: the cookie's operator, or `api` for a bearer token."""
        if self._token is None:
            return "local"
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and self.token_ok(header.removeprefix("Bearer ").strip()):
            return clean_operator(request.headers.get("X-Operator", "api"))
        cookie = request.cookies.get(COOKIE)
        return self.operator_from_cookie(cookie) if cookie else None


def middleware(auth: TokenAuth) -> Middleware:
    """Let a request through only with the token; pages redirect to the login form."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        operator = auth.operator(request)
        if operator is None:
            if request.path.startswith("/api/") or request.path == "/metrics":
                return web.json_response(
                    {"error": "unauthorized"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="dashboard"'},
                )
            raise web.HTTPFound(f"/login?next={_safe_next(request.path_qs)}")
        request[OPERATOR] = operator
        return await handler(request)

    return check


def _safe_next(path: str) -> str:
    """Only same-site paths, so the login form cannot be used to send people elsewhere."""
    return quote(path if path.startswith("/") and not path.startswith("//") else "/", safe="")
