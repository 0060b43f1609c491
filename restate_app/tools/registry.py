"""The contract's tools: their schemas for the model, argument checking, one-line
descriptions for Slack, and `call_tool`, which runs one call and never raises a tool error.

The names and arguments are part of the wire contract (ARCHITECTURE.md): renaming one is a
breaking change for conversations already stored.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog
from openai.types.chat import ChatCompletionToolParam
from pydantic import BaseModel

from restate_app.tools import files, search
from restate_app.tools.bounds import clip, clip_output
from restate_app.tools.commands import CommandResult, CommandTracker, SandboxError, run_command
from restate_app.tools.files import ToolError
from restate_app.tools.sandbox import SandboxConfig
from restate_app.tools.workspace import Workspace, WorkspaceError, Workspaces

log = structlog.get_logger(__name__)

MAX_RESULT_CHARS = 64_000
MAX_ERROR_CHARS = 2_000
CHANGING_TOOLS = frozenset({"edit_file", "write_file", "run_command"})

Kind = Literal["string", "integer", "number"]


@dataclass(frozen=True)
class Arg:
    name: str
    kind: Kind
    description: str
    required: bool = True


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: tuple[Arg, ...] = ()


_PATH = "Path relative to the workspace root (the repository's top directory)."
TOOLS: tuple[Tool, ...] = (
    Tool(
        "list_files",
        "List the files and directories under a directory of the workspace, recursively, "
        "sorted (directories end in `/`; `.git` is left out). Long listings are cut.",
        (Arg("path", "string", _PATH + " Defaults to the root.", required=False),),
    ),
    Tool(
        "read_file",
        "Read a text file with numbered lines, at most 400 lines at a time; use start_line "
        "and end_line (1-based, inclusive) to read a part or the next window.",
        (
            Arg("path", "string", _PATH),
            Arg("start_line", "integer", "First line to show (1-based).", required=False),
            Arg("end_line", "integer", "Last line to show (inclusive).", required=False),
        ),
    ),
    Tool(
        "search",
        "Search the files for a regular expression (ripgrep syntax); answers "
        "`path:line:text` lines. Files ignored by .gitignore are skipped.",
        (
            Arg("pattern", "string", "Regular expression to look for."),
            Arg("path", "string", _PATH + " A directory or file; defaults to all.", False),
        ),
    ),
    Tool(
        "edit_file",
        "Replace one exact piece of a file: old_text must occur exactly once in the file "
        "(copy it from read_file, with its indentation, without the line numbers) and is "
        "replaced by new_text. Include enough surrounding lines to make old_text unique.",
        (
            Arg("path", "string", _PATH),
            Arg("old_text", "string", "The exact text to replace; it must occur once."),
            Arg("new_text", "string", "The text to put in its place."),
        ),
    ),
    Tool(
        "write_file",
        "Create a file, or replace a file's whole content (directories are created). "
        "Prefer edit_file for changes to an existing file.",
        (Arg("path", "string", _PATH), Arg("content", "string", "The file's new content.")),
    ),
    Tool(
        "run_command",
        "Run a shell command in the workspace root, in a sandbox: the workspace is "
        "writable, the rest of the system read-only, no network unless the operator allowed "
        "it. Use it for tests, linters, "
        "builds. Answers the exit code and the output (long output is cut to its head and "
        "tail). A command can run again after a crash, so prefer idempotent ones. Commands "
        "that reach the network, install packages, push, or delete files outside build "
        "outputs may wait for a person in the thread to approve them (then they run, with the "
        "network on if they need it); if nobody does, the result says so: work without it.",
        (
            Arg("command", "string", "The shell command, e.g. `python3 -m pytest -q`."),
            Arg(
                "timeout_seconds",
                "number",
                "Stop the command after this many seconds (default 600, at most 1800).",
                required=False,
            ),
        ),
    ),
    Tool("show_diff", "Show the workspace's changes against the commit it started from."),
)
_BY_NAME = {tool.name: tool for tool in TOOLS}


def _schema(tool: Tool) -> ChatCompletionToolParam:
    properties = {a.name: {"type": a.kind, "description": a.description} for a in tool.args}
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": [a.name for a in tool.args if a.required],
                "additionalProperties": False,
            },
        },
    }


TOOL_SCHEMAS: list[ChatCompletionToolParam] = [_schema(tool) for tool in TOOLS]


class ToolResult(BaseModel):
    content: str  # what the model sees, bounded
    is_error: bool = False
    exit_code: int | None = None
    killed: bool = False
    timed_out: bool = False
    changes_files: bool  # the call may have changed the work tree
    duration_seconds: float = 0


# ---------------------------------------------------------------------------- arguments


def parse_arguments(name: str, arguments_json: str) -> dict[str, Any]:
    """The call's arguments, checked against its schema; a `ToolError` says what is wrong."""
    tool = _BY_NAME.get(name)
    if tool is None:
        raise ToolError(f"there is no tool called {name!r}; the tools are: {', '.join(_BY_NAME)}")
    try:
        raw = json.loads(arguments_json) if arguments_json.strip() else {}
    except json.JSONDecodeError as exc:
        raise ToolError(f"the arguments of {name} are not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ToolError(f"the arguments of {name} must be a JSON object")
    known = {a.name: a for a in tool.args}
    if unknown := sorted(set(raw) - set(known)):
        raise ToolError(f"{name} has no argument {', '.join(unknown)}; it takes: {_takes(tool)}")
    args = {k: v for k, v in raw.items() if v is not None}
    for arg in tool.args:
        if arg.name not in args:
            if arg.required:
                raise ToolError(f"{name} needs the argument {arg.name!r} ({arg.kind})")
            continue
        args[arg.name] = _typed(name, arg, args[arg.name])
    return args


def _takes(tool: Tool) -> str:
    return ", ".join(a.name + ("" if a.required else "?") for a in tool.args) or "nothing"


def _typed(tool: str, arg: Arg, value: object) -> object:
    if arg.kind == "string" and isinstance(value, str):
        return value
    if isinstance(value, bool):
        pass  # JSON true/false is not a number
    elif arg.kind == "integer" and isinstance(value, int | float) and value == int(value):
        return int(value)
    elif arg.kind == "number" and isinstance(value, int | float):
        return float(value)
    raise ToolError(f"the argument {arg.name!r} of {tool} must be a {arg.kind}, not {value!r}")


# ------------------------------------------------------------------------- descriptions


def describe(name: str, args: Mapping[str, Any]) -> str:
    """A short line for the Slack status message, e.g. "Running `pytest -q`"."""
    path = args.get("path")
    shown = _code(path, 60) if isinstance(path, str) and path not in ("", ".") else None
    match name:
        case "list_files":
            return f"Listing files in {shown}" if shown else "Listing files"
        case "read_file":
            return f"Reading {shown or '`?`'}"
        case "search":
            where = f" in {shown}" if shown else ""
            return f"Searching for {_code(args.get('pattern'), 40)}{where}"
        case "edit_file":
            return f"Editing {shown or '`?`'}"
        case "write_file":
            return f"Writing {shown or '`?`'}"
        case "run_command":
            return f"Running {_code(args.get('command'), 60)}"
        case "show_diff":
            return "Showing the diff"
    return f"Calling {_code(name, 40)}"


def _code(value: object, limit: int) -> str:
    """`value` as one line of inline code: backticks neutralised, shortened to `limit`."""
    text = re.sub(r"\s+", " ", str(value or "")).strip().replace("`", "'")
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return f"`{text or '?'}`"


# ------------------------------------------------------------------------------ calling


async def call_tool(
    ws: Workspace,
    workspaces: Workspaces,
    sandbox: SandboxConfig,
    name: str,
    arguments_json: str,
    tracker: CommandTracker,
) -> ToolResult:
    """Run one tool call. Its failures come back as an error result for the model; only a
    cancellation propagates (after the running command was killed)."""
    started = time.monotonic()
    changes = name in CHANGING_TOOLS
    try:
        args = parse_arguments(name, arguments_json)
        with workspaces.in_use(ws):
            if name == "run_command":
                return _command_result(sandbox, args, await _run(ws, sandbox, args, tracker))
            content = await _FILE_TOOLS[name](ws, args)
    except (ToolError, SandboxError, WorkspaceError) as exc:
        return _error(str(exc), changes, started)
    except OSError as exc:
        where = f": {Path(exc.filename).name}" if isinstance(exc.filename, str) else ""
        return _error(f"{exc.strerror or type(exc).__name__}{where}", changes, started)
    except Exception as exc:  # a bug must not end the run: the model hears of it, the log too
        log.exception("tool_failed", tool=name)
        return _error(f"the tool failed unexpectedly ({type(exc).__name__})", changes, started)
    return ToolResult(
        content=clip(content, MAX_RESULT_CHARS),
        changes_files=changes,
        duration_seconds=time.monotonic() - started,
    )


def _error(message: str, changes: bool, started: float) -> ToolResult:
    return ToolResult(
        content="error: " + clip(message, MAX_ERROR_CHARS),
        is_error=True,
        changes_files=changes,
        duration_seconds=time.monotonic() - started,
    )


async def _run(
    ws: Workspace, sandbox: SandboxConfig, args: dict[str, Any], tracker: CommandTracker
) -> CommandResult:
    if not args["command"].strip():
        raise ToolError("the command is empty")
    return await run_command(
        sandbox, ws.root, args["command"], args.get("timeout_seconds"), tracker
    )


def _command_result(sandbox: SandboxConfig, args: dict[str, Any], r: CommandResult) -> ToolResult:
    seconds = f"{r.duration_seconds:.1f} s"
    if r.timed_out:
        head = f"killed after {sandbox.timeout_for(args.get('timeout_seconds')):.0f} s (timeout)"
    elif r.killed:
        head = f"killed after {seconds}"
    else:
        head = f"exit code {r.exit_code} ({seconds})"
    return ToolResult(
        content=clip(f"{head}\n{clip_output(r.output, MAX_RESULT_CHARS)}", MAX_RESULT_CHARS),
        exit_code=r.exit_code,
        killed=r.killed,
        timed_out=r.timed_out,
        changes_files=True,
        duration_seconds=r.duration_seconds,
    )


FileTool = Callable[[Workspace, dict[str, Any]], Awaitable[str]]
_FILE_TOOLS: dict[str, FileTool] = {
    "list_files": lambda ws, a: files.list_files(ws, a.get("path", ".")),
    "read_file": lambda ws, a: files.read_file(
        ws, a["path"], a.get("start_line"), a.get("end_line")
    ),
    "search": lambda ws, a: search.search(ws, a["pattern"], a.get("path", ".")),
    "edit_file": lambda ws, a: files.edit_file(ws, a["path"], a["old_text"], a["new_text"]),
    "write_file": lambda ws, a: files.write_file(ws, a["path"], a["content"]),
    "show_diff": lambda ws, _a: files.show_diff(ws),
}
