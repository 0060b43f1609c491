"""The sandbox workspace's runtime: state, records, live feed and delivery wired together.

Web API handlers, the control API and the page all act through one `Workspace`, so every
change is stored, published to the page and echoed to the bot the way Slack would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.slack_delivery import Deliverer
from sandbox.slack_limits import RateLimiter
from sandbox.slack_payloads import (
    app_mention_event,
    envelope,
    file_share_event,
    message_changed_event,
    message_deleted_event,
    message_event,
    new_client_msg_id,
)
from sandbox.slack_records import EventHub, FaultQueue, Records
from sandbox.slack_state import Channel, Message, WorkspaceState, rich_text_blocks
from sandbox.slack_store import StateFile

JSON = dict[str, Any]


@dataclass
class WorkspaceConfig:
    """Settings of one sandbox workspace; `bot_url` may be set later (control API)."""

    bot_token: str
    signing_secret: str
    bot_url: str | None = None
    team_id: str = "T0SANDBOX"
    bot_user_id: str = "U0BOT"
    bot_id: str = "B0BOT"
    app_id: str = "A0SANDBOX"
    retry_delays: tuple[float, ...] = (1.0, 5.0, 10.0)
    delivery_timeout: float = 3.0
    # Slack echoes the bot's own posts, edits and deletions as `message` events when the
    # app subscribes to message.* events; keep that on so the bot's filters are exercised.
    echo_bot_events: bool = True
    # Public channels beyond the defaults (#general, #queue-mode, #burst, #steer, #random), as
    # (id, name).
    channels: tuple[tuple[str, str], ...] = ()
    # Slack's published rate limits (HTTP 429 past them); the control API can switch them.
    slack_limits: bool = True
    # Where the workspace keeps its users, channels, messages and files across restarts
    # (None: in memory only).
    state_file: Path | None = None
    # Seed #general with a thread people started, for trying how the agent joins one
    # (sandbox/slack_seed.py): `make run` turns it on; a restored workspace is never seeded.
    seed_thread: bool = False


class Workspace:
    """One running sandbox workspace."""

    def __init__(
        self, config: WorkspaceConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.state = WorkspaceState(
            config.team_id, config.bot_user_id, config.bot_id, config.app_id, config.channels
        )
        self.records = Records()
        # Messages being streamed with chat.startStream, as (channel, ts), until stopped.
        self.streams: set[tuple[str, str]] = set()
        # Agent sessions by (channel, thread ts): their status and title.
        self.agent_sessions: dict[tuple[str, str], dict[str, str]] = {}
        self.faults = FaultQueue()
        self.limits = RateLimiter(config.slack_limits, clock)
        self.hub = EventHub()
        self.store: StateFile | None = None
        # Whether the state file brought back an earlier run's workspace.
        self.restored = False
        if config.state_file is not None:
            self.store = StateFile(config.state_file, self.state)
            self.restored = self.store.load()
            self.hub.listeners.append(self.store.changed)
        self.deliverer = Deliverer(
            config.signing_secret,
            lambda: self.config.bot_url,
            config.retry_delays,
            config.delivery_timeout,
            self.records.deliveries.append,
        )

    async def start(self) -> None:
        await self.deliverer.start()

    async def close(self) -> None:
        self.hub.close()
        await self.deliverer.close()
        if self.store is not None:
            await self.store.close()

    def reset(self) -> None:
        """Forget messages, files, records, faults and rate-limit buckets (users, channels and
        whether limits are enforced stay)."""
        self.state.messages.clear()
        self.state.files.clear()
        self.agent_sessions.clear()
        self.records.clear()
        self.faults.clear()
        self.limits.clear()
        self.hub.publish("reset", {})

    def limits_json(self) -> JSON:
        """Whether Slack's rate limits are enforced, and the 429s answered since the reset."""
        return {"enabled": self.limits.enabled, **self.records.rate_limited.as_json()}

    def set_limits(self, enabled: bool) -> None:
        self.limits.enabled = enabled
        self.hub.publish("rate_limits", self.limits_json())

    def count_rate_limited(self, method: str, during_retry_after: bool) -> None:
        self.records.rate_limited.count(method, during_retry_after)
        self.hub.publish("rate_limits", self.limits_json())

    def post_user_message(
        self, channel: Channel, user: str, text: str, thread_ts: str | None, **shared: list[JSON]
    ) -> tuple[Message, asyncio.Task[list[JSON]], list[str]]:
        """Store a human's message, publish it and deliver its events to the bot (`shared`:
        its `files` and `attachments`, as `store_user_message` takes them)."""
        files, attachments = shared.get("files"), shared.get("attachments")
        message, envelopes = self.store_user_message(
            channel, user, text, thread_ts, files, attachments
        )
        task = self.deliverer.deliver_events(envelopes)
        return message, task, [e["event_id"] for e in envelopes]

    def store_user_message(
        self,
        channel: Channel,
        user: str,
        text: str,
        thread_ts: str | None,
        files: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        ts: str | None = None,
    ) -> tuple[Message, list[JSON]]:
        """Store a human's message and publish it; returns it and the events Slack would send.
        `files` (already uploaded, in Slack's shape) make it a `file_share`; `attachments` are
        forwarded messages; `ts` (from `state.next_ts`) dates seeded history."""
        message = self.state.add(
            Message(
                channel=channel.id,
                ts=ts or self.state.next_ts(),
                text=text,
                user=user,
                thread_ts=self.state.thread_root_ts(channel.id, thread_ts) if thread_ts else None,
                blocks=rich_text_blocks(text) if text else None,
                client_msg_id=new_client_msg_id(),
                files=files or [],
                subtype="file_share" if files else None,
                attachments=attachments or [],
            )
        )
        self._record_shares(message)
        self._publish_posted(message)
        envelopes = []
        if not channel.is_im and f"<@{self.config.bot_user_id}>" in text:
            envelopes.append(envelope(self.state, app_mention_event(self.state, message)))
        envelopes.append(envelope(self.state, message_event(self.state, message, channel)))
        return message, envelopes

    def post_bot_message(
        self,
        channel: Channel,
        text: str,
        blocks: list[JSON] | None,
        thread_ts: str | None,
        files: list[JSON] | None = None,
    ) -> Message:
        """Store a bot post (with `files`, a file share), publish it and echo its event."""
        message = self.state.add(
            Message(
                channel=channel.id,
                ts=self.state.next_ts(),
                text=text,
                user=self.config.bot_user_id,
                bot_id=self.config.bot_id,
                thread_ts=self.state.thread_root_ts(channel.id, thread_ts) if thread_ts else None,
                blocks=blocks,
                files=files or [],
            )
        )
        self._record_shares(message)
        self._publish_posted(message)
        build = file_share_event if files else message_event
        self._echo(build(self.state, message, channel))
        return message

    def update_message(
        self, channel: Channel, message: Message, text: str | None, blocks: list[JSON] | None
    ) -> None:
        before = self.state.render(message)
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks
        message.edited += 1
        message.edited_ts = self.state.next_ts()
        self.hub.publish("message_updated", {"message": self.state.render_for_page(message)})
        self._echo(message_changed_event(self.state, channel, before, message))

    def delete_message(self, channel: Channel, message: Message) -> None:
        before = self.state.render(message)
        self.state.remove(channel.id, message.ts)
        self.hub.publish(
            "message_deleted",
            {"channel": channel.id, "ts": message.ts, "thread_ts": message.thread_ts},
        )
        self._echo(message_deleted_event(self.state, channel, before))

    def set_reaction(self, message: Message, name: str, user: str, add: bool) -> str | None:
        """Add or remove a reaction; returns a Slack error code or None."""
        users = message.reactions.get(name, [])
        if add:
            if user in users:
                return "already_reacted"
            message.reactions[name] = [*users, user]
        else:
            if user not in users:
                return "no_reaction"
            users.remove(user)
            if not users:
                del message.reactions[name]
        kind = "reaction_added" if add else "reaction_removed"
        self.hub.publish(kind, {"message": self.state.render_for_page(message), "reaction": name})
        return None

    def add_ephemeral(self, channel: str, user: str, payload: JSON, thread_ts: str | None) -> str:
        ts = self.state.next_ts()
        if thread_ts:
            thread_ts = self.state.thread_root_ts(channel, thread_ts)
        # Slack shows an ephemeral in a thread only when the thread already has replies;
        # otherwise it shows in the channel, beside the message it answers.
        in_thread = bool(thread_ts) and bool(self.state.replies(channel, thread_ts or ""))
        item = {"channel": channel, "user": user, "ts": ts, "thread_ts": thread_ts, **payload}
        item["in_thread"] = in_thread
        self.records.ephemerals.append(item)
        self.hub.publish("ephemeral_posted", {"ephemeral": item})
        return ts

    def _record_shares(self, message: Message) -> None:
        """Note that the files a message carries are now shared where it was posted, by its
        author (files.info's `channels`, `ims` and `shares`), whoever uploaded them."""
        for shared in message.files:
            file = self.state.files.get(str(shared.get("id")))
            if file is not None:
                file.shares.append((message.channel, message.ts))

    def _publish_posted(self, message: Message) -> None:
        self.hub.publish("message_posted", {"message": self.state.render_for_page(message)})
        if message.is_reply and message.thread_ts:
            root = self.state.get(message.channel, message.thread_ts)
            if root is not None:
                self.hub.publish("message_updated", {"message": self.state.render_for_page(root)})

    def _echo(self, event: JSON) -> None:
        if self.config.echo_bot_events:
            self.deliverer.deliver_events([envelope(self.state, event)])


WORKSPACE_KEY = web.AppKey("workspace", Workspace)
