"""A run's side of the `steer` policy: the inboxes it opens for steering messages, and the
messages it takes into its conversation before a model call.

A `CodingTask` run is a service invocation, which nobody can call: it opens a few awakeables
(its inboxes) and tells its agent their ids one-way (never a call: the agent's exclusive
handler may itself be waiting), and the agent resolves one with every steering message not yet
sent (`session_steering.py`). The run looks into its inboxes only between steps, never in the
middle of a tool call, and takes what arrived just before its next model call.

Replays see the same delivery points: the SDK counts a future completed only once the
invocation has consumed its notification, and it consumes notifications in journal order, one
await at a time (restate-sdk-shared-core's `AsyncResultsState`). Which inboxes look resolved
right after a given step is therefore fixed by the journal, and needs no step of its own.
"""

from __future__ import annotations

from typing import Any

import restate
import structlog
from restate.exceptions import TerminalError

from common.contract import Steering, TaskInbox, TaskRequest, Turn, WorkStep
from restate_app import coding_agent
from restate_app.deps import Deps
from restate_app.session_steering import steered_step
from restate_app.task_slack import StatusView
from restate_app.task_steps import step_options
from restate_app.turns import ts_key

log = structlog.get_logger(__name__)

# Inboxes a run keeps open: each takes one delivery (every message the agent has by then), so
# a few let messages that come one by one during a long tool call all reach the next model call.
OPEN_INBOXES = 3


class SteeringInbox:
    """The open inboxes of one run, and the steering messages it has taken in."""

    def __init__(self, ctx: restate.Context, thread_key: str, task_id: str) -> None:
        self.ctx, self.thread_key, self.task_id = ctx, thread_key, task_id
        self._open: list[restate.RestateDurableFuture[Steering]] = []
        self._arrived: list[Turn] = []
        self.taken: list[str] = []

    def open(self) -> None:
        """Open the run's inboxes and tell the agent (no await: nothing waits for it)."""
        self._tell(self._refill(), [])

    async def poll(self, done: restate.RestateDurableFuture[Any], take: bool) -> list[Turn]:
        """Collect what the inboxes have brought by now and open new ones for those used;
        with `take`, what arrived is taken in: returned in Slack order, each message once.

        `done` is a step the run has awaited: the SDK's public API has no non-blocking look at
        a future, but `wait_completed` with one already completed returns at once, with every
        other future already completed."""
        opened = await self._collect(done)
        turns = self._take() if take else []
        if opened or turns:
            self._tell(opened, [turn.ts or "" for turn in turns])
        return turns

    async def _collect(self, done: restate.RestateDurableFuture[Any]) -> list[str]:
        if not self._open:
            return []
        completed, _ = await restate.wait_completed(done, *self._open)
        used = [inbox for inbox in self._open if any(inbox is f for f in completed)]
        if not used:
            return []
        self._open = [inbox for inbox in self._open if not any(inbox is u for u in used)]
        for inbox in used:
            try:
                delivery = await inbox
            except TerminalError:  # the agent never rejects one: nothing came
                continue
            self._arrived.extend(delivery.turns)
        return self._refill()

    def _take(self) -> list[Turn]:
        fresh = {t.ts: t for t in self._arrived if t.ts not in self.taken}
        self._arrived = []
        turns = sorted(fresh.values(), key=lambda t: ts_key(t.ts))
        self.taken += [turn.ts or "" for turn in turns]
        return turns

    def _refill(self) -> list[str]:
        opened = []
        while len(self._open) < OPEN_INBOXES:
            name, future = self.ctx.awakeable(type_hint=Steering)
            self._open.append(future)
            opened.append(name)
        return opened

    def _tell(self, opened: list[str], taken: list[str]) -> None:
        """One-way, never a call: an exclusive handler waiting on this run would deadlock."""
        update = TaskInbox(task_id=self.task_id, inboxes=opened, taken=taken)
        self.ctx.object_send(coding_agent.inbox, self.thread_key, update)


def work_step(turn: Turn) -> WorkStep:
    """A steering message in the run's transcript, where the run took it in."""
    return WorkStep(role="user", text=turn.text, user_id=turn.user_id, ts=turn.ts, files=turn.files)


async def react_steered(deps: Deps, channel: str, messages: list[str]) -> None:
    """The acknowledgement on steering messages the run took in (never raises: cosmetic)."""
    for ts in messages:
        await deps.slack.react(channel, ts, add=deps.reactions.steered)


class RunSteering:
    """How a run takes steering messages in; a mixin of `AgentRun`, whose state it reads."""

    ctx: restate.Context
    deps: Deps
    req: TaskRequest
    work: list[WorkStep]
    view: StatusView
    inbox: SteeringInbox

    async def _take_steering(self, done: restate.RestateDurableFuture[Any]) -> list[Turn]:
        """Steering messages that have arrived join the transcript before the next model
        call (after the tool calls, which have all finished)."""
        turns = await self.inbox.poll(done, take=True)
        for turn in turns:
            self.work.append(work_step(turn))
            self.view.note(f"steered {turn.ts}", steered_step(turn))
        if turns:
            log.info("task_took_steering", messages=len(turns))
        return turns

    def _ack_steering(
        self, number: int, turns: list[Turn]
    ) -> list[restate.RestateDurableFuture[Any]]:
        """The steering messages' reaction, while the model call they joined streams."""
        if not turns or not self.deps.reactions.steered:
            return []
        messages = [turn.ts or "" for turn in turns]
        options = step_options(1)
        channel = self.req.channel_id
        name = f"react steered {number}"
        return [self.ctx.run_typed(name, react_steered, options, self.deps, channel, messages)]
