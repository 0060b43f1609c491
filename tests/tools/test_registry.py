"""The contract's tools: exact schemas, checked arguments, Slack lines, errors as results."""

from __future__ import annotations

import asyncio
import json

import pytest

from restate_app.tools.commands import CommandTracker
from restate_app.tools.files import ToolError
from restate_app.tools.registry import TOOL_SCHEMAS, call_tool, describe, parse_arguments
from restate_app.tools.sandbox import SandboxConfig
from restate_app.tools.workspace import Workspace, Workspaces

CONTRACT = {
    "list_files": ({"path"}, set()),
    "read_file": ({"path", "start_line", "end_line"}, {"path"}),
    "search": ({"pattern", "path"}, {"pattern"}),
    "edit_file": ({"path", "old_text", "new_text"}, {"path", "old_text", "new_text"}),
    "write_file": ({"path", "content"}, {"path", "content"}),
    "run_command": ({"command", "timeout_seconds"}, {"command"}),
    "show_diff": (set(), set()),
}


def test_the_schemas_have_exactly_the_contracts_names_and_arguments() -> None:
    found = {}
    for schema in TOOL_SCHEMAS:
        assert schema["type"] == "function"
        function = schema["function"]
        params = function["parameters"]
        assert params["type"] == "object"
        assert params["additionalProperties"] is False
        assert function["description"]
        properties = params["properties"]
        assert isinstance(properties, dict)
        required = params["required"]
        assert isinstance(required, list)
        found[function["name"]] = (set(properties), set(required))
    assert found == CONTRACT


def test_the_schemas_are_plain_json() -> None:
    assert json.loads(json.dumps(TOOL_SCHEMAS)) == TOOL_SCHEMAS


def test_arguments_are_parsed_and_checked() -> None:
    assert parse_arguments("read_file", '{"path": "a.py", "start_line": 3}') == {
        "path": "a.py",
        "start_line": 3,
    }
    assert parse_arguments("read_file", '{"path": "a.py", "end_line": 4.0}')["end_line"] == 4
    assert parse_arguments("show_diff", "") == {}
    assert parse_arguments("list_files", '{"path": null}') == {}
    assert parse_arguments("run_command", '{"command": "ls", "timeout_seconds": 5}') == {
        "command": "ls",
        "timeout_seconds": 5.0,
    }


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("delete_repo", "{}", "there is no tool called 'delete_repo'"),
        ("read_file", "{not json", "are not valid JSON"),
        ("read_file", "[1]", "must be a JSON object"),
        ("read_file", "{}", "read_file needs the argument 'path' (string)"),
        ("read_file", '{"path": 3}', "'path' of read_file must be a string, not 3"),
        ("read_file", '{"path": "a", "start_line": "3"}', "must be a integer"),
        ("read_file", '{"path": "a", "start_line": 1.5}', "must be a integer"),
        ("run_command", '{"command": "ls", "timeout_seconds": true}', "must be a number"),
        ("edit_file", '{"path": "a", "old": "x"}', "edit_file has no argument old"),
    ],
)
def test_bad_arguments_are_clear_errors(name: str, arguments: str, message: str) -> None:
    with pytest.raises(ToolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_arguments(name, arguments)


@pytest.mark.parametrize(
    ("name", "args", "line"),
    [
        ("list_files", {}, "Listing files"),
        ("list_files", {"path": "src"}, "Listing files in `src`"),
        ("read_file", {"path": "src/dates.py"}, "Reading `src/dates.py`"),
        ("search", {"pattern": "parse_date"}, "Searching for `parse_date`"),
        ("edit_file", {"path": "src/dates.py"}, "Editing `src/dates.py`"),
        ("write_file", {"path": "notes.md"}, "Writing `notes.md`"),
        ("run_command", {"command": "pytest -q"}, "Running `pytest -q`"),
        ("show_diff", {}, "Showing the diff"),
    ],
)
def test_describe_gives_a_short_line_for_slack(name: str, args: dict[str, str], line: str) -> None:
    assert describe(name, args) == line


def test_describe_shortens_commands_and_neutralises_backticks() -> None:
    line = describe("run_command", {"command": "echo `whoami`\n" + "x" * 200})
    assert line.startswith("Running `echo 'whoami' xxx")
    assert line.endswith("…`")
    assert line.count("`") == 2
    assert len(line) < 80


async def test_a_bad_call_is_an_error_result_not_an_exception(
    ws: Workspace, workspaces: Workspaces
) -> None:
    for name, arguments in [
        ("nope", "{}"),
        ("read_file", "{bad"),
        ("read_file", '{"path": "../../etc/passwd"}'),
        ("edit_file", '{"path": "src/util.py", "old_text": "absent", "new_text": "x"}'),
        ("run_command", '{"command": "  "}'),
    ]:
        result = await call_tool(ws, workspaces, SandboxConfig(), name, arguments, CommandTracker())
        assert result.is_error, (name, result)
        assert result.content.startswith("error: ")


async def test_call_tool_runs_the_file_tools(ws: Workspace, workspaces: Workspaces) -> None:
    sandbox, tracker = SandboxConfig(), CommandTracker()
    edit = json.dumps({"path": "src/util.py", "old_text": "VALUE = 1", "new_text": "VALUE = 2"})
    edited = await call_tool(ws, workspaces, sandbox, "edit_file", edit, tracker)
    assert (edited.is_error, edited.changes_files) == (False, True)
    diff = await call_tool(ws, workspaces, sandbox, "show_diff", "{}", tracker)
    assert "+VALUE = 2" in diff.content
    assert diff.changes_files is False
    read = await call_tool(ws, workspaces, sandbox, "read_file", '{"path": "src/util.py"}', tracker)
    assert read.content.startswith("   1│VALUE = 2")


async def test_call_tool_reports_a_commands_exit_code_and_output(
    ws: Workspace, workspaces: Workspaces
) -> None:
    args = json.dumps({"command": "echo hello; exit 2"})
    result = await call_tool(ws, workspaces, SandboxConfig(), "run_command", args, CommandTracker())
    assert (result.is_error, result.exit_code, result.changes_files) == (False, 2, True)
    assert result.content.startswith("exit code 2 (")
    assert result.content.endswith("\nhello\n")
    silent = await call_tool(
        ws, workspaces, SandboxConfig(), "run_command", '{"command": "true"}', CommandTracker()
    )
    assert silent.content.endswith("\n(no output)")


async def test_call_tool_reports_a_timeout(ws: Workspace, workspaces: Workspaces) -> None:
    args = json.dumps({"command": "echo begun; sleep 30", "timeout_seconds": 1})
    result = await call_tool(ws, workspaces, SandboxConfig(), "run_command", args, CommandTracker())
    assert (result.timed_out, result.killed, result.exit_code) == (True, True, None)
    assert result.content == "killed after 1 s (timeout)\nbegun\n"


async def test_cancelling_call_tool_propagates_after_the_kill(
    ws: Workspace, workspaces: Workspaces
) -> None:
    tracker = CommandTracker()
    args = json.dumps({"command": "echo partial; sleep 60"})
    task = asyncio.create_task(
        call_tool(ws, workspaces, SandboxConfig(), "run_command", args, tracker)
    )
    deadline = asyncio.get_running_loop().time() + 15
    while "partial" not in tracker.output:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tracker.killed
    assert tracker.output == "partial\n"
