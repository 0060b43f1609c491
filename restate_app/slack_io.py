"""Posts into Slack threads through the process's one Slack client, errors classified for
retry. The client keeps every call inside Slack's rate limits (`common/slack_limiter.py`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import structlog
from restate.exceptions import TerminalError
from slack_sdk.errors import SlackApiError

from common.contract import SHIP_ACTION_ID, STOP_ACTION_ID
from common.slack_limiter import Lane, LimitedWebClient, SlackBusy, lane
from restate_app import metrics
from restate_app.errors import classify_slack_error
from restate_app.mrkdwn import defuse_tokens, to_mrkdwn

log = structlog.get_logger(__name__)

# What Slack answers agents.sessions.setStatus for an app not declared an agent (or without
# the scope): the process stops asking.
NOT_AN_AGENT = frozenset(
    {"not_allowed_token_type", "missing_scope", "unknown_method", "not_an_agent", "no_permission"}
)
# A section block holds at most 3000 characters; stay inside it with room for markup.
MAX_MESSAGE_CHARS = 2900
# Slack's error for a streaming call on a message that is not (or no longer) streaming.
NOT_STREAMING = "message_not_in_streaming_state"


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
    return _button("task_controls", STOP_ACTION_ID, "Stop", thread_key, "danger")


def ship_button(thread_key: str) -> dict[str, Any]:
    """Create PR, under an answer that changed files."""
    return _button("answer_controls", SHIP_ACTION_ID, "Create PR", thread_key, "primary")


def _button(block_id: str, action_id: str, label: str, value: str, style: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": block_id,
        "elements": [
            {
                "type": "button",
                "action_id": action_id,
                "text": {"type": "plain_text", "text": label, "emoji": True},
                "style": style,
                "value": value,
            }
        ],
    }


class SlackPoster:
    """The Web API calls a task makes, each raising a retry-classified error on failure.

    Every call takes its turn from the client's limiter (`common/slack_limiter.py`): the
    status message, answers and notices in the urgent lane, reactions in the background lane,
    progress only when a token is there to spare."""

    def __init__(self, client: LimitedWebClient) -> None:
        self._client = client
        self.limiter = client.limiter
        # Set off when Slack says this app is not declared an agent.
        self.agent_sessions = True

    @property
    def client(self) -> LimitedWebClient:
        """The process's one Slack client, for reads that are not posts."""
        return self._client

    async def _call(self, method: str, channel: str, **kwargs: Any) -> dict[str, Any]:
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

    async def permalink(self, channel: str, ts: str) -> str | None:
        """A link to a message (for a pull request's way back to its thread), or None."""
        try:
            with lane(Lane.URGENT):
                response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("permalink_unavailable", error=str(exc))
            return None
        link = response.get("permalink")
        return link if isinstance(link, str) and link.startswith(("https://", "http://")) else None

    async def post_status(
        self,
        channel: str,
        thread_ts: str,
        text: str,
        thread_key: str,
        on_send: asyncio.Event | None = None,
    ) -> str:
        """The task's status message, with its Stop button; `on_send` is set once the post
        has its turn and goes out (before that, cancelling it leaves nothing behind)."""
        with lane(Lane.URGENT, on_send):
            blocks = [section(text), stop_button(thread_key)]
            return await self.post(channel, thread_ts, text, blocks)

    async def show_progress(
        self, channel: str, ts: str, text: str, thread_key: str, markdown: bool = True
    ) -> bool:
        """Show the run so far, if a token is there to spare (progress is cosmetic: skipped,
        never queued, never retried)."""
        shown = (to_mrkdwn(text)[-MAX_MESSAGE_CHARS:] + " …") if markdown else text
        blocks = [section(shown), stop_button(thread_key)]
        try:
            with lane(Lane.PROGRESS):
                await self._client.api_call(
                    "chat.update",
                    json={"channel": channel, "ts": ts, "text": shown, "blocks": blocks},
                )
        except SlackBusy:
            return False
        except Exception as exc:  # never fails the task
            log.info("progress_update_failed", error=str(exc))
        return True

    async def react(
        self, channel: str, ts: str, add: str | None = None, remove: str | None = None
    ) -> None:
        """Swap the reaction on the triggering message, behind every other call; failures and
        calls dropped after waiting too long are logged, never raised."""
        for method, name in (("reactions.remove", remove), ("reactions.add", add)):
            if not name:
                continue
            try:
                with lane(Lane.BACKGROUND):
                    await self._client.api_call(
                        method, json={"channel": channel, "timestamp": ts, "name": name}
                    )
            except Exception as exc:
                log.info("reaction_failed", method=method, error=str(exc))

    async def session_status(
        self, channel: str, thread_ts: str, status: str, title: str = "", by: str | None = None
    ) -> None:
        """The thread's agent session (`processing` while a run works: Slack shows its own stop
        button then; `active` after), for an app declared an agent. Cosmetic: never raised,
        and given up for the process once Slack says the app is not one."""
        if not self.agent_sessions:
            return
        args: dict[str, Any] = {"channel_id": channel, "thread_ts": thread_ts, "status": status}
        if title:
            args["title"] = title[:200]
        if by:
            args["initiator_user_id"] = by
        try:
            with lane(Lane.BACKGROUND):
                await self._client.api_call("agents.sessions.setStatus", json=args)
        except Exception as exc:
            code = exc.response.get("error") if isinstance(exc, SlackApiError) else None
            if code in NOT_AN_AGENT:
                self.agent_sessions = False
                log.info("agent_sessions_off", error=code)
            else:
                log.info("agent_session_status_failed", error=str(exc))

    async def upload(
        self, channel: str, thread_ts: str, content: str, filename: str, title: str
    ) -> None:
        """Upload a text file into the thread (Slack's two-step external upload)."""
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
        """Start a streamed reply (Slack's agent streaming methods); returns its ts.

        Streamed Markdown is the model's text as it is written: its Slack tokens are defused
        here, on every streaming call, so none can ping anyone."""
        recipient = {"recipient_team_id": team, "recipient_user_id": user} if user else {}
        data = await self._call(
            "chat.startStream",
            channel,
            thread_ts=thread_ts,
            markdown_text=defuse_tokens(markdown),
            **recipient,
        )
        return str(data["ts"])

    async def append_stream(self, channel: str, ts: str, markdown: str) -> None:
        await self._call("chat.appendStream", channel, ts=ts, markdown_text=defuse_tokens(markdown))

    async def stop_stream(self, channel: str, ts: str, markdown: str = "") -> None:
        """Stop a stream, with its last text; one already stopped is left as it is (a step
        retried, or replayed after a crash, whose stop had gone out)."""
        extra = {"markdown_text": defuse_tokens(markdown)} if markdown else {}
        try:
            await self._call("chat.stopStream", channel, ts=ts, **extra)
        except TerminalError as err:
            if not err.message.endswith(NOT_STREAMING):
                raise
            log.info("stream_already_stopped", ts=ts)
