"""Signed HTTP delivery from the sandbox workspace to the bot, with Slack's retry behaviour.

Requests are signed per Slack's v0 scheme; failed Events API deliveries (non-2xx or no answer
within the timeout) are retried with `X-Slack-Retry-Num` / `X-Slack-Retry-Reason` headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

JSON = dict[str, Any]

log = structlog.get_logger("sandbox.slack_delivery")

MAX_BODY_IN_RECORD = 2000


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature: hex HMAC-SHA256 over "v0:{timestamp}:{body}"."""
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


@dataclass
class HttpResult:
    """Outcome of one POST to the bot; `outcome` is "ok" or a Slack retry reason."""

    status: int | None
    body: str
    outcome: str
    elapsed: float
    no_retry: bool = False


class Deliverer:
    """Posts signed requests to the bot URL and runs Slack-style retries in the background."""

    def __init__(
        self,
        signing_secret: str,
        bot_url: Callable[[], str | None],
        retry_delays: tuple[float, ...],
        timeout: float,
        record: Callable[[JSON], None],
    ) -> None:
        self._secret = signing_secret
        self._bot_url = bot_url
        self._retry_delays = retry_delays
        self._timeout = timeout
        self._record = record
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run a coroutine in the background, kept alive until it finishes or we close."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def deliver_events(self, envelopes: list[JSON]) -> asyncio.Task[list[JSON]]:
        """Deliver envelopes in order (first attempts in sequence); retries run concurrently."""
        return self.spawn(self._deliver_in_order(envelopes))

    async def _deliver_in_order(self, envelopes: list[JSON]) -> list[JSON]:
        first_attempts = []
        for env in envelopes:
            body = json.dumps(env, separators=(",", ":")).encode()
            attempt = await self._attempt(env, body, retry_num=0, reason=None)
            first_attempts.append(attempt)
            if attempt["outcome"] not in ("ok", "no_bot_url") and not attempt["no_retry"]:
                self.spawn(self._retry(env, body, attempt["outcome"]))
        return first_attempts

    async def _retry(self, env: JSON, body: bytes, reason: str) -> None:
        for retry_num, delay in enumerate(self._retry_delays, start=1):
            await asyncio.sleep(delay)
            attempt = await self._attempt(env, body, retry_num=retry_num, reason=reason)
            if attempt["outcome"] in ("ok", "no_bot_url") or attempt["no_retry"]:
                return
            reason = attempt["outcome"]

    async def _attempt(self, env: JSON, body: bytes, retry_num: int, reason: str | None) -> JSON:
        headers = {}
        if retry_num:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": str(reason)}
        result = await self.post(body, "application/json", headers)
        attempt: JSON = {
            "event_id": env.get("event_id"),
            "event_type": (env.get("event") or {}).get("type"),
            "event_subtype": (env.get("event") or {}).get("subtype"),
            "retry_num": retry_num,
            "retry_reason": reason,
            "status": result.status,
            "outcome": result.outcome,
            "no_retry": result.no_retry,
            "elapsed": round(result.elapsed, 4),
            "started_at": time.time() - result.elapsed,
            "response_body": result.body[:MAX_BODY_IN_RECORD],
        }
        self._record(attempt)
        log.info(
            "event_delivery",
            event_id=attempt["event_id"],
            event_type=attempt["event_type"],
            retry_num=retry_num,
            status=result.status,
            outcome=result.outcome,
        )
        return attempt

    async def post(
        self,
        body: bytes,
        content_type: str,
        extra_headers: Mapping[str, str] | None = None,
        *,
        signed: bool = True,
        timestamp: int | None = None,
    ) -> HttpResult:
        """POST `body` to the bot, signed with a fresh (or the given) timestamp."""
        url = self._bot_url()
        if not url:
            return HttpResult(None, "", "no_bot_url", 0.0)
        headers = {"Content-Type": content_type}
        if signed:
            ts = str(int(time.time()) if timestamp is None else timestamp)
            headers["X-Slack-Request-Timestamp"] = ts
            headers["X-Slack-Signature"] = sign(self._secret, ts, body)
        headers.update(extra_headers or {})
        return await self._send(url, body, headers)

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
        assert self._session is not None, "Deliverer.start() was not awaited"
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                text = await resp.text(errors="replace")
                outcome = "ok" if 200 <= resp.status < 300 else "http_error"
                no_retry = resp.headers.get("X-Slack-No-Retry") == "1"
                return HttpResult(resp.status, text, outcome, time.monotonic() - started, no_retry)
        except TimeoutError:
            return HttpResult(None, "", "http_timeout", time.monotonic() - started)
        except aiohttp.ClientError as exc:
            log.info("event_delivery_failed", error=type(exc).__name__)
            return HttpResult(None, "", "connection_failed", time.monotonic() - started)
