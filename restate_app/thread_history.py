"""The thread so far, for a session that starts in a thread already under way: when the agent
is first mentioned in a reply, it reads the messages before that reply once
(`conversations.replies`, paginated, bounded, through the rate limiter) and they join the first
turn, marked as earlier context, as a person called into a thread would read it first.

Slack limits this method to 50 calls a minute (Tier 3), and for commercially distributed apps
not in the Slack Marketplace to 1 call a minute and 15 messages a call: pages are small and
few, and a thread that cannot be read (a limit, a missing scope) starts without its history.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import structlog
from pydantic import BaseModel, model_validator
from slack_sdk.errors import SlackApiError

from common.contract import FileRef, IncomingMessage
from common.slack_files import MAX_FILES, file_refs, shared_files
from common.slack_limiter import Lane, LimitedWebClient, lane

log = structlog.get_logger(__name__)

PAGE_SIZE = 15
MAX_PAGES = 7
MAX_MESSAGES = 100
MAX_CHARS = 16_000
MAX_MESSAGE_CHARS = 2_000
READ_SECONDS = 10.0


class Earlier(BaseModel):
    """The thread so far: its messages as text, and the text-like files they shared (for the
    session's workspace, like the files of its own turns)."""

    text: str = ""
    files: list[FileRef] = []

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        # A step journaled before files were read returned the text alone.
        return {"text": data} if isinstance(data, str) else data


def joins_thread(msg: IncomingMessage, turns: int) -> bool:
    """Is this message a mention that starts a session in a thread already under way?"""
    return turns == 0 and msg.thread_ts != msg.ts and (msg.mentions_bot or msg.is_dm)


async def read_earlier(client: LimitedWebClient, msg: IncomingMessage) -> Earlier:
    """The thread's messages before `msg`, as lines for the model, and their files; empty
    when there are none or the thread cannot be read."""
    try:
        async with asyncio.timeout(READ_SECONDS):
            messages = await _replies(client, msg.channel_id, msg.thread_ts, msg.ts)
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        log.warning("thread_history_unavailable", error=type(exc).__name__)
        return Earlier()
    return Earlier(text=earlier_text(messages), files=earlier_files(messages))


def earlier_files(messages: list[dict[str, Any]]) -> list[FileRef]:
    """The text-like files the messages shared, each once, the latest `MAX_FILES`."""
    files = {f.id: f for m in _oldest_first(messages) for f in file_refs(m)}
    return list(files.values())[-MAX_FILES:]


async def _replies(
    client: LimitedWebClient, channel: str, thread_ts: str, before_ts: str
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(MAX_PAGES):
        with lane(Lane.URGENT):
            response = await client.conversations_replies(
                channel=channel,
                ts=thread_ts,
                latest=before_ts,
                inclusive=False,
                limit=PAGE_SIZE,
                cursor=cursor or None,
            )
        page = response.get("messages")
        found += [m for m in page if isinstance(m, dict)] if isinstance(page, list) else []
        metadata = response.get("response_metadata")
        cursor = metadata.get("next_cursor", "") if isinstance(metadata, dict) else ""
        if not cursor or not response.get("has_more") or len(found) >= MAX_MESSAGES:
            break
    return found


def _who(message: dict[str, Any]) -> str:
    profile = message.get("user_profile")
    if isinstance(profile, dict):
        name = profile.get("display_name") or profile.get("real_name")
        if isinstance(name, str) and name:
            return name
    if message.get("bot_id"):
        return str(message.get("username") or "an app")
    return str(message.get("user") or "someone")


def _oldest_first(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(messages, key=lambda m: float(str(m.get("ts") or 0)))


def earlier_text(messages: list[dict[str, Any]]) -> str:
    """The messages, oldest first, one per paragraph, bounded (the oldest are dropped first,
    except the thread's root, which says what the thread is about)."""
    seen: set[str] = set()
    lines: list[str] = []
    for message in _oldest_first(messages):
        ts, text = str(message.get("ts") or ""), message.get("text")
        text = text.strip() if isinstance(text, str) else ""
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS] + " …[cut]"
        files = " ".join(f"[Attached file: {f.label()}]" for f in shared_files(message))
        said = f"{text} {files}".strip()
        if ts in seen or not said:
            continue
        seen.add(ts)
        lines.append(f"{_who(message)}: {said}")
    while len(lines) > 2 and sum(len(line) for line in lines) > MAX_CHARS:
        del lines[1]
    return "\n\n".join(lines)


def with_earlier(earlier: str, text: str) -> str:
    """The first turn: the thread so far, marked as such, then the message that called us."""
    if not earlier:
        return text
    return (
        "Earlier in this thread, before you were called in (context, not requests to you):\n\n"
        f"{earlier}\n\n"
        f"The message that called you in:\n\n{text}"
    )
