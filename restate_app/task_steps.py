"""What the steps of a `CodingTask` run journal, and the small pure helpers around them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import restate
from pydantic import BaseModel

from common.contract import ToolCall, WorkspaceRef, WorkStep
from restate_app.tools.instructions import Note
from restate_app.tools.registry import ToolResult

READ_ONLY_TOOLS = frozenset({"list_files", "read_file", "search", "show_diff"})


def step_options(max_attempts: int) -> restate.RunOptions[Any]:
    return restate.RunOptions(
        max_attempts=max_attempts,
        initial_retry_interval=timedelta(milliseconds=500),
        retry_interval_factor=2.0,
        max_retry_interval=timedelta(seconds=10),
    )


class ToolStep(BaseModel):
    """What one tool step returns, and so what its journal entry holds."""

    result: ToolResult
    # The workspace after the step, when the step changed it.
    workspace: WorkspaceRef | None = None
    # The `AGENTS.md` files of the directories the call worked in (shown once, when new).
    notes: list[Note] = []


class Prepared(BaseModel):
    workspace: WorkspaceRef | None = None
    problem: str | None = None


class Partial(BaseModel):
    """What a cancelled run had in flight when the cancel landed, journaled for its report."""

    text: str
    killed: list[WorkStep]
    model_started: bool
    status_ts: str | None = None
    workspace: WorkspaceRef | None = None
    killed_lines: list[str] = []
    recorded_at: float = 0.0


def unique_ids(calls: list[ToolCall], number: int, taken: set[str]) -> list[ToolCall]:
    """Tool call ids unique within the run: the model's own, unless missing or repeated."""
    unique = []
    for index, call in enumerate(calls, 1):
        if not call.id or call.id in taken:
            call = call.model_copy(update={"id": f"call_{number}_{index}"})
        taken.add(call.id)
        unique.append(call)
    return unique


def arguments_of(call: ToolCall) -> dict[str, Any]:
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
