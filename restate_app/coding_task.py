"""CodingTask: one run of the agent over a snapshot of a thread, and the thread's notices.

`run` is a tool-calling loop: a model call (streamed), the tool calls it asks for, their
results, the next model call, until the model answers without a tool call. Before each model
call the run checks its budgets (`restate_app/budgets.py`): at a limit it asks the thread to
Continue (one more budget) or to stop here, which ends it as completed. Each model call and
each tool call is its own named durable step, replayed from the journal after a crash, never
re-run once recorded (a command that was running when the process died does run again:
commands are at-least-once; file edits are idempotent).

When the agent cancels the run, the cancellation surfaces as a `TerminalError` (409) at the
pending await; the run closes its model stream and kills its running command at once and
ends with its report (its steps, the killed command's output so far, any partial text) as
its result, which `settle` hands to the agent. The agent started the replacement with the
reply: the replacement waits (bounded) for that result, puts it into the conversation and
makes its first model request, with no agent turn and no Slack call in between. The agent,
which knows why it cancelled, has the notice posted by `notice`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import restate
import structlog
from restate.exceptions import TerminalError
from structlog.contextvars import bound_contextvars

from common.contract import (
    TASK_SERVICE,
    Answer,
    Notice,
    RunBudget,
    Settle,
    ShipJob,
    ShipReport,
    TaskReport,
    TaskRequest,
    ToolCall,
    WorkspaceRef,
    WorkStep,
)
from restate_app import coding_agent
from restate_app.approvals import Approvals
from restate_app.deps import Deps, deps
from restate_app.errors import user_text
from restate_app.model_io import Completion, StreamTracker
from restate_app.prompts import conversation, work_messages
from restate_app.slack_stream import STREAM_METHOD, ModelTurn
from restate_app.status_text import about_line
from restate_app.steering import RunSteering, SteeringInbox
from restate_app.take_over import RunTakeOver, while_running
from restate_app.task_budgets import RunBudgets
from restate_app.task_endings import RunEndings
from restate_app.task_ship import ship_work
from restate_app.task_slack import (
    FAILED_TEXT,
    PROGRESS_METHOD,
    StatusView,
    known,
    post_notice,
)
from restate_app.task_steps import (
    Prepared,
    step_options,
    unique_ids,
)
from restate_app.task_tools import RunTools
from restate_app.tools.commands import CommandTracker
from restate_app.tools.instructions import read_root
from restate_app.tools.registry import TOOL_SCHEMAS
from restate_app.tools.workspace import WorkspaceError

log = structlog.get_logger(__name__)
T = TypeVar("T")


coding_task = restate.Service(
    TASK_SERVICE,
    description="One run of the coding agent over a snapshot of a Slack thread.",
    # A model step can stream, and a command run, for minutes: Restate's defaults (1 min,
    # 10 min) would kill them.
    inactivity_timeout=timedelta(minutes=35),
    abort_timeout=timedelta(minutes=35),
    # A replacement reads the report of the run it replaces from that run's result, which may
    # have ended moments before: keep ended runs (and their journals) around for a while.
    journal_retention=timedelta(hours=1),
)


@coding_task.handler()
async def run(ctx: restate.Context, req: TaskRequest) -> TaskReport:
    """Work on the thread's latest request with the tools; on cancellation clean up, re-raise."""
    task_id = ctx.request().id
    with bound_contextvars(thread=req.thread_key, invocation=task_id):
        return await AgentRun(ctx, deps(), req, task_id).run()


@coding_task.handler()
async def settle(ctx: restate.Context, req: Settle) -> None:
    """Wait for a cancelled task to end, then hand its report (its result) to the agent.

    Sent by the agent when it cancels a task and by the task when it sees the cancel, with one
    idempotency key, so one runs. A task cancelled before Restate ever ran it ends without
    running our code: this stands in for its report (cancelled before it did anything)."""
    try:
        report = await ctx.attach_invocation(req.task_id, type_hint=TaskReport)
    except TerminalError:
        report = TaskReport(
            task_id=req.task_id, outcome="cancelled", model_started=False, stand_in=True
        )
    ctx.object_send(coding_agent.task_ended, req.thread_key, report)


