"""Which requests the dashboard answers. On loopback only those addressed to a loopback name
or the configured public host: any other Host header means a page whose DNS name was re-pointed
at this machine (DNS rebinding). And a state change (sign-in, Stop, Reset) only when one of the
dashboard's own pages sent it: the Origin header (else Sec-Fetch-Site, else Referer) must be an
origin the dashboard is served at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.dashboard.auth import Handler, is_loopback
from common.settings import BotSettings

log = structlog.get_logger(__name__)

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A Host header: a DNS name or IPv4 address, or an IPv6 address in brackets; then a port.
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::[0-9]{1,5})?", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_name(host: str) -> str | None:
    """The name in a Host header: lower case, without port or brackets; None if malformed."""
    match = _HOST.fullmatch(host)
    return match[1].strip("[]").lower() if match else None


def origin_of(url: str) -> str | None:
    """A URL's origin as a browser's Origin header spells it: `scheme://host[:port]`, the
    default port left out; None for anything else (`null`, a bad port, no host)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = port is not None and port != _DEFAULT_PORTS[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if shown else "")


@dataclass(frozen=True)
class Origins:
    """The names and the origins of one dashboard.

    `names` is None off loopback: the dashboard is then reached under addresses it cannot know
    (pod IPs, DNS names), and the token, mandatory there, guards it.
    """

    names: frozenset[str] | None
    public: str | None

    @classmethod
    def from_settings(cls, settings: BotSettings) -> Origins:
        url = str(settings.dashboard_public_url) if settings.dashboard_public_url else None
        public = origin_of(url) if url else None
        if not is_loopback(settings.dashboard_host):
            return cls(None, public)
        names = set(LOOPBACK_NAMES) | {settings.dashboard_host.strip("[]").lower()}
        if url and (public_host := urlsplit(url).hostname):
            names.add(public_host)
        return cls(frozenset(names), public)

    def answers(self, host: str | None) -> bool:
        """Whether a request with this Host header is meant for this dashboard."""
        if self.names is None:
            return True
        name = host_name(host) if host is not None else None
        return name in self.names

    def expected(self, scheme: str, host: str) -> frozenset[str]:
        """Origins a state change may come from: the public URL's (a TLS proxy speaks plain
        HTTP to the dashboard, so the request's own scheme is not the browser's), and the
        request's own, when no public URL is set or it was sent to a loopback name."""
        own = origin_of(f"{scheme}://{host}")
        allowed = {self.public} if self.public else set()
        if own is not None and (self.public is None or host_name(host) in LOOPBACK_NAMES):
            allowed.add(own)
        return frozenset(allowed)

    def from_own_page(self, request: web.Request) -> bool:
        """Whether one of the dashboard's own pages sent this request."""
        allowed = self.expected(request.scheme, request.host)
        origin = request.headers.get("Origin")
        if origin is not None:
            return origin_of(origin) in allowed
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None:
            return site == "same-origin"
        referer = request.headers.get("Referer")
        return referer is not None and origin_of(referer) in allowed


def middleware(origins: Origins, bearer_tokens: bool) -> Middleware:
    """421 for a Host the dashboard does not answer to, 403 for a state change from elsewhere.

    With `bearer_tokens` a request carrying `Authorization: Bearer` needs no origin: browsers
    never add that header by themselves, so it is an API client, not a forged request.
    """

    def may_change_state(request: web.Request) -> bool:
        if bearer_tokens and request.headers.get("Authorization", "").startswith("Bearer "):
            return True
        return origins.from_own_page(request)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if not origins.answers(host):
            log.warning("dashboard_host_refused", host=(host or "")[:100], remote=request.remote)
            raise web.HTTPMisdirectedRequest(text="this dashboard does not answer to that name")
        if request.method not in SAFE_METHODS and not may_change_state(request):
            log.warning("dashboard_cross_origin_refused", path=request.path)
            raise web.HTTPForbidden(text="cross-origin request refused")
        return await handler(request)

    return check
