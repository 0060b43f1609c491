"""Wrong dashboard tokens per client: a few are free, then each makes the client wait twice as
long before its next token is even checked, so guessing the token costs time."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


def client_key(remote: str | None) -> str:
    """Whom wrong tokens are counted against: the address, or an IPv6 client's /64 (one host
    usually has all of it)."""
    if remote is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class TooManyAttempts(Exception):
    """A client must wait before its next token is even checked."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"retry after {wait:.0f} s")
        self.retry_after = max(1, math.ceil(wait))


@dataclass
class _Failures:
    count: int
    last: float
    until: float


class LoginThrottle:
    """Wrong tokens per client: after `free_failures` of them the client waits `first_delay`
    before its next token is checked at all, and each further one doubles the wait (5 s, 10 s,
    ... at most 5 min). A right token clears the count. A client quiet for `window` is
    forgotten, and at most `max_clients` are remembered (the longest quiet go first)."""

    def __init__(
        self,
        clock: Clock = time.monotonic,
        *,
        free_failures: int = 5,
        first_delay: float = 5.0,
        max_delay: float = 300.0,
        window: float = 900.0,
        max_clients: int = 4096,
    ) -> None:
        self._clock = clock
        self.free_failures = free_failures
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.window = window
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def wait(self, client: str) -> float:
        """Seconds before `client` may try a token again (0: now)."""
        entry = self._current(client)
        return max(0.0, entry.until - self._clock()) if entry is not None else 0.0

    def failed(self, client: str) -> int:
        """Count a wrong token; the client's failures so far."""
        now = self._clock()
        entry = self._current(client) or _Failures(0, now, now)
        entry.count += 1
        entry.last = now
        extra = entry.count - self.free_failures
        if extra >= 0:
            entry.until = now + min(self.first_delay * 2 ** min(extra, 20), self.max_delay)
        self._clients[client] = entry
        self._clients.move_to_end(client)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return entry.count

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

    def _current(self, client: str) -> _Failures | None:
        entry = self._clients.get(client)
        if entry is not None and self._clock() - max(entry.last, entry.until) > self.window:
            del self._clients[client]
            return None
        return entry