def send_settle(ctx: restate.Context, task_id: str, thread_key: str) -> None:
    """Have `settle` hand the cancelled task's report to the agent (once, whoever asks)."""
    ctx.service_send(
        settle, Settle(task_id=task_id, thread_key=thread_key), idempotency_key=f"settle:{task_id}"
    )


@coding_task.handler()
async def ship(ctx: restate.Context, job: ShipJob) -> ShipReport:
    """Push the thread's work to its branch and open (or update) its draft pull request, once
    a person in the thread approves; the agent hears how it ended."""
    with bound_contextvars(thread=job.thread_key):
        try:
            report = await ship_work(ctx, deps(), job)
        except TerminalError as err:
            log.warning("ship_failed", error=err.message)
            report = ShipReport(job=job.job, outcome="failed", detail=err.message)
    ctx.object_send(coding_agent.shipped, job.thread_key, report)
    return report


@coding_task.handler()
async def notice(ctx: restate.Context, note: Notice) -> None:
    """Tell the thread how a cancelled run ended (sent by the agent, exactly once)."""
    with bound_contextvars(thread=note.thread_key):
        await post_notice(ctx, deps(), note)


class AgentRun(RunTools, RunBudgets, RunSteering, RunTakeOver, RunEndings):
    """One run's loop, steps and cleanup, sharing its context, request and trackers."""

    def __init__(self, ctx: restate.Context, deps: Deps, req: TaskRequest, task_id: str):
        self.ctx, self.deps, self.req, self.task_id = ctx, deps, req, task_id
        self.tracker = StreamTracker()
        self.work: list[WorkStep] = []
        self.ref: WorkspaceRef | None = req.workspace
        # The conversation this run answers: the request's, with what the runs it replaces did.
        self.turns = req.turns
        # Whether the agent cancelled this run, and whether its answer was posted.
        self.cut = False
        self.answered = False
        # Reports of the runs this one replaces that showed nothing in the thread.
        self.unseen: list[TaskReport] = []
        self.commands: dict[str, CommandTracker] = {}
        self.started: dict[str, float] = {}
        self.inflight: set[asyncio.Task[Any]] = set()
        # The number of the model call streaming now, and of the last one recorded: a cancel
        # between the two leaves partial text that only the tracker has.
        self.streaming_call = 0
        self.recorded_call = 0
        # Model tokens used (prompt and completion, over the calls), estimated where a server
        # sent no usage; the limits the run works within (raised by Continue) and the tokens its
        # Continues added to the thread's budget; why it stopped at a budget.
        self.tokens = 0
        self.estimated = False
        limits = deps.limits
        self.base = req.budget or RunBudget(steps=limits.run_steps, tokens=limits.run_tokens)
        self.budget = self.base
        self.budget_added = 0
        self.budget_stop: Answer | None = None
        self.status_ts: str | None = None
        self.status: restate.RestateDurableFuture[str] | None = None
        self.reacting: restate.RestateDurableFuture[None] | None = None
        self.problem: str | None = None
        # Whether this process has checked the workspace against `ref` in this run.
        self.synced = False
        self.view = StatusView(deps.slack, req, streaming=deps.streaming)
        self.approvals = Approvals(ctx, deps, req, task_id)
        # The model every call of this run uses (empty: the client's default).
        self.model = ""
        # Steering messages (the `steer` policy) reach the run through these.
        self.inbox = SteeringInbox(ctx, req.thread_key, task_id)

    # ------------------------------------------------------------------ the run
    async def run(self) -> TaskReport:
        # While the run is on, its live updates share the method's rate with the others.
        method = STREAM_METHOD if self.deps.streaming else PROGRESS_METHOD
        with self.deps.slack.limiter.stream(method):
            report = await self._run()
        if report.outcome == "completed" and report.task_id == self.task_id and not self.cut:
            # The trigger's reaction says how the run ended: after the report, as reactions
            # wait behind every other Slack call and nothing should wait for them.
            await self._react(report.outcome)
        return report

    async def _run(self) -> TaskReport:
        text: str | None = None
        try:
            text = await self._work()
            report = await self._completed(text)
        except TerminalError as err:
            await self._stop_inflight()
            # A cancelled run ends with its report, not an error: the replacement, which
            # started at once, reads it from this invocation's result.
            self.cut = err.status_code == 409
            if self.cut:
                return await self._cut(text)
            log.warning("task_failed", error=err.message)
            report = await self._failed(self.problem or user_text(err) or FAILED_TEXT)
            self._report(report)
            await self._react("failed")
            raise TerminalError("the run failed", 500) from None
        self._report(report)
        log.info("task_completed", chars=len(text), tokens=self.tokens, steps=len(self.work))
        return report

    async def _cut(self, text: str | None) -> TaskReport:
        """The report of a run the agent cancelled, as this invocation's result.

        What the run had in flight (text being streamed, commands killed) is read here, not
        recorded in a step first: the result is durable once the run ends, and the step's round
        trip sat on the restart path. Nothing journaled on the way may depend on it (a replay
        would not match): the report reaches the agent through `settle`, which reads it from
        the result, sent with the agent's own idempotency key so only one runs.
        """
        if text is not None and self.answered:
            # Cancelled after the answer was posted (its follow-up parts or the diff were still
            # going out): it is an answer.
            report = self._make_report("completed", text, work=self._answer_work())
        else:
            # Cancelled before the answer showed (the model had finished, but its post was
            # still waiting for its turn at Slack, or the changes were being summarised): like
            # text cut off mid-stream, the status message becomes the notice, quoting it.
            report = await self._cancelled(unshown=text)
        send_settle(self.ctx, self.task_id, self.req.thread_key)
        return report

    async def _work(self) -> str:
        ctx, slack_opts = self.ctx, step_options(self.deps.slack_max_attempts)
        repo = self._choose()
        tools = repo is not None

        def side_steps() -> None:
            self.status = ctx.run_typed("post status", self.view.post_status, slack_opts)
            self.reacting = ctx.run_typed(
                "react working", self.view.react, step_options(1), self.deps, None
            )

        # The first model call is the run's first step, so its request goes out before anything
        # else; the status message is posted, and a new session's repository checked out, while
        # it streams: a restart's model request waits for neither Slack nor git. A known
        # workspace is checked at the first tool call that needs it. A replacement first waits
        # (bounded) for the runs it replaces to record what they did, and continues from that.
        if self.req.awaiting:
            await self._take_over()
        if not await self._within_budget():
            # Only the thread's budget can be used up before the run's first call.
            await self._post_unseen([])
            return self._budget_answer()
        step = self._model_step(1, tools)
        # A cut run that showed nothing yet (its status message was still waiting for its turn
        # at Slack) gets its notice here, posted before this run's status message.
        await self._post_unseen([step])
        side_steps()
        if self.req.steering:
            self.inbox.open()
        preparing = None
        if repo is not None and self.ref is None:
            preparing = ctx.run_typed("prepare workspace", self._prepare, step_options(3), repo)
        alongside = [f for f in (self.status, self.reacting, preparing) if f is not None]
        number = 1
        while True:
            if number > 1:
                if not await self._within_budget():
                    return self._budget_answer()
                steered = await self._take_steering(step)
                step = self._model_step(number, tools)
                alongside = self._ack_steering(number, steered)
            completion = await self._model_done(number, step, alongside)
            alongside = []
            if self.status_ts is None and self.status is not None:
                self.status_ts = await self.status
                # Replayed (resumed after a long wait for approval, or on another process),
                # the view did not post it: it updates the message it finds in the journal.
                self.view.status_ts = self.view.status_ts or self.status_ts
            if preparing is not None:
                prepared, preparing = await preparing, None
                if prepared.problem:
                    self._fail(prepared.problem)
                self.ref = prepared.workspace
            if not completion.tool_calls:
                return completion.text
            # Inboxes used while the model streamed are replaced before the tool calls run,
            # so that messages sent during a long call reach the next model call too.
            await self.inbox.poll(step, take=False)
            await self._run_tools(number, completion.tool_calls)
            number += 1

    def _choose(self) -> str | None:
        """The run's repository (None: it has none) and model: the ones the thread picked,
        else the defaults; a name that is not configured ends the run, saying which are."""
        deps, req = self.deps, self.req
        repo = self.ref.repo if self.ref else deps.repos.resolve(req.repo, self._channel)
        # The thread keeps its first mention's pick: only a new thread can pick another.
        again = "Mention me in a new thread to pick another one."
        if repo is None and req.repo:
            names = known(deps.repos.named)
            self._fail(f"I know no repository called `{req.repo}` ({names})", again)
        model = deps.models.resolve(req.model)
        if model is None:
            self._fail(f"I know no model called `{req.model}` ({known(deps.models.named)})", again)
        self.model = model
        self.view.about = about_line(repo and deps.repos.label(repo), req.model, model)
        return repo

    def _fail(self, problem: str, then: str = "Reply in this thread to try again.") -> NoReturn:
        self.problem = f":warning: Sorry, {problem}. {then}"
        raise TerminalError(problem, 500)

    async def _prepare(self, repo: str) -> Prepared:
        """Open the thread's workspace (made at its first run, rebuilt where missing)."""
        try:
            ws = await self.deps.workspaces.open(self.req.thread_key, self.ref, repo, sync=True)
            self.synced = True
        except WorkspaceError as exc:
            log.warning("workspace_failed", error=str(exc))
            return Prepared(problem="I could not check out the repository")
        text = await read_root(ws.root, self.deps.instructions_max_bytes)
        return Prepared(workspace=ws.ref.model_copy(update={"instructions": text}))

    @property
    def _channel(self) -> str:
        return self.req.channel_id

    def _model_step(self, number: int, tools: bool) -> restate.RestateDurableFuture[ModelTurn]:
        instructions = self.ref.instructions if self.ref else ""
        history = conversation(self.turns, instructions, workspace=tools)
        messages = history + work_messages(self.work, workspace=tools)
        return self.ctx.run_typed(
            f"call model {number}",
            self._stream,
            step_options(self.deps.model_max_attempts),
            messages=messages,
            with_tools=tools,
            number=number,
        )

    async def _model_done(
        self,
        number: int,
        step: restate.RestateDurableFuture[ModelTurn],
        alongside: Sequence[restate.RestateDurableFuture[Any]] = (),
    ) -> Completion:
        completion = await while_running(step, alongside)
        self.view.resume(completion)
        self.recorded_call = number
        self.tokens += completion.tokens
        self.estimated = self.estimated or completion.estimated
        calls = unique_ids(completion.tool_calls, number, {c.id for c in self._calls()})
        completion = completion.model_copy(update={"tool_calls": calls})
        self.work.append(WorkStep(role="assistant", text=completion.text, tool_calls=calls))
        return completion

    def _calls(self) -> list[ToolCall]:
        return [call for step in self.work for call in step.tool_calls]

    async def _stream(self, messages: Any, with_tools: bool, number: int) -> ModelTurn:
        self.streaming_call = number
        self.view.new_turn()
        completion = await self.deps.model.stream(
            messages,
            self.tracker,
            on_text=self.view.show_text,
            tools=TOOL_SCHEMAS if with_tools else None,
            model=self.model,
        )
        return self.view.streamed(completion)
