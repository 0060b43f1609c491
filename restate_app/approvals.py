"""A run asks a person in its thread to approve an action, and waits durably for the answer.

`Approvals.ask` creates an awakeable, posts the request in a durable step (the exact action,
who may answer, Approve and Deny buttons whose value names the thread, the run and the
awakeable), then waits for the awakeable or `APPROVAL_TIMEOUT`, whichever comes first, and
shows the answer in the message in place, without its buttons. The bot hands a click to
`CodingAgent.approval`, which checks who clicked and completes the awakeable with the first
answer. When the timeout comes first, the run tells the agent: a click that raced it and the
timeout can never both count, as the agent keeps the first and completes the awakeable with
it. The wait is journaled: restarting every process meanwhile changes nothing.

A run cut while it waits (a reply, Stop) ends like any cut run: its report carries the request
(`pending`), and the notice (`restate_app/task_slack.py`) rewrites it without its buttons.
Used by the run's tool calls (`restate_app/task_tools.py`); any step that needs a person's
yes (a push, a pull request, more budget) asks the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import restate
import structlog
from pydantic import BaseModel
from restate.exceptions import TerminalError

from common.contract import (
    Answer,
    ApprovalClosed,
    ApprovalKind,
    ApprovalRef,
    PendingApproval,
    approval_summary,
)
from restate_app import coding_agent
from restate_app.approval_view import (
    answer_line,
    bounded,
    ended_message,
    request_blocks,
    request_text,
)
from restate_app.deps import Deps
from restate_app.take_over import first_of
from restate_app.task_steps import step_options

log = structlog.get_logger(__name__)

# After the timeout: how long the run waits for the agent to settle which answer counts.
SETTLE_SECONDS = 30.0

OnPosted = Callable[[], Awaitable[None]] | None


class InThread(Protocol):
    """Where a request for approval is posted: a run's request or a ship's job."""

    @property
    def thread_key(self) -> str: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def thread_ts(self) -> str: ...


class Asked(BaseModel):
    """What the request's step journals: its message, and how long it waits (the setting
    then: a restart with another setting does not change a request already asked)."""

    ts: str
    timeout_seconds: float


@dataclass
class Approvals:
    """The requests for approval of one invocation: a run, or a ship of the thread's work."""

    ctx: restate.Context
    deps: Deps
    req: InThread
    task_id: str
    # The request waiting for an answer, or whose answer its message does not show yet.
    pending: PendingApproval | None = None
    asked: int = 0
    # How long the latest request waited for an answer (journaled with it).
    timeout_seconds: float = 0.0

    async def ask(
        self,
        what: str,
        kind: ApprovalKind = "command",
        why: str = "",
        network: bool = False,
        on_posted: OnPosted = None,
    ) -> Answer:
        """Ask the thread to approve `what`; the answer (approved, denied, timed out, or
        `unavailable` when Slack would not take the request). A cut run's cancellation
        surfaces here as at any await; `on_posted` runs once the request is posted."""
        self.asked += 1
        number, ctx = self.asked, self.ctx
        awakeable_id, answered = ctx.awakeable(type_hint=Answer)
        # Not validated here: a Restate whose ids look different must not fail the run (the
        # bot, which reads button values strictly, would then refuse the clicks, visibly).
        ref = ApprovalRef.model_construct(
            thread_key=self.req.thread_key,
            task_id=self.task_id,
            awakeable_id=awakeable_id,
            kind=kind,
            what=approval_summary(what),
        )
        shown = PendingApproval(ts="", kind=kind, what=bounded(what), why=why, network=network)
        opts = step_options(self.deps.slack_max_attempts)
        try:
            asked = await ctx.run_typed(
                f"ask approval {number}", self._post, opts, shown, ref, on_posted
            )
        except TerminalError as err:
            if err.status_code == 409:
                raise
            log.warning("approval_not_asked", error=err.message)
            return Answer(outcome="unavailable")
        shown = shown.model_copy(update={"ts": asked.ts, "timeout_seconds": asked.timeout_seconds})
        self.pending, self.timeout_seconds = shown, asked.timeout_seconds
        answer = await self._wait(number, ref, answered, asked.timeout_seconds)
        log.info("approval_answered", outcome=answer.outcome, by=answer.by_user, kind=kind)
        self.pending = shown = shown.model_copy(update={"answer": answer})
        try:
            await ctx.run_typed(f"show approval {number}", self._show, opts, shown)
        except TerminalError as err:
            if err.status_code == 409:
                raise
            log.warning("approval_not_shown", error=err.message)
        self.pending = None
        return answer

    async def _wait(
        self,
        number: int,
        ref: ApprovalRef,
        answered: restate.RestateDurableFuture[Answer],
        seconds: float,
    ) -> Answer:
        ctx = self.ctx
        timer = ctx.sleep(timedelta(seconds=seconds), name=f"approval {number} timeout")
        if await first_of(answered, timer):
            return await answered
        timed_out = Answer(outcome="timed_out")
        closed = ApprovalClosed(
            awakeable_id=ref.awakeable_id,
            task_id=self.task_id,
            answer=timed_out,
            kind=ref.kind,
            what=ref.what,
        )
        ctx.object_send(coding_agent.approval_closed, self.req.thread_key, closed)
        # The agent completes the awakeable with what counts: a click that came first, or this.
        if await first_of(answered, ctx.sleep(timedelta(seconds=SETTLE_SECONDS))):
            return await answered
        return timed_out

    async def _post(self, shown: PendingApproval, ref: ApprovalRef, on_posted: OnPosted) -> Asked:
        timeout = self.deps.approval_timeout_seconds
        shown = shown.model_copy(update={"timeout_seconds": timeout})
        req = self.req
        ts = await self.deps.slack.post(
            req.channel_id, req.thread_ts, request_text(shown), request_blocks(shown, ref)
        )
        if on_posted is not None:
            await on_posted()
        return Asked(ts=ts, timeout_seconds=timeout)

    async def _show(self, shown: PendingApproval) -> None:
        assert shown.answer is not None
        text, blocks = ended_message(shown, answer_line(shown, shown.answer))
        await self.deps.slack.update(self.req.channel_id, shown.ts, text, blocks)
