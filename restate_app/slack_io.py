"""Posts into Slack threads through one shared `AsyncWebClient`, errors classified for retry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from restate_app.errors import classify_slack_error

log = structlog.get_logger(__name__)

# Slack truncates `text` beyond 40 000 characters; stay well inside a readable message.
MAX_MESSAGE_CHARS = 3500


def split_for_slack(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Split a long answer into Slack-sized parts, preferring paragraph and line breaks."""
    parts: list[str] = []
    rest = text.strip() or "(empty answer)"
    while len(rest) > limit:
        cut = rest.rfind("\n\n", 0, limit)
        if cut < limit // 2:
            cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = rest.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    parts.append(rest)
    return parts


class SlackPoster:
    """The Web API calls a task makes, each raising a retry-classified error on failure."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        started = time.monotonic()
        try:
            response = await self._client.api_call(method, json=kwargs)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            classified = classify_slack_error(exc, method)
            log.warning("slack_call_failed", method=method, error=str(classified))
            raise classified from exc
        log.debug("slack_call", method=method, seconds=round(time.monotonic() - started, 4))
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def post(self, channel: str, thread_ts: str, text: str) -> str:
        """Post a reply into a thread; returns its ts."""
        data = await self._call("chat.postMessage", channel=channel, thread_ts=thread_ts, text=text)
        return str(data["ts"])

    async def update(self, channel: str, ts: str, text: str) -> None:
        await self._call("chat.update", channel=channel, ts=ts, text=text)

    async def interrupted(
        self, channel: str, thread_ts: str, status_ts: str, partial: str, notice: str
    ) -> str:
        """Post the interruption notice and mark the status message; returns the notice's ts."""
        marked = (partial.strip()[:MAX_MESSAGE_CHARS] or "…") + "\n\n_(interrupted)_"
        notice_ts, _ = await asyncio.gather(
            self.post(channel, thread_ts, notice), self._mark(channel, status_ts, marked)
        )
        return notice_ts

    async def _mark(self, channel: str, ts: str, text: str) -> None:
        try:
            await self.update(channel, ts, text)
        except Exception as exc:  # marking the old message is cosmetic; the notice is what counts
            log.info("mark_interrupted_failed", error=str(exc))

    async def finish(self, channel: str, thread_ts: str, status_ts: str, text: str) -> None:
        """Turn the status message into the answer, with follow-ups when it is too long."""
        first, *more = split_for_slack(text)
        await self.update(channel, status_ts, first)
        for part in more:
            await self.post(channel, thread_ts, part)
