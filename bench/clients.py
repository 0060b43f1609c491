"""Async clients the benchmarks drive the stack with: signed Slack events straight to the bot,
the offline model's and the sandbox workspace's control APIs, and Restate's ingress and admin.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

JSON = dict[str, Any]

TEAM = "T0SANDBOX"
CHANNEL = "C0GENERAL"
BOT_USER = "U0BOT"
APP_ID = "A0SANDBOX"
USER = "U0ALICE"


def thread_key(thread_ts: str) -> str:
    return f"{TEAM}:{CHANNEL}:{thread_ts}"


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


class SlackEvents:
    """Builds Events API envelopes and posts them, signed, to the bot's events URL."""

    def __init__(self, session: aiohttp.ClientSession, events_url: str, secret: str) -> None:
        self._session = session
        self._url = events_url
        self._secret = secret
        self._ids = itertools.count(1)
        self._last_us = 0

    def new_ts(self) -> str:
        """A unique, increasing Slack message ts."""
        self._last_us = max(int(time.time() * 1e6), self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def _envelope(self, event: JSON) -> JSON:
        return {
            "token": "sandbox-verification-token",
            "team_id": TEAM,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"EvBENCH{next(self._ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }

    def mention(self, text: str, ts: str) -> list[JSON]:
        """A new mention in the channel: Slack sends an `app_mention` and a `message` twin."""
        base = {"user": USER, "text": f"<@{BOT_USER}> {text}", "ts": ts, "team": TEAM}
        base |= {"channel": CHANNEL, "event_ts": ts}
        return [
            self._envelope({"type": "app_mention", **base}),
            self._envelope({"type": "message", "channel_type": "channel", **base}),
        ]

    def reply(self, text: str, ts: str, thread_ts: str) -> JSON:
        """A person's reply in a thread (no mention): one `message` event."""
        event = {"type": "message", "channel_type": "channel", "user": USER, "text": text}
        event |= {"ts": ts, "thread_ts": thread_ts, "team": TEAM, "channel": CHANNEL}
        return self._envelope(event | {"event_ts": ts, "parent_user_id": USER})

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
            async with self._session.post(self._url, data=body, headers=headers) as resp:
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
            resp.raise_for_status()
            return await resp.json(content_type=None)

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

    async def agent(self, thread_ts: str, handler: str) -> JSON:
        """Call a shared handler of `CodingAgent` (status, history) for a thread."""
        key = quote(thread_key(thread_ts), safe="")
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
