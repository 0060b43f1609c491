"""A replacement's start: it continues from the cancelled runs it replaces.

The agent starts a replacement with the reply that cut the running task, before that task
has cleaned up. The replacement waits (bounded) for each cut run's result (its report), puts
what it did into the conversation before the reply that cut it, and goes on from its
workspace. Restate's SDK starts a step only once something awaits it: the helpers here await
steps meant to run side by side together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import restate
import structlog
from restate.exceptions import TerminalError

from common.contract import Awaited, TaskReport, TaskRequest, Turn, WorkspaceRef
from restate_app.deps import Deps
from restate_app.session_events import Limits
from restate_app.task_slack import CANCELLED_TEXT, notice_text
from restate_app.task_steps import step_options
from restate_app.turns import bound_turns, insert_before, outcome_turn

log = structlog.get_logger(__name__)
T = TypeVar("T")


async def while_running(
    main: restate.RestateDurableFuture[T], others: Sequence[restate.RestateDurableFuture[Any]]
) -> T:
    """`await main` while the steps `others` run too: Restate's SDK starts a step only once
    something awaits it, so steps meant to run side by side are awaited together."""
    waiting = list(others)
    while waiting:
        done, waiting = await restate.wait_completed(main, *waiting)
        if any(future is main for future in done):
            break
        waiting = [future for future in waiting if future is not main]
    return await main


async def first_of(
    main: restate.RestateDurableFuture[Any], timer: restate.RestateDurableFuture[Any]
) -> bool:
    """Wait for `main` or `timer`, whichever completes first; True when `main` did."""
    done, _ = await restate.wait_completed(main, timer)
    return any(future is main for future in done)


@dataclass
class TakenOver:
    """The conversation with the cut runs' work in it, their latest workspace, and the cut
    runs that showed nothing in the thread (their notice is the replacement's to post)."""

    turns: list[Turn]
    workspace: WorkspaceRef | None = None
    unseen: list[TaskReport] = field(default_factory=list)


async def take_over(
    ctx: restate.Context,
    awaiting: list[Awaited],
    turns: list[Turn],
    limits: Limits,
    wait_seconds: float,
) -> TakenOver:
    """Wait for each cut run to end (all within `wait_seconds`) and take over what it did. A
    run Restate cancelled before it ran has nothing; past the bound, the rest is left to the
    agent, which records their reports when they come."""
    timer = ctx.sleep(timedelta(seconds=wait_seconds))
    taken = TakenOver(turns=list(turns))
    for awaited in awaiting:
        ended = ctx.attach_invocation(awaited.task_id, type_hint=TaskReport)
        if not await first_of(ended, timer):
            log.info("take_over_timed_out", task=awaited.task_id)
            break
        try:
            report: TaskReport = await ended
        except TerminalError:
            continue
        turn = outcome_turn(report, limits.max_turn_bytes)
        if turn is not None:
            insert_before(taken.turns, turn, awaited.by_ts)
        taken.workspace = report.workspace or taken.workspace
        if report.outcome == "cancelled" and report.model_started and not report.status_ts:
            taken.unseen.append(report)
    bound_turns(taken.turns, limits.max_turns, limits.max_bytes)
    return taken


class RunTakeOver:
    """A replacement's start: what the cut runs did, and the notices of those that showed
    nothing; a mixin of `AgentRun`, whose state it reads."""

    ctx: restate.Context
    deps: Deps
    req: TaskRequest
    turns: list[Turn]
    ref: WorkspaceRef | None
    unseen: list[TaskReport]

    async def _take_over(self) -> None:
        taken = await take_over(
            self.ctx, self.req.awaiting, self.turns, self.deps.limits, self.deps.cleanup_seconds
        )
        self.turns, self.ref = taken.turns, taken.workspace or self.ref
        self.unseen = taken.unseen

    async def _post_unseen(self, alongside: list[restate.RestateDurableFuture[Any]]) -> None:
        """The notices of the cut runs this one replaces that showed nothing in the thread,
        one step each, while `alongside` (the first model call) runs."""
        opts = step_options(self.deps.slack_max_attempts)
        for number, report in enumerate(self.unseen, start=1):
            name = f"post notice {number}"
            notice = self.ctx.run_typed(name, self._post_unseen_notice, opts, report)
            await while_running(notice, alongside)
        self.unseen = []

    async def _post_unseen_notice(self, report: TaskReport) -> None:
        req = self.req
        text = notice_text(CANCELLED_TEXT, report.text, report.killed)
        await self.deps.slack.post(req.channel_id, req.thread_ts, text)
