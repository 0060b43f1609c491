"""How a run ends: the answer posted, a failure said, or a cancellation cleaned up, and the
one report each sends to the agent (and, cancelled, leaves as its result for the replacement).

A mixin of `AgentRun` (`restate_app/coding_task.py`): the state it reads is the run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import restate
import structlog
from restate.exceptions import TerminalError

from common.contract import (
    Answer,
    ChangeSummary,
    TaskOutcome,
    TaskReport,
    TaskRequest,
    ToolCall,
    WorkspaceRef,
    WorkStep,
)
from restate_app import coding_agent
from restate_app.approvals import Approvals
from restate_app.budgets import Spent, usage_line
from restate_app.deps import Deps
from restate_app.model_io import StreamTracker
from restate_app.mrkdwn import to_mrkdwn
from restate_app.slack_io import section, ship_button, split_for_slack
from restate_app.task_slack import DONE_TEXT, StatusView, change_line
from restate_app.task_steps import READ_ONLY_TOOLS, Partial, arguments_of, step_options
from restate_app.tools.commands import CommandTracker
from restate_app.tools.diffstat import summary_of
from restate_app.tools.registry import describe
from restate_app.tools.workspace import Workspace

log = structlog.get_logger(__name__)

# A command's kill takes at most about 3 s (SIGTERM, a second's grace, SIGKILL, reaping).
KILL_WAIT_SECONDS = 4.0
# How long a cancelled run waits for its status post already on its way, to rewrite it.
STATUS_POST_GRACE_SECONDS = 2.0


class RunEndings:
    """The endings of one run; `AgentRun` holds the state they read."""

    ctx: restate.Context
    deps: Deps
    req: TaskRequest
    task_id: str
    tracker: StreamTracker
    work: list[WorkStep]
    ref: WorkspaceRef | None
    commands: dict[str, CommandTracker]
    started: dict[str, float]
    inflight: set[asyncio.Task[Any]]
    streaming_call: int
    recorded_call: int
    tokens: int
    estimated: bool
    budget_added: int
    status_ts: str | None
    status: restate.RestateDurableFuture[str] | None
    answered: bool
    reacting: restate.RestateDurableFuture[None] | None
    view: StatusView
    approvals: Approvals
    budget_stop: Answer | None

    async def _workspace(self) -> Workspace:
        raise NotImplementedError

    # ------------------------------------------------------------------ endings
    async def _stop_inflight(self) -> None:
        """Close the model stream and kill running commands at once, and wait (bounded) for
        the kills, so what they printed so far is known before it is recorded. The status
        message takes no more updates: the notice takes it over."""
        self.view.close()
        self.tracker.close()
        running = [task for task in self.inflight if not task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=KILL_WAIT_SECONDS)

    async def _cancelled(self, unshown: str | None = None) -> TaskReport:
        """The report of a cut run; `unshown`: the answer it had finished but not posted."""
        partial = await self._partial()
        work = self.work if unshown is None else self._answer_work()
        log.info(
            "task_cancelled",
            steps=len(self.work),
            killed=len(partial.killed),
            streamed_chunks=self.tracker.chunks,
        )
        return self._make_report(
            "cancelled",
            partial.text if unshown is None else unshown,
            work=[*work, *partial.killed],
            model_started=partial.model_started,
            status_ts=partial.status_ts,
            workspace=partial.workspace or self.ref,
            killed=partial.killed_lines,
            ended_at=partial.recorded_at or None,
        )

    async def _partial(self) -> Partial:
        """What the cancelled run had in flight: text being streamed, commands killed."""
        answered = {s.tool_call_id for s in self.work if s.role == "tool"}
        pending = [
            call
            for step in self.work[-1:]
            if step.role == "assistant"
            for call in step.tool_calls
            if call.id not in answered
        ]
        killed = [self._killed_step(call) for call in pending]
        lines = [self._killed_line(call) for call in pending]
        workspace = None
        if pending and self.ref is not None and any(c.name not in READ_ONLY_TOOLS for c in pending):
            with contextlib.suppress(Exception):
                workspace = await self.deps.workspaces.patch(await self._workspace())
        return Partial(
            text=self.tracker.text if self.streaming_call > self.recorded_call else "",
            killed=killed,
            model_started=self.tracker.started or bool(self.work),
            status_ts=self.status_ts or await self.view.posted_ts(STATUS_POST_GRACE_SECONDS),
            workspace=workspace,
            killed_lines=lines,
            recorded_at=time.time(),
        )

    def _killed_line(self, call: ToolCall) -> str:
        started = self.started.get(call.id)
        seconds = f" after {time.monotonic() - started:.1f} s" if started is not None else ""
        verb = "killed" if call.name == "run_command" else "cut off"
        return f"{describe(call.name, arguments_of(call))} ({verb}{seconds})"

    def _killed_step(self, call: ToolCall) -> WorkStep:
        tracker = self.commands.get(call.id)
        started = self.started.get(call.id)
        if call.name == "run_command" and tracker is not None and started is not None:
            seconds = time.monotonic() - started
            output = tracker.output or "(no output)"
            text = (
                f"[killed by the interruption after {seconds:.1f} s; the command did not "
                f"finish. Output so far:]\n{output}"
            )
        else:
            text = "[not finished: the run was interrupted before this tool call completed]"
        return WorkStep(role="tool", text=text, tool_call_id=call.id, name=call.name, killed=True)

    async def _failed(self, text: str) -> TaskReport:
        """Say sorry in the thread, in place of the status message when there is one."""
        if self.status_ts is None and self.status is not None:
            with contextlib.suppress(TerminalError):
                self.status_ts = await self.status
        with contextlib.suppress(TerminalError):
            await self.ctx.run_typed(
                "post failure notice",
                self.view.finish,
                step_options(2),
                self.status_ts,
                text,
                "failed",
            )
        return self._make_report("failed", "")

    async def _completed(self, text: str) -> TaskReport:
        changes: ChangeSummary | None = None
        # The patch is recorded after every step that may change files: read it, no git.
        stat = summary_of(self.ref.patch) if self.ref and not self.ref.patch_truncated else None
        if stat is not None:
            changes = ChangeSummary(files=stat.files, added=stat.added, removed=stat.removed)
        elif self.ref is not None:
            changes = await self.ctx.run_typed(
                "summarise changes",
                self._changes,
                restate.RunOptions(max_attempts=3, type_hint=ChangeSummary),
            )
        await self._post_answer(text, changes)
        return self._make_report("completed", text, work=self._answer_work(), changes=changes)

    def _answer_work(self) -> list[WorkStep]:
        """The run's steps without its last model turn: that is the answer's own text."""
        last = self.work[-1] if self.work else None
        if last is not None and last.role == "assistant" and not last.tool_calls:
            return self.work[:-1]
        return self.work

    async def _changes(self) -> ChangeSummary:
        stat = await self.deps.workspaces.diff_stat(await self._workspace())
        return ChangeSummary(files=list(stat.files), added=stat.added, removed=stat.removed)

    async def _post_answer(self, text: str, changes: ChangeSummary | None) -> None:
        """The status message becomes the answer; each follow-up part is a step of its own,
        so a retry never posts a part twice; the diff is uploaded as a file."""
        opts = step_options(self.deps.slack_max_attempts)
        spent = Spent(steps=self.recorded_call, tokens=self.tokens, estimated=self.estimated)
        usage = usage_line(spent)
        summary = "\n".join(line for line in (change_line(changes), usage) if line)
        # A run stopped at its budget answers in our own words (mrkdwn already), not the model's.
        body = text if self.budget_stop is not None else to_mrkdwn(text)
        first, *more = split_for_slack(f"{body}\n\n{summary}")
        if self.view.streams_answer() and self.budget_stop is None:
            first, more = f"{DONE_TEXT}\n{usage}", []
        req = self.req
        # An answer that changed files ends with a Create PR button (on its last part).
        button = [ship_button(req.thread_key)] if changes is not None and changes.files else []
        await self.ctx.run_typed(
            "post answer",
            self.view.finish,
            opts,
            self.status_ts,
            first,
            "completed",
            [section(first), *button] if button and not more else None,
        )
        self.answered = True
        for number, part in enumerate(more, start=2):
            last = button if number == len(more) + 1 else []
            await self.ctx.run_typed(
                f"post answer part {number}",
                self.deps.slack.post,
                opts,
                req.channel_id,
                req.thread_ts,
                part,
                [section(part), *last],
            )
        if changes is not None and changes.files:
            await self.ctx.run_typed("upload diff", self._upload_diff, opts)

    async def _upload_diff(self) -> None:
        diff = await self.deps.workspaces.diff(await self._workspace())
        await self.deps.slack.upload(
            self.req.channel_id, self.req.thread_ts, diff, "changes.diff", "The agent's changes"
        )

    async def _react(self, outcome: str) -> None:
        if self.reacting is None:
            return
        with contextlib.suppress(TerminalError):
            await self.reacting
            await self.ctx.run_typed(
                f"react {outcome}", self.view.react, step_options(1), self.deps, outcome
            )

    def _make_report(
        self,
        outcome: TaskOutcome,
        text: str,
        work: list[WorkStep] | None = None,
        model_started: bool = True,
        status_ts: str | None = None,
        workspace: WorkspaceRef | None = None,
        changes: ChangeSummary | None = None,
        killed: list[str] | None = None,
        ended_at: float | None = None,
    ) -> TaskReport:
        return TaskReport(
            task_id=self.task_id,
            outcome=outcome,
            text=text,
            tokens=self.tokens,
            tokens_estimated=self.estimated,
            budget_added=self.budget_added,
            work=work or [],
            status_ts=status_ts or self.status_ts,
            model_started=model_started,
            # None when this run moved nothing on: an older workspace never overwrites a newer.
            workspace=ref if (ref := workspace or self.ref) != self.req.workspace else None,
            changes=changes,
            killed=killed or [],
            ended_at=ended_at,
            # Set only while a request waits (or its answer is not shown yet): a cut run's.
            approval=self.approvals.pending,
            steered=[step.ts for step in self.work if step.role == "user" and step.ts],
        )

    def _report(self, report: TaskReport) -> None:
        """The run's one report: one-way, never a call (that would deadlock the agent)."""
        self.ctx.object_send(coding_agent.task_ended, self.req.thread_key, report)
