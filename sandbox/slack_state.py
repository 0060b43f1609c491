"""In-memory state of the sandbox Slack workspace: users, channels, messages, reactions, files.

Messages are rendered in the JSON shapes Slack's Web API and Events API use, so every
other sandbox module (Web API, event delivery, control API, page) shares one view.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

JSON = dict[str, Any]

MENTION_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
CHANNEL_ID_RE = re.compile(r"[CG][A-Z0-9]{2,20}")
CHANNEL_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,79}")


@dataclass(frozen=True)
class User:
    """A workspace member (human or the bot user)."""

    id: str
    name: str
    real_name: str
    is_bot: bool = False


@dataclass(frozen=True)
class Channel:
    """A public channel or a DM ("im") between one human and the bot."""

    id: str
    name: str
    is_im: bool = False
    im_user: str | None = None
    created: int = 1_700_000_000
    # What the channel is for, as Slack's `purpose.value` shows it (empty: none set).
    purpose: str = ""

    @property
    def channel_type(self) -> str:
        return "im" if self.is_im else "channel"


# Public channels every sandbox workspace has; alice and bob are members of all of them. Their
# purposes describe the policies `make run` gives them (sandbox/local_run.py, DEMO_POLICIES).
DEFAULT_CHANNELS: tuple[Channel, ...] = (
    Channel(
        "C0GENERAL",
        "general",
        purpose="Mention @agent with a task; a reply while it works interrupts and restarts it.",
    ),
    Channel(
        "C0QUEUE",
        "queue-mode",
        purpose="Queue policy: replies sent while the agent works wait, then run next in order.",
    ),
    Channel(
        "C0BURST",
        "burst",
        purpose="Debounce: replies less than 3 s apart start one run, not one run each.",
    ),
    Channel(
        "C0STEER",
        "steer",
        purpose="Steer policy: a reply joins the running task; start it with ! to interrupt.",
    ),
    Channel("C0OTHER", "random", purpose="Anything else; the agent answers here too."),
)
# Who set the default channels' purposes.
PURPOSE_CREATOR = "U0ALICE"


@dataclass
class Message:
    """One stored message; `thread_ts` is the root's ts for replies, None for roots."""

    channel: str
    ts: str
    text: str
    user: str
    bot_id: str | None = None
    thread_ts: str | None = None
    blocks: list[JSON] | None = None
    client_msg_id: str | None = None
    edited: int = 0
    edited_ts: str | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    # File objects as shared with this message (Slack's shape, rendered when it was shared).
    files: list[JSON] = field(default_factory=list)
    # A person's message sharing files is a `file_share`; forwarded messages are attachments.
    subtype: str | None = None
    attachments: list[JSON] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class SlackFile:
    """A file reserved by files.getUploadURLExternal; `data` is set once its bytes arrive."""

    id: str
    name: str
    title: str
    user: str
    length: int
    ticket: str
    # Origin the uploader reached the workspace at; the file's URLs are built on it.
    base_url: str
    created: int
    snippet_type: str | None = None
    alt_txt: str | None = None
    data: bytes | None = None
    filetype: str = ""
    pretty_type: str = ""
    mimetype: str = ""
    completed: bool = False
    # Where it was shared, as (channel id, message ts).
    shares: list[tuple[str, str]] = field(default_factory=list)


def parse_channel_spec(spec: str) -> tuple[str, str]:
    """Parse "C0DEPLOY=deploys" into (id, name); raise ValueError naming what is wrong."""
    channel_id, sep, name = spec.strip().partition("=")
    channel_id, name = channel_id.strip(), name.strip().removeprefix("#")
    if not sep or not CHANNEL_ID_RE.fullmatch(channel_id):
        raise ValueError(f"channel {spec!r}: expected ID=name with an ID like C0DEPLOY")
    if not CHANNEL_NAME_RE.fullmatch(name):
        raise ValueError(f"channel {spec!r}: names are lowercase letters, digits, '-' and '_'")
    return channel_id, name


