"""CodingTask: one run of the agent over a snapshot of a thread's conversation.

Each model call and each Slack post is a named durable step. When the agent cancels the run,
the cancellation surfaces as a `TerminalError` (409) at the pending await; the run then closes
its model stream at once, asks the agent why (a new message, or a stop), posts the matching
notice, reports its partial output and re-raises so Restate records the invocation as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import restate
import structlog
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel
from restate.exceptions import TerminalError
from structlog.contextvars import bound_contextvars

from common.contract import (
    AGENT_CANCEL_REASON,
    AGENT_SERVICE,
    AGENT_TASK_ENDED,
    AGENT_TASK_PROGRESS,
    TASK_SERVICE,
    CancelReason,
    TaskOutcome,
    TaskProgress,
    TaskReport,
    TaskRequest,
    parse_thread_key,
)
from restate_app.model_io import Completion, ModelClient, StreamTracker
from restate_app.mrkdwn import to_mrkdwn
from restate_app.prompts import answer_messages, plan_messages
from restate_app.slack_io import SlackPoster, section, split_for_slack

log = structlog.get_logger(__name__)

STATUS_TEXT = ":hourglass_flowing_sand: Working on it…"
CANCELLED_TEXT = ":leftwards_arrow_with_hook: Cancelled, restarting with the new message…"
STOPPED_TEXT = ":octagonal_sign: Stopped{by}. Reply in this thread to start again."
FAILED_TEXT = (
    ":warning: Sorry, I could not finish this one: a service I depend on is not answering. "
    "Reply in this thread to try again."
)
PROGRESS_INTERVAL_SECONDS = 1.0
DONE_TEXT = ":white_check_mark: Answered below."
STATUS_POST_GRACE_SECONDS = 2.0
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


class _CancelSnapshot(BaseModel):
    """What a cancelled run had done when the cancel landed, journaled for its cleanup."""

    partial: str
    model_started: bool


@dataclass(frozen=True)
class Reactions:
    """Emoji names for the triggering message, by task state (empty to skip one)."""

    received: str = "eyes"
    working: str = "hourglass_flowing_sand"
    done: str = "white_check_mark"
    stopped: str = "octagonal_sign"
    cancelled: str = "leftwards_arrow_with_hook"
    failed: str = "x"

    def for_outcome(self, outcome: TaskOutcome) -> str:
        return {
            "completed": self.done,
            "stopped": self.stopped,
            "cancelled": self.cancelled,
            "failed": self.failed,
        }[outcome]


@dataclass(frozen=True)
class TaskDeps:
    """What a task run needs: the shared clients and its retry bounds."""

    slack: SlackPoster
    model: ModelClient
    model_max_attempts: int = 4
    slack_max_attempts: int = 4
    cleanup_seconds: float = 10.0
    reactions: Reactions = field(default_factory=Reactions)
    # Answer with Slack's chat.startStream/appendStream/stopStream instead of message updates.
    streaming: bool = False


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

    def __init__(self, slack: SlackPoster, req: TaskRequest, ts: str) -> None:
        self._slack, self._req, self._ts = slack, req, ts
        self._last = time.monotonic()

    async def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL_SECONDS:
            return
        if await self._slack.show_progress(
            self._req.channel_id, self._ts, text, self._req.thread_key
        ):
            self._last = now


class _SlackStream:
    """The answer streamed with Slack's streaming methods (`SLACK_STREAMING`): started at the
    first text, appended about once a second, stopped with the rest when the answer is done."""

    def __init__(self, slack: SlackPoster, req: TaskRequest) -> None:
        self._slack, self._req = slack, req
        self.ts: str | None = None
        self._sent, self._last = 0, 0.0

    async def feed(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL_SECONDS or len(text) <= self._sent:
            return
        self._last = now
        try:
            await self._push(text)
        except Exception as exc:  # live text is cosmetic; `finish` still delivers the answer
            log.info("stream_append_failed", error=str(exc))

    async def _push(self, text: str) -> None:
        req = self._req
        if self.ts is None:
            team = parse_thread_key(req.thread_key)[0]
            self.ts = await self._slack.start_stream(
                req.channel_id, req.thread_ts, team, req.trigger_user, text
            )
        else:
            await self._slack.append_stream(req.channel_id, self.ts, text[self._sent :])
        self._sent = len(text)

    async def finish(self, text: str) -> None:
        if self.ts is None:
            await self._push(text)
        assert self.ts is not None
        await self._slack.stop_stream(self._req.channel_id, self.ts, text[self._sent :])

    def abandon(self, note: str) -> None:
        """Close a stream its attempt could not finish (retry or cancel), without waiting."""
        if self.ts is not None:
            ts, self.ts = self.ts, None
            _spawn(self._slack.stop_stream(self._req.channel_id, ts, note))


_detached: set[asyncio.Task[None]] = set()


def _spawn(coro: Awaitable[None]) -> None:
    task: asyncio.Task[None] = asyncio.ensure_future(coro)
    _detached.add(task)
    task.add_done_callback(_detached.discard)


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
            return await _Run(ctx, deps, req, task_id).run()

    return task


class _Run:
    """One run's steps and cleanups, sharing its context, request and stream tracker."""

    def __init__(self, ctx: restate.Context, deps: TaskDeps, req: TaskRequest, task_id: str):
        self.ctx, self.deps, self.req, self.task_id = ctx, deps, req, task_id
        self.tracker = StreamTracker()
        self.status_ts: str | None = None
        # The plan is internal: only the answer's text is a partial worth keeping.
        self.answering = False
        # The ts of a status message a cancelled "post status" step may still have posted.
        self.posted_status_ts: str | None = None
        self.status_posted = asyncio.Event()
        self.tokens = 0

    async def run(self) -> TaskReport:
        try:
            answer = await self._work(self._post_status())
        except TerminalError as err:
            self.tracker.close()
            if err.status_code == 409:
                report = await self._cleanup_cancelled()
                raise TerminalError(report.model_dump_json(), 409) from None
            log.warning("task_failed", error=err.message)
            report = await self._cleanup_failed()
            raise TerminalError(report.model_dump_json(), 500) from None
        report = self._report("completed", answer)
        log.info("task_completed", chars=len(answer), tokens=self.tokens)
        return report

    def _post_status(self) -> restate.RestateDurableFuture[str]:
        return self.ctx.run_typed(
            "post status",
            self._status_and_reaction,
            _opts(self.deps.slack_max_attempts),
        )

    async def _status_and_reaction(self) -> str:
        req, reactions, slack = self.req, self.deps.reactions, self.deps.slack
        ts, _ = await asyncio.gather(
            slack.post_status(req.channel_id, req.thread_ts, STATUS_TEXT, req.thread_key),
            slack.react(
                req.channel_id, req.trigger_ts, add=reactions.working, remove=reactions.received
            ),
        )
        self.posted_status_ts = ts
        self.status_posted.set()
        return ts

    async def _find_status(self) -> str | None:
        """After a cancel during "post status": the post may still land; wait briefly for it,
        so the cleanup can remove it instead of leaving "Working on it…" behind forever."""

        async def posted() -> str | None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.status_posted.wait(), STATUS_POST_GRACE_SECONDS)
            return self.posted_status_ts

        found: str | None = await self.ctx.run_typed(
            "find status", posted, restate.RunOptions(type_hint=str)
        )
        return found

    async def _work(self, status: restate.RestateDurableFuture[str]) -> str:
        """The model work; the first model call does not wait for the status message."""
        self._progress("plan")
        planning: restate.RestateDurableFuture[Completion] = self.ctx.run_typed(
            "plan",
            self.deps.model.stream,
            _opts(self.deps.model_max_attempts),
            messages=plan_messages(self.req.turns),
            tracker=self.tracker,
        )
        self.status_ts = status_ts = await status
        plan = await planning
        self.tokens += plan.chunks
        self.answering = True
        self._progress("answer")
        answer: Completion = await self.ctx.run_typed(
            "answer",
            self._answer,
            _opts(self.deps.model_max_attempts),
            messages=answer_messages(self.req.turns, plan.text),
            status_ts=status_ts,
        )
        self.tokens += answer.chunks
        self._progress("post answer")
        if self.deps.streaming:
            await self.ctx.run_typed(
                "post answer",
                self._finish,
                _opts(self.deps.slack_max_attempts),
                status_ts,
                DONE_TEXT,
            )
        else:
            await self._post_answer(status_ts, answer.text)
        return answer.text

    async def _answer(
        self, messages: list[ChatCompletionMessageParam], status_ts: str
    ) -> Completion:
        """Stream the answer: into the status message, or with Slack's streaming methods."""
        if not self.deps.streaming:
            progress = _Progress(self.deps.slack, self.req, status_ts)
            return await self.deps.model.stream(messages, self.tracker, on_text=progress)
        stream = _SlackStream(self.deps.slack, self.req)
        try:
            completion = await self.deps.model.stream(messages, self.tracker, on_text=stream.feed)
            await stream.finish(completion.text)
        except BaseException:
            stream.abandon("\n\n_(interrupted)_")
            raise
        return completion

    async def _post_answer(self, status_ts: str, text: str) -> None:
        """The status message becomes the answer; each follow-up part is a step of its own,
        so a retry never posts a part twice."""
        first, *more = split_for_slack(to_mrkdwn(text))
        await self.ctx.run_typed(
            "post answer", self._finish, _opts(self.deps.slack_max_attempts), status_ts, first
        )
        req = self.req
        for number, part in enumerate(more, start=2):
            await self.ctx.run_typed(
                f"post answer part {number}",
                self.deps.slack.post,
                _opts(self.deps.slack_max_attempts),
                req.channel_id,
                req.thread_ts,
                part,
                [section(part)],
            )

    async def _finish(self, status_ts: str, text: str) -> None:
        await self.deps.slack.update(self.req.channel_id, status_ts, text)
        await self._react("completed")

    async def _react(self, outcome: TaskOutcome) -> None:
        reactions = self.deps.reactions
        await self.deps.slack.react(
            self.req.channel_id,
            self.req.trigger_ts,
            add=reactions.for_outcome(outcome),
            remove=reactions.working,
        )

    def _progress(self, step: str) -> None:
        update = TaskProgress(task_id=self.task_id, step=step, tokens=self.tokens)
        self.ctx.generic_send(
            AGENT_SERVICE,
            AGENT_TASK_PROGRESS,
            update.model_dump_json().encode(),
            key=self.req.thread_key,
        )

    async def _cleanup_cancelled(self) -> TaskReport:
        ctx, tracker = self.ctx, self.tracker
        # Ask why while recording the partial output: both are quick, neither waits on the other.
        why = ctx.generic_call(
            AGENT_SERVICE,
            AGENT_CANCEL_REASON,
            json.dumps(self.task_id).encode(),
            key=self.req.thread_key,
        )
        snapshot: _CancelSnapshot = await ctx.run_typed(
            "record partial",
            lambda: _CancelSnapshot(
                partial=tracker.text if self.answering else "", model_started=tracker.started
            ),
            restate.RunOptions(type_hint=_CancelSnapshot),
        )
        partial = snapshot.partial
        if self.status_ts is None:
            self.status_ts = await self._find_status()
        reason = CancelReason.model_validate_json(await why)
        outcome: TaskOutcome = "stopped" if reason.reason == "stop" else "cancelled"
        log.info("task_cancelled", outcome=outcome, streamed_chunks=tracker.chunks)
        if reason.reason == "stop":
            by = f" by <@{reason.by_user}>" if _SLACK_USER.fullmatch(reason.by_user or "") else ""
            stopped = STOPPED_TEXT.format(by=by)
            await self._cleanup_step("post stop notice", self._notice, stopped, partial, outcome)
        elif snapshot.model_started:
            await self._cleanup_step(
                "post cancel notice", self._notice, CANCELLED_TEXT, partial, outcome
            )
        elif self.status_ts is not None:
            # Cancelled before its first model call (a burst of replies): leave no trace.
            await self._cleanup_step("remove status", self._remove_status)
        return self._report(outcome, partial)

    async def _notice(self, text: str, partial: str, outcome: TaskOutcome) -> None:
        req = self.req
        if self.status_ts is not None:
            await asyncio.gather(
                self.deps.slack.interrupted(
                    req.channel_id, req.thread_ts, self.status_ts, partial, text
                ),
                self._react(outcome),
            )
        else:
            await self.deps.slack.post(req.channel_id, req.thread_ts, text)

    async def _remove_status(self) -> None:
        assert self.status_ts is not None
        await self.deps.slack.delete(self.req.channel_id, self.status_ts)
        await self.deps.slack.react(
            self.req.channel_id, self.req.trigger_ts, remove=self.deps.reactions.working
        )

    async def _cleanup_failed(self) -> TaskReport:
        """Say sorry in the thread, in place of the status message when there is one."""
        await self._cleanup_step("post failure notice", self._failure_notice)
        return self._report("failed", "")

    async def _failure_notice(self) -> None:
        req, slack = self.req, self.deps.slack
        if self.status_ts is not None:
            await slack.update(req.channel_id, self.status_ts, FAILED_TEXT)
        else:
            await slack.post(req.channel_id, req.thread_ts, FAILED_TEXT)
        await self._react("failed")

    async def _cleanup_step(
        self, step: str, action: Callable[..., Awaitable[None]], *args: Any
    ) -> None:
        """A Slack step of a cleanup: bounded in attempts and in time (each attempt too), and
        never fatal to the cleanup, so the agent's bounded wait sees it end."""
        budget = self.deps.cleanup_seconds / 3

        async def bounded() -> None:
            await asyncio.wait_for(action(*args), timeout=budget)

        options = _opts(2, max_duration=budget * 2)
        try:
            await self.ctx.run_typed(step, bounded, options)
        except TerminalError as err:
            log.warning("cleanup_step_failed", step=step, error=err.message)

    def _report(self, outcome: TaskOutcome, text: str) -> TaskReport:
        """Tell the agent how this run ended: one-way, never a call (that would deadlock)."""
        report = TaskReport(task_id=self.task_id, outcome=outcome, text=text, tokens=self.tokens)
        self.ctx.generic_send(
            AGENT_SERVICE,
            AGENT_TASK_ENDED,
            report.model_dump_json().encode(),
            key=self.req.thread_key,
        )
        return report


def report_from_error(err: TerminalError, task_id: str) -> TaskReport | None:
    """The report a task carried in its terminal error, or None when the error is not one.

    A task cancelled before it ever ran ends with Restate's own 409 and leaves nothing to add.
    """
    try:
        return TaskReport.model_validate_json(err.message)
    except ValueError:
        if err.status_code == 409 and err.message == "cancelled":
            return TaskReport(task_id=task_id, outcome="cancelled")
        return None
