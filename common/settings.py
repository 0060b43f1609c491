"""Typed settings for every process, read once from the environment and `.env`."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from common.contract import Policy


class SettingsError(RuntimeError):
    """Raised at start-up when the environment does not describe a runnable process."""


class _Base(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", frozen=True
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    # Reactions on the message that started a task, by the task's state (emoji names).
    reaction_received: str = "eyes"
    reaction_working: str = ""
    reaction_done: str = "white_check_mark"
    reaction_stopped: str = "octagonal_sign"
    reaction_cancelled: str = "leftwards_arrow_with_hook"
    reaction_failed: str = "x"
    # On a reply the running task took in under the `steer` policy.
    reaction_steered: str = "speech_balloon"

    @field_validator(
        "reaction_received",
        "reaction_working",
        "reaction_done",
        "reaction_stopped",
        "reaction_cancelled",
        "reaction_failed",
        "reaction_steered",
    )
    @classmethod
    def _none_skips(cls, value: str) -> str:
        """`none` turns a reaction off (an empty value keeps the default)."""
        return "" if value.strip().lower() == "none" else value.strip().strip(":")


S = TypeVar("S", bound=_Base)


def _with_slash(url: AnyHttpUrl) -> AnyHttpUrl:
    """slack_sdk joins method names onto the base URL: without a final slash it drops `/api`."""
    text = str(url)
    return url if text.endswith("/") else AnyHttpUrl(text + "/")


class BotSettings(_Base):
    """Settings of `python -m bot`, the Slack front door."""

    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")
    # The part of the bot's share of Slack's rate limits this process may use: 1/N replicas.
    slack_rate_share: float = Field(default=1.0, gt=0, le=1)
    restate_ingress_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8080")
    bot_host: str = "0.0.0.0"
    bot_port: int = Field(default=3000, ge=0, le=65535)
    ready_file: str | None = None

    # The ops dashboard (and the bot's /metrics), on its own listener, never the Slack one.
    restate_admin_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:9070")
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(default=3001, ge=0, le=65535)
    dashboard_token: SecretStr | None = None
    # Where operators open the dashboard when a proxy (TLS) stands in front of it: its host is
    # accepted besides loopback names, its origin is the one state changes must come from.
    dashboard_public_url: AnyHttpUrl | None = None
    dashboard_restate_ui_url: AnyHttpUrl | None = None

    # Who may start or steer sessions: comma-separated ids; empty channels or users: everyone,
    # empty teams: the installation's own (the author's team counts, not the event's).
    allowed_team_ids: str = ""
    allowed_channel_ids: str = ""
    allowed_user_ids: str = ""
    # Who may stop any session and answer any request for approval (everyone else: only the
    # thread's participants).
    admin_user_ids: str = ""
    # Interruption policy per channel: "C123=queue,C456=interrupt/2.5,C789=steer" (policy, then
    # debounce seconds).
    channel_policies: str = ""
    default_policy: Policy = "interrupt"
    default_debounce_seconds: float = Field(default=0.0, ge=0, le=60)
    # Runs one user, and one channel, may start or restart per hour, with a burst on top
    # (0 per hour: no limit); per bot process (`bot/run_rate.py`).
    runs_per_user_per_hour: float = Field(default=60.0, ge=0)
    runs_per_user_burst: int = Field(default=10, ge=1)
    runs_per_channel_per_hour: float = Field(default=200.0, ge=0)
    runs_per_channel_burst: int = Field(default=30, ge=1)

    _slack_api_url = field_validator("slack_api_url")(_with_slash)

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def restate_ui_url(self) -> str:
        """Where links to the Restate UI point: its own setting, else the admin API's `/ui`."""
        url = self.dashboard_restate_ui_url or f"{str(self.restate_admin_url).rstrip('/')}/ui"
        return str(url).rstrip("/")


