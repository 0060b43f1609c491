"""CodingTask: one run of the agent over a snapshot of a thread's conversation.

Each model call and each Slack post is a named durable step. When the agent cancels the run,
the cancellation surfaces as a `TerminalError` (409) at the pending await; the run then closes
its model stream at once, posts the "cancelled, restarting" notice, reports its partial output
and re-raises so Restate records the invocation as cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import restate
import structlog
from restate.exceptions import TerminalError
from structlog.contextvars import bound_contextvars

from common.contract import (
    AGENT_SERVICE,
    AGENT_TASK_ENDED,
    TASK_SERVICE,
    TaskOutcome,
    TaskReport,
    TaskRequest,
)
from restate_app.model_io import ModelClient, StreamTracker
from restate_app.prompts import answer_messages, plan_messages
from restate_app.slack_io import SlackPoster

log = structlog.get_logger(__name__)

STATUS_TEXT = ":hourglass_flowing_sand: Working on it…"
CANCELLED_TEXT = ":leftwards_arrow_with_hook: Cancelled, restarting with the new message…"
FAILED_TEXT = (
    ":warning: Sorry, I could not finish this one: a service I depend on is not answering. "
    "Reply in this thread to try again."
)
PROGRESS_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class TaskDeps:
    """What a task run needs: the shared clients and its retry bounds."""

    slack: SlackPoster
    model: ModelClient
    model_max_attempts: int = 4
    slack_max_attempts: int = 4
    cleanup_seconds: float = 10.0


def _opts(max_attempts: int, max_duration: float | None = None) -> restate.RunOptions[Any]:
    return restate.RunOptions(
        max_attempts=max_attempts,
        max_duration=timedelta(seconds=max_duration) if max_duration else None,
        initial_retry_interval=timedelta(milliseconds=500),
        retry_interval_factor=2.0,
        max_retry_interval=timedelta(seconds=10),
    )


class _Progress:
    """Shows the streaming answer in the status message, at most about once a second."""

    def __init__(self, slack: SlackPoster, channel: str, ts: str) -> None:
        self._slack, self._channel, self._ts = slack, channel, ts
        self._last = time.monotonic()

    async def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL_SECONDS:
            return
        self._last = now
        try:
            await self._slack.update(self._channel, self._ts, text + " …")
        except Exception as exc:  # progress is cosmetic: it never fails the task
            log.info("progress_update_failed", error=str(exc))


def create_coding_task(deps: TaskDeps) -> restate.Service:
    task = restate.Service(
        TASK_SERVICE,
        description="One run of the coding agent over a snapshot of a Slack thread.",
        # A model step can stream for minutes: Restate's defaults (1 min, 10 min) would kill it.
        inactivity_timeout=timedelta(minutes=15),
        abort_timeout=timedelta(minutes=15),
    )

    @task.handler()
    async def run(ctx: restate.Context, req: TaskRequest) -> TaskReport:
        """Plan, answer and post; on cancellation clean up and re-raise."""
        task_id = ctx.request().id
        with bound_contextvars(thread=req.thread_key, invocation=task_id):
            return await _run(ctx, deps, req, task_id)

    return task


async def _run(ctx: restate.Context, deps: TaskDeps, req: TaskRequest, task_id: str) -> TaskReport:
    tracker = StreamTracker()
    status_ts: str | None = None
    try:
        status_ts = await _post_status(ctx, deps, req)
        answer = await _work(ctx, deps, req, tracker, status_ts)
    except TerminalError as err:
        tracker.close()
        if err.status_code == 409:
            report = await _cleanup_cancelled(ctx, deps, req, task_id, tracker, status_ts)
            raise TerminalError(report.model_dump_json(), 409) from None
        log.warning("task_failed", error=err.message)
        report = await _cleanup_failed(ctx, deps, req, task_id, status_ts)
        raise TerminalError(report.model_dump_json(), 500) from None
    report = TaskReport(task_id=task_id, outcome="completed", text=answer)
    _report(ctx, req, report)
    log.info("task_completed", chars=len(answer))
    return report


async def _post_status(ctx: restate.Context, deps: TaskDeps, req: TaskRequest) -> str:
    return await ctx.run_typed(
        "post status",
        deps.slack.post,
        _opts(deps.slack_max_attempts),
        channel=req.channel_id,
        thread_ts=req.thread_ts,
        text=STATUS_TEXT,
    )


async def _work(
    ctx: restate.Context, deps: TaskDeps, req: TaskRequest, tracker: StreamTracker, status_ts: str
) -> str:
    plan: str = await ctx.run_typed(
        "plan",
        deps.model.stream,
        _opts(deps.model_max_attempts),
        messages=plan_messages(req.turns),
        tracker=tracker,
    )
    progress = _Progress(deps.slack, req.channel_id, status_ts)
    answer: str = await ctx.run_typed(
        "answer",
        deps.model.stream,
        _opts(deps.model_max_attempts),
        messages=answer_messages(req.turns, plan),
        tracker=tracker,
        on_text=progress,
    )
    await ctx.run_typed(
        "post answer",
        deps.slack.finish,
        _opts(deps.slack_max_attempts),
        channel=req.channel_id,
        thread_ts=req.thread_ts,
        status_ts=status_ts,
        text=answer,
    )
    return answer


async def _cleanup_cancelled(
    ctx: restate.Context,
    deps: TaskDeps,
    req: TaskRequest,
    task_id: str,
    tracker: StreamTracker,
    status_ts: str | None,
) -> TaskReport:
    log.info("task_cancelled", streamed_chunks=tracker.chunks)
    partial: str = await ctx.run_typed(
        "record partial", lambda: tracker.text, restate.RunOptions(type_hint=str)
    )
    if status_ts is not None:
        # A run cancelled before it posted anything leaves the thread alone.
        await _cleanup_step(
            ctx,
            deps,
            "post cancel notice",
            deps.slack.interrupted,
            channel=req.channel_id,
            thread_ts=req.thread_ts,
            status_ts=status_ts,
            partial=partial,
            notice=CANCELLED_TEXT,
        )
    report = TaskReport(task_id=task_id, outcome="cancelled", text=partial)
    _report(ctx, req, report)
    return report


async def _cleanup_failed(
    ctx: restate.Context, deps: TaskDeps, req: TaskRequest, task_id: str, status_ts: str | None
) -> TaskReport:
    """Say sorry in the thread, in place of the status message when there is one."""
    if status_ts is not None:
        await _cleanup_step(
            ctx,
            deps,
            "post failure notice",
            deps.slack.update,
            channel=req.channel_id,
            ts=status_ts,
            text=FAILED_TEXT,
        )
    else:
        await _cleanup_step(
            ctx,
            deps,
            "post failure notice",
            deps.slack.post,
            channel=req.channel_id,
            thread_ts=req.thread_ts,
            text=FAILED_TEXT,
        )
    report = TaskReport(task_id=task_id, outcome="failed")
    _report(ctx, req, report)
    return report


async def _cleanup_step(
    ctx: restate.Context,
    deps: TaskDeps,
    step: str,
    action: Callable[..., Awaitable[object]],
    **kwargs: Any,
) -> None:
    """A Slack step of a cleanup: bounded in attempts and time, and never fatal to the cleanup."""
    try:
        await ctx.run_typed(step, action, _opts(3, max_duration=deps.cleanup_seconds), **kwargs)
    except TerminalError as err:
        log.warning("cleanup_step_failed", step=step, error=err.message)


def _report(ctx: restate.Context, req: TaskRequest, report: TaskReport) -> None:
    """Tell the agent how this run ended: one-way, never a call (that would deadlock)."""
    ctx.generic_send(
        AGENT_SERVICE, AGENT_TASK_ENDED, report.model_dump_json().encode(), key=req.thread_key
    )


def report_from_error(err: TerminalError, task_id: str) -> TaskReport:
    """Recover the report a task carried in its terminal error; cancelled-before-start has none."""
    try:
        return TaskReport.model_validate_json(err.message)
    except ValueError:
        outcome: TaskOutcome = "cancelled" if err.status_code == 409 else "failed"
        return TaskReport(task_id=task_id, outcome=outcome)
