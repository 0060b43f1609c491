"""Access to the dashboard: an optional shared token, given once on a login form (which sets a
signed, secure, HTTP-only cookie naming the operator, good for 12 hours) or as a bearer header
on the JSON API. Wrong tokens make their client wait longer and longer.

Without `DASHBOARD_TOKEN` everything is open, which is only allowed on a loopback address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.dashboard.throttle import Clock, LoginThrottle, TooManyAttempts, client_key
from common.settings import SettingsError

log = structlog.get_logger(__name__)

COOKIE = "agent_dashboard"
COOKIE_MAX_AGE = 12 * 3600
# A cookie "issued" later than now by more than this was not issued by a bot of this cluster.
COOKIE_CLOCK_SKEW = 60
# Off loopback the token is all that stands between the network and Stop/Reset.
MIN_TOKEN_LENGTH = 32
OPERATOR: web.RequestKey[str] = web.RequestKey("dashboard_operator", str)
PUBLIC_PATHS = frozenset({"/login", "/static/dashboard.css", "/favicon.ico"})
_NAME = re.compile(r"[^\w .@-]")
# `{base64url(operator)}.{issued, unix seconds}.{hex HMAC}`: ASCII only, so it compares as bytes.
_COOKIE_VALUE = re.compile(r"([A-Za-z0-9_-]{1,400})\.([0-9]{1,12})\.([0-9a-f]{64})")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None, public_url: str | None = None) -> None:
    """Refuse to serve an open, or weakly locked, dashboard beyond this machine: bound off
    loopback, or behind a proxy that publishes it (`DASHBOARD_PUBLIC_URL` elsewhere)."""
    public_host = urlsplit(public_url).hostname if public_url else None
    if not is_loopback(host):
        where, fix = f"DASHBOARD_HOST={host}", "or bind it to 127.0.0.1"
    elif public_host is not None and not is_loopback(public_host):
        where, fix = f"DASHBOARD_PUBLIC_URL={public_url}", "or unset DASHBOARD_PUBLIC_URL"
    else:
        return
    if not token:
        raise SettingsError(
            f"bot: {where} is reachable from other machines, and the dashboard "
            f"can stop and reset sessions: set DASHBOARD_TOKEN, {fix}"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise SettingsError(
            f"bot: {where} is reachable from other machines: DASHBOARD_TOKEN must be at least "
            f"{MIN_TOKEN_LENGTH} characters (e.g. `openssl rand -hex 32`)"
        )


def clean_operator(name: str) -> str:
    """An operator's name as it appears in the log: short, no control or markup characters."""
    return _NAME.sub("", name).strip()[:40] or "operator"


def safe_next(target: str) -> str:
    """Where to go after signing in: a path on this site, else the overview.

    Browsers drop tabs and newlines from a URL and read `\\` as `/`, so `/<tab>/evil.example`
    leaves the site: only printable ASCII without spaces or backslashes, then a path with no
    scheme and no host (`//...`).
    """
    plain = target.isascii() and target.isprintable() and not any(c in target for c in " \\")
    parts = urlsplit(target) if plain else None
    if parts is None or parts.scheme or parts.netloc or not target.startswith("/"):
        return "/"
    return "/" if target.startswith("//") else target


class TokenAuth:
    """Checks requests against the token; the cookie carries the operator's name and when it
    was issued, signed."""

    def __init__(
        self, token: str | None, clock: Clock = time.time, throttle: LoginThrottle | None = None
    ) -> None:
        self._token = token.encode() if token else None
        self._clock = clock
        self.throttle = throttle or LoginThrottle()

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def token_ok(self, candidate: str) -> bool:
        return self._token is not None and hmac.compare_digest(candidate.encode(), self._token)

    def try_token(self, candidate: str, client: str) -> bool:
        """`token_ok`, counted against `client`; raises `TooManyAttempts` while it must wait."""
        wait = self.throttle.wait(client)
        if wait > 0:
            raise TooManyAttempts(wait)
        if self.token_ok(candidate):
            self.throttle.succeeded(client)
            return True
        failures = self.throttle.failed(client)
        if failures >= self.throttle.free_failures:
            log.warning("dashboard_client_throttled", client=client, failures=failures)
        return False

    def _sign(self, name: str, issued: int) -> bytes:
        assert self._token is not None
        message = f"dashboard-v2:{issued}:{name}".encode()
        return hmac.new(self._token, message, hashlib.sha256).hexdigest().encode()

    def cookie_for(self, operator: str) -> str:
        encoded = base64.urlsafe_b64encode(operator.encode()).decode().rstrip("=")
        issued = int(self._clock())
        return f"{encoded}.{issued}.{self._sign(operator, issued).decode()}"

    def operator_from_cookie(self, value: str) -> str | None:
        """The operator a cookie names, if this token signed it less than 12 hours ago."""
        match = _COOKIE_VALUE.fullmatch(value)
        if match is None:
            return None
        encoded, issued = match[1], int(match[2])
        if not -COOKIE_CLOCK_SKEW <= self._clock() - issued <= COOKIE_MAX_AGE:
            return None
        try:
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return name if hmac.compare_digest(match[3].encode(), self._sign(name, issued)) else None

    def operator(self, request: web.Request) -> str | None:
        """Who is asking, when they may: the cookie's operator, or `api` for a bearer token."""
        if self._token is None:
            return "local"
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            candidate = header.removeprefix("Bearer ").strip()
            if self.try_token(candidate, client_key(request.remote)):
                return clean_operator(request.headers.get("X-Operator", "api"))
        cookie = request.cookies.get(COOKIE)
        return self.operator_from_cookie(cookie) if cookie else None


def middleware(auth: TokenAuth) -> Middleware:
    """Let a request through only with the token; pages redirect to the login form."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        try:
            operator = auth.operator(request)
        except TooManyAttempts as exc:
            return web.json_response(
                {"error": "too_many_attempts"},
                status=429,
                headers={"Retry-After": str(exc.retry_after)},
            )
        if operator is None:
            if request.path.startswith("/api/") or request.path == "/metrics":
                return web.json_response(
                    {"error": "unauthorized"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="dashboard"'},
                )
            raise web.HTTPFound(f"/login?next={quote(safe_next(request.path_qs), safe='')}")
        request[OPERATOR] = operator
        return await handler(request)

    return check