class AppSettings(_Base):
    """Settings of `python -m restate_app`, the durable services."""

    slack_bot_token: SecretStr
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")
    openai_api_key: SecretStr
    _slack_api_url = field_validator("slack_api_url")(_with_slash)
    openai_base_url: AnyHttpUrl | None = None
    openai_model: str = "gpt-4o-mini"
    restate_admin_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:9070")
    restate_app_host: str = "127.0.0.1"
    restate_app_port: int = Field(default=9080, ge=0, le=65535)
    restate_app_advertised_url: AnyHttpUrl | None = None
    # Off where a separate job registers each release (compose, Kubernetes): a replica that
    # re-registered its URL on start would overwrite the version running tasks are pinned to.
    restate_app_register: bool = True
    restate_identity_keys: str = ""
    ready_file: str | None = None

    model_timeout_seconds: float = Field(default=60.0, gt=0)
    model_max_attempts: int = Field(default=4, ge=1)
    slack_max_attempts: int = Field(default=4, ge=1)
    # The part of the app's Slack rate limits this process may use: 1/N for N replicas.
    slack_rate_share: float = Field(default=1.0, gt=0, le=1)
    cleanup_wait_seconds: float = Field(default=10.0, gt=0)
    # Stream answers with Slack's chat.startStream/appendStream/stopStream (apps set up as
    # agents); off: the status message is updated about once a second instead.
    slack_streaming: bool = False
    # Bounds on a session's stored conversation; the oldest turns are dropped with a marker.
    history_max_turns: int = Field(default=200, ge=4)
    history_max_bytes: int = Field(default=256_000, ge=10_000)
    history_max_queued: int = Field(default=50, ge=1)
    model_max_tokens: int | None = Field(default=4096, ge=16)
    # Model streams this process keeps open at once (0: no limit), and how long a call waits
    # for a free one before its run fails with "the model is busy" (0: it does not wait).
    model_max_concurrency: int = Field(default=16, ge=0)
    model_queue_seconds: float = Field(default=120.0, ge=0, le=600)

    # The repository sessions work on: a git URL or a local path; per channel and per thread
    # (`repo=NAME` in the first mention) from the named ones.
    agent_repo: str | None = None
    agent_repos: str = ""
    channel_repos: str = ""
    workspaces_dir: str = ".run/workspaces"
    workspace_idle_days: float = Field(default=7.0, gt=0)
    workspace_max_count: int = Field(default=200, ge=1)
    workspace_max_bytes: int = Field(default=5_000_000_000, ge=10_000_000)
    workspace_max_patch_bytes: int = Field(default=1_000_000, ge=10_000)
    # Shipping a thread's work: its branch is pushed to the repository's own remote; with a
    # token, a draft pull request is opened through this GitHub REST API (GitHub Enterprise:
    # https://HOST/api/v3). Without one, only the branch is pushed.
    github_api_url: AnyHttpUrl = AnyHttpUrl("https://api.github.com")
    github_token: SecretStr | None = None
    # Commands run in bubblewrap; `none` (no sandbox at all) only when set explicitly.
    agent_sandbox: Literal["bubblewrap", "none"] = "bubblewrap"
    agent_command_network: Literal["off", "on"] = "off"
    agent_command_timeout_seconds: float = Field(default=600.0, gt=0, le=3600)
    # Commands that wait for a person's Approve in the thread first: unset, the built-in
    # patterns (network, package installs, pushes, deleting outside build outputs); `none`,
    # approvals off; else a JSON list of regular expressions (`net:` before one: approving
    # such a command runs it with the network on). `restate_app/tools/approval_patterns.py`.
    agent_approval_patterns: Annotated[list[str] | None, NoDecode] = None
    # Seconds a request for approval waits for an answer; none in time counts as a no.
    approval_timeout: float = Field(default=3600.0, gt=0, le=7 * 86_400)
    # Budgets: model calls and tokens per run, tokens per thread (0: no limit). Reaching one
    # pauses the run with a Continue button (one more budget) instead of failing it.
    agent_max_steps: int = Field(default=30, ge=0, le=10_000)
    run_max_tokens: int = Field(default=400_000, ge=0)
    session_max_tokens: int = Field(default=2_000_000, ge=0)
    # Models a thread may pick with `model=NAME` in its first mention: "fast=gpt-4o-mini,..."
    # (without one, it uses `openai_model`).
    agent_models: str = ""
    # Each `AGENTS.md` the model is shown (the workspace root's in the system prompt, one of a
    # directory the agent works in as a note) is cut to this many bytes; 0: none is read.
    agent_instructions_max_bytes: int = Field(default=16_000, ge=0, le=200_000)

    @field_validator("agent_approval_patterns", mode="before")
    @classmethod
    def _patterns(cls, value: object) -> object:
        """`none`/`off` turns approvals off; otherwise a JSON list of regular expressions.
        (An empty value means the default, as for every setting.)"""
        if not isinstance(value, str):
            return value
        if value.strip().lower() in ("none", "off"):
            return []
        try:
            patterns = json.loads(value)
        except ValueError:
            raise ValueError("a JSON list of regular expressions, or none") from None
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValueError("a JSON list of regular expressions, or none")
        for pattern in patterns:
            try:
                re.compile(pattern.removeprefix("net:"))
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return patterns


def parse_pairs(text: str) -> dict[str, str]:
    """`a=1,b=2` as a dict; entries without `=` are ignored."""
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs if key.strip() and value.strip()}


class RegistrationSettings(_Base):
    """Settings of `python -m restate_app.registration`, the one-shot registration job."""

    restate_admin_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:9070")
    restate_app_advertised_url: AnyHttpUrl


def load(cls: type[S]) -> S:
    """Build settings of `cls`, naming every missing or invalid variable in one error."""
    try:
        return cls()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(part) for part in err["loc"]).upper()
            problems.append(f"{name}: {err['msg'].lower()}")
        raise SettingsError(
            f"{cls.__doc__ or cls.__name__}\ncannot start, fix these environment variables "
            "(see .env.example):\n  " + "\n  ".join(problems)
        ) from None


def load_or_exit(cls: type[S], check: Callable[[S], None] | None = None) -> S:
    """`load` for an entry point: a bad environment prints what to fix and exits with 2.

    `check` adds the process's own rules on top (it raises `SettingsError` or `ValueError`).
    """
    try:
        settings = load(cls)
        if check is not None:
            check(settings)
    except (SettingsError, ValueError) as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    return settings
