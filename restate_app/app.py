"""Composes the durable services into one Restate ASGI app, with their shared clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import openai
import restate
import structlog
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler

from common.settings import AppSettings, parse_pairs
from common.slack_limiter import LimitedWebClient, make_limiter
from restate_app import metrics
from restate_app.asgi import compose
from restate_app.coding_agent import coding_agent
from restate_app.coding_task import coding_task
from restate_app.deps import Deps, Models, Reactions, Repos, install
from restate_app.health import health_routes
from restate_app.metrics import metrics_route
from restate_app.model_io import ModelClient
from restate_app.model_slots import ModelSlots
from restate_app.session import Limits
from restate_app.shipping import github_config
from restate_app.slack_io import SlackPoster
from restate_app.tools.approval_patterns import ApprovalRules
from restate_app.tools.sandbox import SandboxConfig, sandbox_problem
from restate_app.tools.workspace import WorkspaceLimits, Workspaces

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Clients:
    slack: LimitedWebClient
    model: openai.AsyncOpenAI


@asynccontextmanager
async def open_clients(settings: AppSettings) -> AsyncIterator[Clients]:
    """One Slack and one model client per process, closed at shutdown."""
    # Without a shared session slack_sdk opens a connection per call (several per interruption).
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    slack = LimitedWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=str(settings.slack_api_url),
        session=http,
        timeout=10,
        # 429s are the limiter's: it waits out Retry-After for every caller of the method.
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1)],
        limiter=make_limiter(
            settings.slack_rate_share, for_bot=False, observe=metrics.slack_limiter_event
        ),
    )
    model = openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=str(settings.openai_base_url) if settings.openai_base_url else None,
        # Restate owns retries, so they are durable and bounded in one place.
        max_retries=0,
        timeout=settings.model_timeout_seconds,
    )
    try:
        yield Clients(slack=slack, model=model)
    finally:
        await model.close()
        await http.close()


def build_deps(settings: AppSettings, clients: Clients) -> Deps:
    """Everything the handlers use, from the settings and the process's shared clients."""
    sandbox = SandboxConfig(
        mode=settings.agent_sandbox,
        network=settings.agent_command_network == "on",
        timeout_seconds=settings.agent_command_timeout_seconds,
    )
    workspaces = Workspaces(
        Path(settings.workspaces_dir),
        WorkspaceLimits(
            max_patch_bytes=settings.workspace_max_patch_bytes,
            idle_seconds=settings.workspace_idle_days * 86_400,
            max_count=settings.workspace_max_count,
            max_total_bytes=settings.workspace_max_bytes,
        ),
    )
    return Deps(
        slack=SlackPoster(clients.slack),
        model=ModelClient(
            clients.model,
            settings.openai_model,
            settings.model_max_tokens,
            ModelSlots(
                settings.model_max_concurrency,
                settings.model_queue_seconds,
                observe=metrics.model_slots_event,
            ),
        ),
        workspaces=workspaces,
        sandbox=sandbox,
        repos=Repos(
            default=settings.agent_repo,
            named=parse_pairs(settings.agent_repos),
            by_channel=parse_pairs(settings.channel_repos),
        ),
        reactions=Reactions.from_settings(settings),
        limits=Limits(
            max_turns=settings.history_max_turns,
            max_bytes=settings.history_max_bytes,
            max_queued=settings.history_max_queued,
            cleanup_wait=timedelta(seconds=settings.cleanup_wait_seconds),
            run_steps=settings.agent_max_steps,
            run_tokens=settings.run_max_tokens,
            session_tokens=settings.session_max_tokens,
        ),
        model_max_attempts=settings.model_max_attempts,
        slack_max_attempts=settings.slack_max_attempts,
        cleanup_seconds=settings.cleanup_wait_seconds,
        streaming=settings.slack_streaming,
        models=Models(settings.openai_model, parse_pairs(settings.agent_models)),
        instructions_max_bytes=settings.agent_instructions_max_bytes,
        github=github_config(settings),
        approval_rules=ApprovalRules.from_setting(settings.agent_approval_patterns),
        approval_timeout_seconds=settings.approval_timeout,
    )


async def keep_workspaces(deps: Deps, every: timedelta = timedelta(hours=1)) -> None:
    """Remove idle workspaces now and then (bounded by age, count and disk); a removed one
    is rebuilt from the session's state if its thread speaks again."""
    while True:
        try:
            removed = await deps.workspaces.cleanup()
            if removed:
                log.info("workspaces_cleaned", removed=removed)
        except Exception as exc:  # housekeeping must never take the process down
            log.warning("workspace_cleanup_failed", error=str(exc))
        await asyncio.sleep(every.total_seconds())


def check_sandbox(settings: AppSettings, deps: Deps) -> None:
    """Say loudly at start-up when commands run without a sandbox, or cannot run at all."""
    if deps.sandbox.mode == "none":
        log.warning(
            "commands_run_without_sandbox",
            detail="AGENT_SANDBOX=none: the agent's commands run unconfined on this host",
        )
        return
    problem = sandbox_problem(deps.sandbox, Path(settings.workspaces_dir))
    if problem is not None:
        log.error("commands_disabled", reason=problem)


def build_app(settings: AppSettings, clients: Clients) -> Any:
    """The ASGI app serving `CodingAgent` and `CodingTask`."""
    install(build_deps(settings, clients))
    keys = [k.strip() for k in settings.restate_identity_keys.split(",") if k.strip()]
    services = restate.app([coding_agent, coding_task], protocol="bidi", identity_keys=keys or None)
    routes = {"/metrics": metrics_route, **health_routes(str(settings.restate_admin_url))}
    return compose(services, routes=routes)
