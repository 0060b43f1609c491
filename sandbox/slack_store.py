"""The sandbox workspace's state on disk, so it survives a restart together with Restate's.

`make run` keeps Restate's data under `.run/`; without this file the workspace would come back
empty while Restate still holds the sessions of its threads. Users, channels, messages (with
their reactions and shared files) and uploaded files are written as one JSON document,
atomically (a temporary file renamed over the old one) and debounced (at most one write per
`delay` while changes keep coming, and a last one at shutdown).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import structlog

from sandbox.slack_state import Channel, Message, SlackFile, User, WorkspaceState

JSON = dict[str, Any]

log = structlog.get_logger("sandbox.slack_store")

VERSION = 1
# Page events that change what is stored (others, like rate-limit counts, do not).
STATE_EVENTS = frozenset(
    {
        "message_posted",
        "message_updated",
        "message_deleted",
        "reaction_added",
        "reaction_removed",
        "reset",
    }
)


def dump_state(state: WorkspaceState) -> JSON:
    """The stored part of `state` as JSON (file bytes base64-encoded)."""
    files = []
    for file in state.files.values():
        item = asdict(file)
        item["data"] = base64.b64encode(file.data).decode() if file.data is not None else None
        files.append(item)
    return {
        "version": VERSION,
        "team_id": state.team_id,
        "last_ts_us": state.last_ts_us,
        "users": [asdict(u) for u in state.users.values()],
        "channels": [asdict(c) for c in state.channels.values()],
        "messages": [asdict(m) for m in state.messages.values()],
        "files": files,
    }


def load_state(state: WorkspaceState, data: JSON) -> None:
    """Restore what `dump_state` wrote into a fresh `state`.

    Users and channels configured for this start win over stored ones with the same id (a
    renamed channel or a new purpose takes effect); stored ones no longer configured are kept,
    so their messages stay reachable."""
    if data.get("version") != VERSION or data.get("team_id") != state.team_id:
        raise ValueError("written by another version or for another team")
    for raw in data["users"]:
        state.users.setdefault(raw["id"], User(**raw))
    for raw in data["channels"]:
        state.channels.setdefault(raw["id"], Channel(**raw))
    for raw in data["messages"]:
        state.add(Message(**raw))
    for raw in data["files"]:
        encoded = raw.pop("data")
        shares = [(channel, ts) for channel, ts in raw.pop("shares")]
        data_bytes = base64.b64decode(encoded) if encoded is not None else None
        state.files[raw["id"]] = SlackFile(**raw, data=data_bytes, shares=shares)
    state.last_ts_us = max(state.last_ts_us, int(data["last_ts_us"]))


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash leaves either the old or the new document."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class StateFile:
    """Keeps `state` in `path`: `load` at start, `changed` on every change, `close` at the end."""

    def __init__(self, path: Path, state: WorkspaceState, delay: float = 1.0) -> None:
        self.path = path
        self.state = state
        self.delay = delay
        self._dirty = False
        self._flush_now = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def load(self) -> bool:
        """Restore the stored state, if any; an unreadable file is set aside, not lost.

        Without one the fresh state is written at once: the file's presence tells a later
        start (and `make run`) that this workspace's threads are kept."""
        if self._read():
            log.info("slack_state_loaded", messages=len(self.state.messages), path=str(self.path))
            return True
        write_atomically(self.path, json.dumps(dump_state(self.state)))
        return False

    def _read(self) -> bool:
        if not self.path.exists():
            return False
        try:
            load_state(self.state, json.loads(self.path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + ".unreadable")
            os.replace(self.path, aside)
            log.warning("slack_state_unreadable", path=str(aside), error=str(exc))
            return False
        return True

    def changed(self, kind: str = "") -> None:
        """Note a change (a page event's `kind`); it is written within `delay` seconds."""
        if kind and kind not in STATE_EVENTS:
            return
        self._dirty = True
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    async def _write_soon(self) -> None:
        # Waiting first gathers a burst of changes (a streamed answer) into one write.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush_now.wait(), self.delay)
        while self._dirty:
            self._dirty = False
            text = json.dumps(dump_state(self.state))
            await asyncio.to_thread(write_atomically, self.path, text)

    async def close(self) -> None:
        """Write what is pending now (the writer is never cancelled mid-write)."""
        self._flush_now.set()
        if self._writer is not None:
            await self._writer
        if self._dirty:
            self._dirty = False
            write_atomically(self.path, json.dumps(dump_state(self.state)))
