"""Names for the Slack ids the bot shows (the dashboard) and hands on (the model reads people's
and channels' names, not ids): people (`users.info`, Tier 4) and channels
(`conversations.info`, Tier 3), asked through the bot's rate-limited Web API client.

Names are cosmetic, so they never cost the bot anything it must send: each lookup waits in the
limiter's background lane, a page waits for lookups a moment at most (the rest land in the
cache for its next refresh), and an id whose name is unknown is shown as the id. Names are
kept an hour, an id Slack will not name five minutes, one it could not name now (busy, away,
rate limited) 15 seconds, and at most `max_entries` of them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from common.slack_limiter import Lane, SlackBusy, lane

log = structlog.get_logger(__name__)

Kind = Literal["user", "channel"]
Key = tuple[Kind, str]
Names = dict[str, dict[str, str]]

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
CHANNEL_ID = re.compile(r"^[CDG][A-Z0-9]{2,30}$")


def user_name(user: dict[str, Any]) -> str | None:
    """What Slack shows for a person: the display name, else the full name, else the handle."""
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    for value in ((profile or {}).get("display_name"), user.get("real_name"), user.get("name")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def channel_name(channel: dict[str, Any]) -> str | None:
    """A conversation as Slack names it: `#name`, or what kind of direct message it is."""
    if channel.get("is_im"):
        return "direct message"
    if channel.get("is_mpim"):
        return "group direct message"
    name = channel.get("name")
    return f"#{name}" if isinstance(name, str) and name else None


@dataclass
class _Entry:
    name: str | None
    expires: float


class SlackNames:
    """A bounded cache of names with a time to live, filled by lookups shared between pages."""

    def __init__(
        self,
        client: AsyncWebClient | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        ttl: float = 3600.0,
        failure_ttl: float = 300.0,
        retry_ttl: float = 15.0,
        max_entries: int = 2000,
        max_pending: int = 100,
        wait: float = 1.5,
    ) -> None:
        self._client = client
        self._clock = clock
        self.ttl, self.failure_ttl, self.retry_ttl = ttl, failure_ttl, retry_ttl
        self.wait = wait
        self.max_entries, self.max_pending = max_entries, max_pending
        self._cache: OrderedDict[Key, _Entry] = OrderedDict()
        self._pending: dict[Key, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._cache)

    async def names(
        self,
        users: Iterable[str | None],
        channels: Iterable[str | None],
        wait: float | None = None,
    ) -> Names:
        """`{"users": {id: name}, "channels": {id: name}}` for the ids named within `wait`
        seconds (the cache's own by default); lookups still under way go on and fill the
        cache."""
        keys: list[Key] = [("user", u) for u in set(users) if u and USER_ID.match(u)]
        keys += [("channel", c) for c in set(channels) if c and CHANNEL_ID.match(c)]
        waiting = [task for key in keys if (task := self._lookup(key)) is not None]
        if waiting:
            await asyncio.wait(waiting, timeout=self.wait if wait is None else wait)
        found: Names = {"users": {}, "channels": {}}
        for kind, ident in keys:
            entry = self._fresh((kind, ident))
            if entry is not None and entry.name:
                found[f"{kind}s"][ident] = entry.name
        return found

    async def close(self) -> None:
        """Cancel the lookups under way (at shutdown)."""
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _fresh(self, key: Key) -> _Entry | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)  # the least recently shown go first
        return entry

    def _lookup(self, key: Key) -> asyncio.Task[None] | None:
        """The lookup of `key` under way, started if need be; None when it is known or no
        lookup can start (no client, or too many under way: the id shows as itself)."""
        if self._fresh(key) is not None:
            return None
        task = self._pending.get(key)
        if task is None and self._client is not None and len(self._pending) < self.max_pending:
            task = self._pending[key] = asyncio.create_task(self._fetch(self._client, key))
            task.add_done_callback(lambda done: self._finished(key, done))
        return task

    def _finished(self, key: Key, task: asyncio.Task[None]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("slack_name_lookup_failed", kind=key[0], id=key[1], exc_info=exc)

    async def _fetch(self, client: AsyncWebClient, key: Key) -> None:
        kind, ident = key
        try:
            with lane(Lane.BACKGROUND):
                if kind == "user":
                    name = user_name((await client.users_info(user=ident)).get("user") or {})
                else:
                    found = await client.conversations_info(channel=ident)
                    name = channel_name(found.get("channel") or {})
        except SlackApiError as exc:  # Slack said no (or not now, with a 429)
            error = exc.response.get("error")
            log.info("slack_name_unavailable", kind=kind, id=ident, error=error)
            busy = exc.response.status_code == 429
            self._store(key, None, self.retry_ttl if busy else self.failure_ttl)
            return
        except (SlackBusy, SlackClientError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # Slack busy or away: asked again soon, not by every page refresh meanwhile.
            log.info("slack_name_unavailable", kind=kind, id=ident, error=type(exc).__name__)
            self._store(key, None, self.retry_ttl)
            return
        self._store(key, name, self.ttl if name else self.failure_ttl)

    def _store(self, key: Key, name: str | None, ttl: float) -> None:
        self._cache[key] = _Entry(name, self._clock() + ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
