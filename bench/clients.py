"""Async clients the benchmarks drive the stack with: signed Slack events straight to the bot,
the offline model's and the sandbox workspace's control APIs, and Restate's ingress and admin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

JSON = dict[str, Any]

TEAM = "T0SANDBOX"
BOT_USER = "U0BOT"
USER = "U0ALICE"
SLACK_TIMEOUT = 3.0


def thread_key(channel: str, thread_ts: str) -> str:
    return f"{TEAM}:{channel}:{thread_ts}"


def bench_channels(count: int) -> list[tuple[str, str]]:
    """Extra sandbox channels (id, name): the product paces Slack posts per channel, as Slack
    limits them, so sessions are spread over channels the way a real workspace spreads them."""
    return [(f"CB{i:05d}", f"bench-{i}") for i in range(count)]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Ack:
    """The bot's answer to one event: HTTP status, when it was sent and how long it took."""

    status: int
    sent_at: float
    seconds: float


@dataclass(frozen=True, eq=False)
class Posted:
    """A person's message stored in the sandbox workspace, with the events Slack would send.

    Compared (and hashed) by identity: one value per stored message."""

    channel: str
    ts: str
    events: list[JSON]

    @property
    def key(self) -> str:
        return thread_key(self.channel, self.ts)


class SlackEvents:
    """Has the sandbox workspace store people's messages, and posts their Events API
    envelopes, signed, straight to the bot: the driver, not the sandbox, decides when."""

    def __init__(self, session: aiohttp.ClientSession, urls: dict[str, str], secret: str) -> None:
        self._session = session
        self._url = urls["bot_events"]
        self._workspace = urls["workspace"]
        self._secret = secret

    async def _store(self, channel: str, text: str, thread_ts: str | None) -> Posted:
        body = {"channel": channel, "user": USER, "text": text, "deliver": False}
        if thread_ts is not None:
            body["thread_ts"] = thread_ts
        url = f"{self._workspace}/_sandbox/messages"
        async with self._session.post(url, json=body) as resp:
            resp.raise_for_status()
            data = await resp.json()
        return Posted(channel=channel, ts=str(data["ts"]), events=list(data["events"]))

    async def mention(self, channel: str, text: str) -> Posted:
        """A new mention in a channel: an `app_mention` event and its `message` twin."""
        return await self._store(channel, f"<@{BOT_USER}> {text}", None)

    async def reply(self, root: Posted, text: str) -> Posted:
        """A person's reply in `root`'s thread, without a mention: one `message` event."""
        return await self._store(root.channel, text, root.ts)

    async def send(self, envelope: JSON, retry_num: int = 0) -> Ack:
        """POST one event as Slack would (a retry carries Slack's retry headers)."""
        body = json.dumps(envelope, separators=(",", ":")).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(self._secret, stamp, body),
        }
        if retry_num:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "timeout"}
        sent_at, started = time.time(), time.perf_counter()
        try:
            # Slack gives up on an event after 3 s and retries it later.
            timeout = aiohttp.ClientTimeout(total=SLACK_TIMEOUT)
            async with self._session.post(
                self._url, data=body, headers=headers, timeout=timeout
            ) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        return Ack(status=status, sent_at=sent_at, seconds=time.perf_counter() - started)


class Control:
    """The offline model's `/_model/*`, the workspace's `/_sandbox/*` and Restate's APIs."""

    def __init__(self, session: aiohttp.ClientSession, urls: dict[str, str]) -> None:
        self._http = session
        self._model = urls["model"].removesuffix("/v1")
        self._workspace = urls["workspace"]
        self._ingress = urls["ingress"]
        self._admin = urls["admin"]

    async def _json(self, method: str, url: str, **kw: Any) -> Any:
        async with self._http.request(method, url, **kw) as resp:
            if resp.status >= 400:
                detail = (await resp.text())[:500]
                raise RuntimeError(f"{method} {url} answered {resp.status}: {detail}")
            return await resp.json(content_type=None)

    async def echo_to(self, bot_events_url: str) -> None:
        """Have the workspace echo the bot's own posts to it as events, as Slack does."""
        url = f"{self._workspace}/_sandbox/config"
        await self._json("POST", url, json={"bot_url": bot_events_url})

    async def pace(self, chunk_delay: float, min_chunks: int = 0) -> None:
        body = {"chunk_delay": chunk_delay, "min_chunks": min_chunks}
        await self._json("POST", f"{self._model}/_model/pace", json=body)

    async def script(self, *responses: JSON) -> None:
        await self._json("POST", f"{self._model}/_model/script", json={"responses": responses})

    async def clear_script(self) -> None:
        await self._json("DELETE", f"{self._model}/_model/script")

    async def model_requests(self, since: float = 0.0) -> list[JSON]:
        url = f"{self._model}/_model/requests"
        return list((await self._json("GET", url, params={"since": repr(since)}))["requests"])

    async def slack_calls(self, method: str) -> list[JSON]:
        url = f"{self._workspace}/_sandbox/calls"
        return list((await self._json("GET", url, params={"method": method}))["calls"])

    async def thread(self, channel: str, thread_ts: str) -> list[JSON]:
        """The messages of a thread as the workspace holds them now."""
        url = f"{self._workspace}/_sandbox/messages"
        params = {"channel": channel, "thread_ts": thread_ts}
        return list((await self._json("GET", url, params=params))["messages"])

    async def slack_limits(self) -> JSON:
        """The workspace's rate-limit counters: 429s answered, calls inside a Retry-After."""
        return dict(await self._json("GET", f"{self._workspace}/_sandbox/limits"))

    async def set_slack_limits(self, enabled: bool) -> JSON:
        url = f"{self._workspace}/_sandbox/limits"
        return dict(await self._json("POST", url, json={"enabled": enabled}))

    async def agent(self, thread: str, handler: str) -> JSON:
        """Call a shared handler of `CodingAgent` (status, history) for a thread key."""
        key = quote(thread, safe="")
        url = f"{self._ingress}/CodingAgent/{key}/{handler}"
        # No input: Restate refuses the content type aiohttp would add to an empty POST.
        return dict(await self._json("POST", url, skip_auto_headers=["Content-Type"]))

    async def ingress_send(self, service: str, key: str, handler: str, body: JSON) -> None:
        """A one-way send through the ingress, as the bot does."""
        url = f"{self._ingress}/{service}/{quote(key, safe='')}/{handler}/send"
        await self._json("POST", url, json=body)

    async def sql(self, query: str) -> list[JSON]:
        headers = {"Accept": "application/json"}
        url = f"{self._admin}/query"
        data = await self._json("POST", url, json={"query": query}, headers=headers)
        return list(data["rows"])
