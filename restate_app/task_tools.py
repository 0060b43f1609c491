"""How a run carries out the tool calls the model asks for: each a named durable step in the
thread's workspace, read-only ones of one model turn together, and one progress report to
the agent per turn. A command matching `AGENT_APPROVAL_PATTERNS` waits for a person's
Approve in the thread first; a Deny or no answer in time is the call's result for the model.

A mixin of `AgentRun` (`restate_app/coding_task.py`): the state it reads is the run's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import aiohttp
import restate

from common.contract import (
    Answer,
    TaskProgress,
    TaskRequest,
    ToolCall,
    ToolRecord,
    Turn,
    WorkspaceRef,
    WorkStep,
)
from common.file_refs import FileRef
from common.slack_files import allowed_hosts, download
from restate_app import coding_agent
from restate_app.approval_view import duration, who
from restate_app.approvals import Approvals
from restate_app.deps import Deps
from restate_app.task_slack import StatusView
from restate_app.task_steps import READ_ONLY_TOOLS, ToolStep, arguments_of, step_options
from restate_app.tools.approval_patterns import Risk
from restate_app.tools.commands import CommandTracker
from restate_app.tools.instructions import notes_for, seen_in, unseen
from restate_app.tools.registry import ToolResult, call_tool, describe
from restate_app.tools.shared_files import copy_shared, shared_in
from restate_app.tools.workspace import Workspace, WorkspaceError

# How long one shared file may take to download into the workspace.
FILE_SECONDS = 30.0


class RunTools:
    """The tool calls of one run; `AgentRun` holds the state they read."""

    ctx: restate.Context
    deps: Deps
    req: TaskRequest
    task_id: str
    turns: list[Turn]
    work: list[WorkStep]
    ref: WorkspaceRef | None
    commands: dict[str, CommandTracker]
    started: dict[str, float]
    inflight: set[asyncio.Task[Any]]
    tokens: int
    estimated: bool
    budget_added: int
    status_ts: str | None
    synced: bool
    view: StatusView
    approvals: Approvals

    async def _run_tools(self, number: int, calls: list[ToolCall]) -> None:
        """The calls of one model turn: read-only ones together, the others one by one."""
        steps = [
            (f"tool {number}.{index} {call.name}", call) for index, call in enumerate(calls, 1)
        ]
        self._progress(describe(calls[0].name, arguments_of(calls[0])))
        if all(call.name in READ_ONLY_TOOLS for call in calls):
            futures = [self._tool_step(name, call) for name, call in steps]
            await restate.gather(*futures)  # a step runs once awaited: await them together
            results = [await future for future in futures]
        else:
            results = [await self._approved_step(name, call) for name, call in steps]
        records = [self._record_tool(call, step) for call, step in zip(calls, results, strict=True)]
        # One progress report per model turn: each is a turn of the agent's exclusive queue.
        changed = next((s.workspace for s in reversed(results) if s.workspace), None)
        self._progress(records[-1].summary, tools=records, workspace=changed)

    def _tool_step(
        self, name: str, call: ToolCall, network: bool = False
    ) -> restate.RestateDurableFuture[ToolStep]:
        return self.ctx.run_typed(name, self._tool, step_options(3), call, network)

    async def _approved_step(self, name: str, call: ToolCall) -> ToolStep:
        """The call's step, after a person's Approve when it needs one; else why it did not
        run. The decision is pure (the call and the settings), so a replay asks the same."""
        command = arguments_of(call).get("command") if call.name == "run_command" else None
        risk = self.deps.approval_rules.check(command) if isinstance(command, str) else None
        if risk is None or not isinstance(command, str):
            return await self._tool_step(name, call)
        # The network is the approval's to turn on only where the operator keeps it off.
        risk = dataclasses.replace(risk, network=risk.network and not self.deps.sandbox.network)
        answer = await self._ask(call, command, risk)
        if not answer.approved:
            self.view.refused(call.id, "denied" if answer.outcome == "denied" else "not run")
            return ToolStep(result=refusal(answer, self.approvals.timeout_seconds))
        step = await self._tool_step(name, call, network=risk.network)
        network = "; network on for this command" if risk.network else ""
        content = f"[approved by {who(answer)}{network}]\n{step.result.content}"
        return step.model_copy(
            update={"result": step.result.model_copy(update={"content": content})}
        )

    async def _ask(self, call: ToolCall, command: str, risk: Risk) -> Answer:
        line = describe(call.name, arguments_of(call))
        self._progress(f"Waiting for approval: {line}")

        async def waiting() -> None:
            await self.view.waiting(call.id, line)

        why = ", ".join(risk.reasons)
        return await self.approvals.ask(command, "command", why, risk.network, waiting)

    def _record_tool(self, call: ToolCall, step: ToolStep) -> ToolRecord:
        result = step.result
        text = result.content + unseen(step.notes, self.turns, self.work, self.ref)
        self.work.append(WorkStep(role="tool", text=text, tool_call_id=call.id, name=call.name))
        if step.workspace is not None:
            self.ref = step.workspace
        record = ToolRecord(
            name=call.name,
            summary=describe(call.name, arguments_of(call)),
            seconds=round(result.duration_seconds, 3),
            exit_code=result.exit_code,
            ok=not result.is_error,
            killed=result.killed,
        )
        return record

    async def _tool(self, call: ToolCall, network: bool = False) -> ToolStep:
        """Run one tool call in the workspace; a cancellation kills what it started. `network`:
        a person approved this command, network on."""
        current = asyncio.current_task()
        assert current is not None
        self.inflight.add(current)
        tracker = self.commands.setdefault(call.id, CommandTracker())
        self.started[call.id] = time.monotonic()
        activity = self.view.tool_started(call.id, describe(call.name, arguments_of(call)))
        try:
            try:
                ws = await self._workspace()
            except WorkspaceError as exc:
                failed = ToolResult(content=f"error: {exc}", is_error=True, changes_files=False)
                return ToolStep(result=failed)
            sandbox = self.deps.sandbox
            if network:
                sandbox = dataclasses.replace(sandbox, network=True)
            result = await call_tool(
                ws,
                self.deps.workspaces,
                sandbox,
                call.name,
                call.arguments,
                tracker,
            )
            changed = None
            if call.name not in READ_ONLY_TOOLS:
                ref = await self.deps.workspaces.patch(ws)
                changed = ref if ref != self.ref else None
            self.view.tool_ended(call.id, result)
            limit = 0 if result.is_error else self.deps.instructions_max_bytes
            notes = await notes_for(ws, call, limit, seen_in(self.turns, self.work, self.ref))
            return ToolStep(result=result, workspace=changed, notes=notes)
        finally:
            activity.cancel()
            self.inflight.discard(current)

    async def _workspace(self) -> Workspace:
        """The workspace, checked against the recorded changes once per process: a step
        replayed elsewhere after a crash may find an older checkout there."""
        if self.ref is None:
            raise WorkspaceError("this session has no repository to work on")
        ws = await self.deps.workspaces.open(
            self.req.thread_key, self.ref, self.ref.repo, sync=not self.synced
        )
        self.synced = True
        await copy_shared(ws.root, shared_in(self.turns, self.work), self._fetch_file)
        return ws

    async def _fetch_file(self, ref: FileRef, max_bytes: int) -> bytes | None:
        """A shared file's bytes, read with the bot token from Slack's file host."""
        client = self.deps.slack.client
        hosts, token = allowed_hosts(client.base_url), client.token or ""
        async with asyncio.timeout(FILE_SECONDS):
            if client.session is not None:
                return await download(client.session, token, ref.id, ref.url, hosts, max_bytes)
            async with aiohttp.ClientSession() as session:
                return await download(session, token, ref.id, ref.url, hosts, max_bytes)

    def _progress(
        self,
        step: str,
        tools: list[ToolRecord] | None = None,
        workspace: WorkspaceRef | None = None,
    ) -> None:
        update = TaskProgress(
            task_id=self.task_id,
            step=step,
            tokens=self.tokens,
            tokens_estimated=self.estimated,
            budget_added=self.budget_added,
            status_ts=self.status_ts,
            tools=tools or [],
            workspace=workspace,
        )
        self.ctx.object_send(coding_agent.progress, self.req.thread_key, update)


def refusal(answer: Answer, timeout_seconds: float) -> ToolResult:
    """What the model hears of a command nobody approved: why, in a sentence."""
    match answer.outcome:
        case "denied":
            why = f"{who(answer)} denied it."
        case "timed_out":
            why = f"nobody approved it within {duration(timeout_seconds)}."
        case _:
            why = "it needs a person's approval, and I could not ask for it in Slack."
    return ToolResult(content=f"The command was not run: {why}", is_error=True, changes_files=False)
