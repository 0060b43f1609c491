"""What the durable handlers need at run time: the shared clients and the operator's settings.

Built once at start-up (`install`), read by the handlers (`deps()`): the handlers are declared
at module level, as Restate's SDK examples do, so their dependencies cannot be arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from common.settings import AppSettings
from restate_app.model_io import ModelClient
from restate_app.session import Limits
from restate_app.shipping import GitHubConfig
from restate_app.slack_io import SlackPoster
from restate_app.tools.approval_patterns import ApprovalRules
from restate_app.tools.instructions import DEFAULT_MAX_BYTES
from restate_app.tools.sandbox import SandboxConfig
from restate_app.tools.workspace import Workspaces


@dataclass(frozen=True)
class Reactions:
    """Emoji names for the triggering message, by task state, and for a steering message
    (empty to skip one)."""

    received: str
    working: str
    done: str
    stopped: str
    cancelled: str
    failed: str
    # On a steering message the run took in (the `steer` policy).
    steered: str = ""

    @classmethod
    def from_settings(cls, settings: AppSettings) -> Reactions:
        return cls(
            received=settings.reaction_received,
            working=settings.reaction_working,
            done=settings.reaction_done,
            stopped=settings.reaction_stopped,
            cancelled=settings.reaction_cancelled,
            failed=settings.reaction_failed,
            steered=settings.reaction_steered,
        )

    @property
    def in_progress(self) -> str:
        """The reaction a run's end takes away: working's, if on. The received one stays (it
        says the message was seen): every reaction call counts against Slack's tight limits
        on reactions (`reactions.remove`: 20 a minute per workspace)."""
        return self.working

    def for_outcome(self, outcome: str) -> str:
        return {
            "completed": self.done,
            "stopped": self.stopped,
            "cancelled": self.cancelled,
            "failed": self.failed,
        }.get(outcome, "")


@dataclass(frozen=True)
class Repos:
    """Which repository a session works on: `repo=NAME` in its first mention, else its
    channel's (`CHANNEL_REPOS`), else `AGENT_REPO`."""

    default: str | None
    named: dict[str, str]
    by_channel: dict[str, str]

    def resolve(self, name: str | None, channel: str) -> str | None:
        if name:
            return self.named.get(name)
        chosen = self.by_channel.get(channel)
        return self.named.get(chosen) if chosen else self.default

    def label(self, repo: str) -> str:
        """A short name for `repo` to show people: its name in `AGENT_REPOS`, else the last
        part of its path (never the whole URL, which may carry a token)."""
        name = next((k for k, v in sorted(self.named.items()) if v == repo), None)
        return name or re.split(r"[/:]", repo.rstrip("/"))[-1].removesuffix(".git") or "repo"


@dataclass(frozen=True)
class Models:
    """Which model a session's runs call: `model=NAME` in its first mention (one of
    `AGENT_MODELS`), else `OPENAI_MODEL`."""

    # Empty: the model client's own.
    default: str = ""
    named: dict[str, str] = field(default_factory=dict)

    def resolve(self, name: str | None) -> str | None:
        """The model's id; None for a name that is not configured."""
        return self.named.get(name) if name else self.default


@dataclass(frozen=True)
class Deps:
    slack: SlackPoster
    model: ModelClient
    workspaces: Workspaces
    sandbox: SandboxConfig
    repos: Repos
    reactions: Reactions
    limits: Limits = field(default_factory=Limits)
    model_max_attempts: int = 4
    slack_max_attempts: int = 4
    cleanup_seconds: float = 10.0
    # Answer with Slack's chat.startStream/appendStream/stopStream instead of message updates.
    streaming: bool = False
    models: Models = field(default_factory=Models)
    # Each `AGENTS.md` shown to the model is cut to this; 0: none is read.
    instructions_max_bytes: int = DEFAULT_MAX_BYTES
    # Where a thread's pull request is opened (no token: its branch is only pushed).
    github: GitHubConfig = field(default_factory=GitHubConfig)
    # Commands that wait for a person's approval, and how long a request waits for one.
    approval_rules: ApprovalRules = field(default_factory=lambda: ApprovalRules.from_setting(None))
    approval_timeout_seconds: float = 3600.0


_installed: list[Deps] = []


def install(value: Deps) -> None:
    """Make `value` what every handler of this process uses."""
    _installed[:] = [value]


def deps() -> Deps:
    if not _installed:
        raise RuntimeError("restate_app.deps.install() was not called at start-up")
    return _installed[0]