def parse_channel_list(value: str) -> list[tuple[str, str]]:
    """Parse "C1=name1,C2=name2" (as in SANDBOX_CHANNELS); blanks are ignored."""
    return [parse_channel_spec(part) for part in value.split(",") if part.strip()]


def ts_key(ts: str) -> tuple[int, int]:
    """Sort key for Slack timestamps ("1732611111.000100")."""
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or "0")


def rich_text_blocks(text: str) -> list[JSON]:
    """The rich_text block Slack attaches to messages typed by a human."""
    elements: list[JSON] = []
    pos = 0
    for match in MENTION_RE.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos : match.start()]})
        elements.append({"type": "user", "user_id": match.group(1)})
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    section = {"type": "rich_text_section", "elements": elements}
    return [{"type": "rich_text", "block_id": secrets.token_hex(3), "elements": [section]}]


class WorkspaceState:
    """Users, channels and messages of one sandbox workspace."""

    def __init__(
        self,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        extra_channels: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.team_id = team_id
        # Set: the app is installed org-wide in this Enterprise Grid organisation, and Slack's
        # payloads say so (`authorizations`, `enterprise`, `is_enterprise_install`).
        self.enterprise_id: str | None = None
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.users: dict[str, User] = {
            "U0ALICE": User("U0ALICE", "alice", "Alice Example"),
            "U0BOB": User("U0BOB", "bob", "Bob Example"),
            bot_user_id: User(bot_user_id, "agent", "Coding Agent", is_bot=True),
        }
        self.channels: dict[str, Channel] = {c.id: c for c in DEFAULT_CHANNELS}
        for channel_id, name in extra_channels:
            # An extra channel reusing an id renames that channel rather than adding a twin.
            known = self.channels.get(channel_id)
            renamed = replace(known, name=name) if known else Channel(channel_id, name)
            self.channels[channel_id] = renamed
        self.channels["D0ALICE"] = Channel("D0ALICE", "", is_im=True, im_user="U0ALICE")
        self.messages: dict[tuple[str, str], Message] = {}
        self.files: dict[str, SlackFile] = {}
        # The newest ts handed out, in microseconds: a restored workspace goes on from it.
        self.last_ts_us = 0

    def next_ts(self, ago: float = 0.0) -> str:
        """A unique, strictly increasing Slack-style ts based on the wall clock (`ago` seconds
        back, for history seeded into a fresh workspace: never before a ts already handed out)."""
        now_us = int((time.time() - ago) * 1_000_000)
        self.last_ts_us = max(now_us, self.last_ts_us + 1)
        return f"{self.last_ts_us // 1_000_000}.{self.last_ts_us % 1_000_000:06d}"

    def resolve_channel(self, ref: str | None) -> Channel | None:
        """Find a channel by id, by name (with or without '#'), or by DM partner's user id."""
        if not ref:
            return None
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        for channel in self.channels.values():
            if (channel.name and channel.name == name) or channel.im_user == ref:
                return channel
        return None

    def is_member(self, channel: Channel, user_id: str) -> bool:
        if user_id == self.bot_user_id:
            return True
        return channel.im_user == user_id if channel.is_im else user_id in self.users

    def get(self, channel: str, ts: str | None) -> Message | None:
        return self.messages.get((channel, ts)) if ts else None

    def thread_root_ts(self, channel: str, ts: str) -> str:
        """The root ts of the thread a message belongs to (itself for a root)."""
        message = self.get(channel, ts)
        if message is not None and message.thread_ts:
            return message.thread_ts
        return ts

    def add(self, message: Message) -> Message:
        self.messages[(message.channel, message.ts)] = message
        return message

    def remove(self, channel: str, ts: str) -> Message | None:
        return self.messages.pop((channel, ts), None)

    def replies(self, channel: str, root_ts: str) -> list[Message]:
        found = [
            m
            for (ch, _), m in self.messages.items()
            if ch == channel and m.thread_ts == root_ts and m.ts != root_ts
        ]
        return sorted(found, key=lambda m: ts_key(m.ts))

    def thread(self, channel: str, root_ts: str) -> list[Message]:
        root = self.get(channel, root_ts)
        return ([root] if root else []) + self.replies(channel, root_ts)

    def top_level(self, channel: str) -> list[Message]:
        found = [m for (ch, _), m in self.messages.items() if ch == channel and not m.is_reply]
        return sorted(found, key=lambda m: ts_key(m.ts))

    def render(self, message: Message) -> JSON:
        """A message in the shape Slack returns from the Web API and sends in events."""
        out: JSON = {"type": "message", "text": message.text, "user": message.user}
        if message.subtype:
            out["subtype"] = message.subtype
        if message.bot_id:
            out["bot_id"] = message.bot_id
            out["app_id"] = self.app_id
        if message.client_msg_id:
            out["client_msg_id"] = message.client_msg_id
        out["ts"] = message.ts
        out["team"] = self.team_id
        if message.blocks is not None:
            out["blocks"] = message.blocks
        if message.files:
            out["files"] = message.files
            out["upload"] = False
            out["display_as_bot"] = False
        if message.attachments:
            out["attachments"] = message.attachments
        if message.edited_ts:
            out["edited"] = {"user": message.user, "ts": message.edited_ts}
        self._render_thread_fields(message, out)
        if message.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in message.reactions.items()
            ]
        return out

    def _render_thread_fields(self, message: Message, out: JSON) -> None:
        if message.is_reply and message.thread_ts:
            out["thread_ts"] = message.thread_ts
            root = self.get(message.channel, message.thread_ts)
            if root is not None:
                out["parent_user_id"] = root.user
            return
        replies = self.replies(message.channel, message.ts)
        if replies:
            users = list(dict.fromkeys(r.user for r in replies))
            out["thread_ts"] = message.ts
            out["reply_count"] = len(replies)
            out["reply_users_count"] = len(users)
            out["latest_reply"] = replies[-1].ts
            out["reply_users"] = users
            out["is_locked"] = False
            out["subscribed"] = False

    def render_for_page(self, message: Message) -> JSON:
        """The Slack shape plus sandbox bookkeeping; here `edited` is an edit count."""
        out = self.render(message)
        out["channel"] = message.channel
        out["edited"] = message.edited
        out["edited_ts"] = message.edited_ts
        out["reply_count"] = len(self.replies(message.channel, message.ts))
        out["is_reply"] = message.is_reply
        out["thread_ts"] = message.thread_ts if message.is_reply else message.ts
        out["user_name"] = self.users[message.user].name if message.user in self.users else None
        return out

    def channel_json(self, channel: Channel) -> JSON:
        """The channel object of conversations.info and conversations.list."""
        base: JSON = {"id": channel.id, "created": channel.created, "is_archived": False}
        if channel.is_im:
            return base | {
                "is_im": True,
                "is_channel": False,
                "is_group": False,
                "is_mpim": False,
                "is_private": True,
                "is_org_shared": False,
                "user": channel.im_user,
                "is_user_deleted": False,
                "context_team_id": self.team_id,
            }
        return base | {
            "name": channel.name,
            "name_normalized": channel.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": False,
            "is_general": channel.name == "general",
            "is_member": True,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "context_team_id": self.team_id,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": self._purpose_json(channel),
        }

    @staticmethod
    def _purpose_json(channel: Channel) -> JSON:
        """Slack's `purpose` object; an unset one is empty, as Slack sends it."""
        if not channel.purpose:
            return {"value": "", "creator": "", "last_set": 0}
        return {"value": channel.purpose, "creator": PURPOSE_CREATOR, "last_set": channel.created}

    def user_json(self, user: User) -> JSON:
        """users.info's user object."""
        first, _, last = user.real_name.partition(" ")
        profile = {
            "real_name": user.real_name,
            "display_name": user.name,
            "real_name_normalized": user.real_name,
            "display_name_normalized": user.name,
            "first_name": first,
            "last_name": last,
            "status_text": "",
            "status_emoji": "",
            "team": self.team_id,
        }
        out: JSON = {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": user.real_name,
            "tz": "UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }
        if user.is_bot:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = self.app_id
        return out
