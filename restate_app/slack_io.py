"""Posts into Slack threads through one shared `AsyncWebClient`, errors classified for retry.

Calls are paced per channel (a token bucket) so a busy thread cannot exhaust Slack's per-channel
rate limit for the others, and a 429 is waited out for the `Retry-After` Slack asks for.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from common.contract import STOP_ACTION_ID
from restate_app import metrics
from restate_app.errors import classify_slack_error
from restate_app.mrkdwn import to_mrkdwn

log = structlog.get_logger(__name__)

# A section block holds at most 3000 characters; stay inside it with room for markup.
MAX_MESSAGE_CHARS = 2900


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


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000] or " "}}


def stop_button(thread_key: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "task_controls",
        "elements": [
            {
                "type": "button",
                "action_id": STOP_ACTION_ID,
                "text": {"type": "plain_text", "text": "Stop", "emoji": True},
                "style": "danger",
                "value": thread_key,
            }
        ],
    }


@dataclass
class _Bucket:
    tokens: float
    updated: float


class ChannelPacer:
    """A token bucket per channel: bursts pass at once, sustained traffic is spaced out."""

    def __init__(self, rate_per_second: float = 2.0, burst: int = 8) -> None:
        self._rate, self._burst = rate_per_second, float(burst)
        self._buckets: dict[str, _Bucket] = {}

    def _refill(self, channel: str) -> _Bucket:
        now = time.monotonic()
        bucket = self._buckets.setdefault(channel, _Bucket(self._burst, now))
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket

    def try_take(self, channel: str) -> bool:
        """Take a token if one is there now (for calls that may simply be skipped)."""
        bucket = self._refill(channel)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    async def take(self, channel: str) -> None:
        """Take a token, waiting for one if the channel is busy."""
        # A bucket refills at a known rate: sleeping until the next token is exact, not polling.
        while not self.try_take(channel):  # noqa: ASYNC110
            await asyncio.sleep((1 - self._buckets[channel].tokens) / self._rate)


class SlackPoster:
    """The Web API calls a task makes, each raising a retry-classified error on failure."""

    def __init__(self, client: AsyncWebClient, pacer: ChannelPacer | None = None) -> None:
        self._client = client
        self._pacer = pacer or ChannelPacer()

    async def _call(self, method: str, channel: str, **kwargs: Any) -> dict[str, Any]:
        await self._pacer.take(channel)
        started = time.monotonic()
        try:
            response = await self._client.api_call(method, json={"channel": channel, **kwargs})
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            metrics.slack_api_error(method, exc)
            classified = classify_slack_error(exc, method)
            log.warning("slack_call_failed", method=method, error=str(classified))
            raise classified from exc
        log.debug("slack_call", method=method, seconds=round(time.monotonic() - started, 4))
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def post(
        self, channel: str, thread_ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> str:
        """Post a reply into a thread; returns its ts."""
        extra = {"blocks": blocks} if blocks else {}
        data = await self._call(
            "chat.postMessage", channel, thread_ts=thread_ts, text=text, **extra
        )
        return str(data["ts"])

    async def update(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        await self._call("chat.update", channel, ts=ts, text=text, blocks=blocks or [section(text)])

    async def delete(self, channel: str, ts: str) -> None:
        await self._call("chat.delete", channel, ts=ts)

    async def post_status(self, channel: str, thread_ts: str, text: str, thread_key: str) -> str:
        """The task's status message, with its Stop button."""
        return await self.post(channel, thread_ts, text, [section(text), stop_button(thread_key)])

    async def show_progress(
        self, channel: str, ts: str, text: str, thread_key: str, markdown: bool = True
    ) -> bool:
        """Show the run so far, unless the channel is busy (progress is cosmetic)."""
        if not self._pacer.try_take(channel):
            return False
        shown = (to_mrkdwn(text)[-MAX_MESSAGE_CHARS:] + " …") if markdown else text
        blocks = [section(shown), stop_button(thread_key)]
        try:
            await self._client.api_call(
                "chat.update", json={"channel": channel, "ts": ts, "text": shown, "blocks": blocks}
            )
        except Exception as exc:  # never fails the task
            log.info("progress_update_failed", error=str(exc))
        return True

    async def react(
        self, channel: str, ts: str, add: str | None = None, remove: str | None = None
    ) -> None:
        """Swap the reaction on the triggering message; failures are logged, never raised."""
        for method, name in (("reactions.remove", remove), ("reactions.add", add)):
            if not name:
                continue
            try:
                await self._client.api_call(
                    method, json={"channel": channel, "timestamp": ts, "name": name}
                )
            except Exception as exc:
                log.info("reaction_failed", method=method, error=str(exc))

    async def upload(
        self, channel: str, thread_ts: str, content: str, filename: str, title: str
    ) -> None:
        """Upload a text file into the thread (Slack's two-step external upload)."""
        await self._pacer.take(channel)
        try:
            await self._client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=content,
                filename=filename,
                title=title,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            metrics.slack_api_error("files.upload", exc)
            classified = classify_slack_error(exc, "files_upload_v2")
            log.warning("slack_upload_failed", error=str(classified))
            raise classified from exc

    async def start_stream(
        self, channel: str, thread_ts: str, team: str, user: str | None, markdown: str
    ) -> str:
        """Start a streamed reply (Slack's agent streaming methods); returns its ts."""
        recipient = {"recipient_team_id": team, "recipient_user_id": user} if user else {}
        data = await self._call(
            "chat.startStream", channel, thread_ts=thread_ts, markdown_text=markdown, **recipient
        )
        return str(data["ts"])

    async def append_stream(self, channel: str, ts: str, markdown: str) -> None:
        await self._call("chat.appendStream", channel, ts=ts, markdown_text=markdown)

    async def stop_stream(self, channel: str, ts: str, markdown: str = "") -> None:
        extra = {"markdown_text": markdown} if markdown else {}
        await self._call("chat.stopStream", channel, ts=ts, **extra)
