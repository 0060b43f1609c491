"""The demo agent's policy: the whole fix sequence, continuing interrupted runs, and its limits.

Tool results are played back by a small in-memory stand-in for the product's tools over the
shipped demo files, shaped like what `restate_app/tools` answers (numbered lines, "exit code"
headers, "error: ..." results, the synthetic results of an interrupted run), and like what
`restate_app/task_tools.py` makes of a command that waits for approval (approved, denied, or
nobody answered in time).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from sandbox import demo_repo as demo
from sandbox.model_agent import MAX_TOOL_TURNS, Reply, ToolCall, next_reply
from sandbox.model_script import LABEL

JSON = dict[str, Any]
TOOLS = ["list_files", "read_file", "search", "edit_file", "write_file", "run_command", "show_diff"]
SYSTEM: JSON = {"role": "system", "content": "You are a coding agent in a Slack thread."}
KILLED = (
    "[killed by the interruption after 3.1 s; the command did not finish. Output so far:]\n"
    "test_a_start_without_timezone_is_rejected (tests.test_dates.FormatMeetingTest) ... ok"
)
NO_RESULT = "[no result: the run was interrupted before this tool call finished]"
PARTIAL = {
    "role": "assistant",
    "content": "[interrupted: this earlier work was cut short by a new message]\n(no text yet)",
}
LISTING = ".gitignore\nREADME.md\ndates.py\npyproject.toml\ntests/__init__.py\ntests/test_dates.py"
TEST_NAMES = [
    "test_a_start_without_timezone_is_rejected",
    "test_summer_meeting_in_berlin_is_in_daylight_saving_time",
    "test_winter_meeting_in_berlin",
    "test_winter_meeting_in_new_york",
]

FIX_SEQUENCE = [
    ("list_files", {}),
    ("read_file", {"path": "tests/test_dates.py"}),
    ("read_file", {"path": "dates.py"}),
    ("run_command", {"command": "python3 -m unittest -v"}),
    (
        "edit_file",
        {"path": "dates.py", "old_text": demo.FIX_OLD_TEXT, "new_text": demo.FIX_NEW_TEXT},
    ),
    ("run_command", {"command": demo.INSTALL_COMMAND}),
    ("run_command", {"command": "python3 -m unittest -v"}),
    ("show_diff", {}),
]
INSTALL = FIX_SEQUENCE[5]
APPROVED = (
    "[approved by <@U0ALICE>; network on for this command]\n"
    "exit code 0 (2.4 s)\nObtaining file:///workspace\n"
    "Building wheels for collected packages: meeting-times\n"
    "Successfully installed meeting-times-0.1.0"
)
# As `restate_app.task_tools.refusal` words them (`tests/integration/test_approvals.py` pins it).
DENIED = "The command was not run: <@U0BOB> denied it."
TIMED_OUT = "The command was not run: nobody approved it within 1 h."
UNASKED = (
    "The command was not run: it needs a person's approval, and I could not ask for it in Slack."
)


def unittest_output(fixed: bool) -> str:
    """What `python3 -m unittest -v` prints for the demo, as the run_command tool returns it."""
    lines = [
        f"{name} (tests.test_dates.FormatMeetingTest.{name}) ... "
        + ("FAIL" if name == demo.FAILING_TEST and not fixed else "ok")
        for name in TEST_NAMES
    ]
    lines.append(
        "test_weekly_standup_in_tokyo_all_year "
        "(tests.test_dates.SlowSuiteTest.test_weekly_standup_in_tokyo_all_year) ... ok"
    )
    if not fixed:
        lines += [
            "",
            "=" * 70,
            f"FAIL: {demo.FAILING_TEST} (tests.test_dates.FormatMeetingTest.{demo.FAILING_TEST})",
            "-" * 70,
            "AssertionError: 'Mon 15 Jul 10:00' != 'Mon 15 Jul 11:00'",
        ]
    lines += ["", "-" * 70, "Ran 5 tests in 6.012s", "", "OK" if fixed else "FAILED (failures=1)"]
    return f"exit code {0 if fixed else 1} (6.1 s)\n" + "\n".join(lines)


@dataclass
class FakeTools:
    """The demo files in memory, and the tools' answers over them."""

    files: dict[str, str] = field(
        default_factory=lambda: {n: (demo.FILES_DIR / n).read_text() for n in demo.demo_files()}
    )
    install: str = APPROVED  # what became of the command that waits for approval

    def run(self, call: ToolCall) -> str:
        args = call.arguments
        if call.name == "list_files":
            return LISTING
        if call.name == "read_file":
            if args["path"] not in self.files:
                return f"error: no such file: {args['path']}"
            lines = self.files[args["path"]].splitlines()
            return "\n".join(f"{n:>4}│{line}" for n, line in enumerate(lines, start=1))
        if call.name == "edit_file":
            text = self.files[args["path"]]
            if args["new_text"] in text:
                return f"{args['path']} already contains this edit (lines 5-11); nothing changed"
            if text.count(args["old_text"]) != 1:
                return f"error: old_text not found in {args['path']}"
            self.files[args["path"]] = text.replace(args["old_text"], args["new_text"])
            return f"Edited {args['path']}: lines 5-11 now read:\n   5│..."
        if call.name == "run_command" and args["command"] == demo.INSTALL_COMMAND:
            return self.install
        if call.name == "run_command":
            return unittest_output(demo.FIXED_MARKER in self.files[demo.MODULE])
        if call.name == "show_diff":
            return self.diff()
        raise AssertionError(f"unexpected tool {call.name}")

    def diff(self) -> str:
        before = (demo.FILES_DIR / demo.MODULE).read_text().splitlines(keepends=True)
        after = self.files[demo.MODULE].splitlines(keepends=True)
        return "".join(difflib.unified_diff(before, after, "a/dates.py", "b/dates.py"))


def user(text: str) -> JSON:
    return {"role": "user", "content": f"<@U0ALICE>: {text}"}


def turn(reply: Reply, results: list[str], prefix: str) -> list[JSON]:
    """The assistant message of `reply` and the tool messages answering its calls."""
    calls = [
        {
            "id": f"call_{prefix}_{i}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
        }
        for i, c in enumerate(reply.tool_calls)
    ]
    assistant: JSON = {"role": "assistant", "content": reply.text or None, "tool_calls": calls}
    answers = [
        {"role": "tool", "tool_call_id": call["id"], "content": result}
        for call, result in zip(calls, results, strict=True)
    ]
    return [assistant, *answers]


def work(messages: list[JSON], tools: FakeTools, limit: int = 20) -> tuple[list[Reply], str]:
    """Run the policy to its answer, feeding back the tools' results; returns (turns, answer)."""
    turns: list[Reply] = []
    for number in range(limit):
        reply = next_reply(messages, TOOLS)
        if not reply.tool_calls:
            return turns, reply.text
        turns.append(reply)
        messages += turn(reply, [tools.run(c) for c in reply.tool_calls], f"t{number}")
    raise AssertionError("no answer")


def calls_of(turns: list[Reply]) -> list[tuple[str, JSON]]:
    return [(c.name, c.arguments) for r in turns for c in r.tool_calls]


def step(name: str, arguments: JSON, result: str, prefix: str) -> list[JSON]:
    return turn(Reply("", (ToolCall(name, arguments),)), [result], prefix)


def interrupted_transcript(*, edited: bool) -> list[JSON]:
    """A run that got as far as the first test run (and the edit and the approved install)
    before a reply cut it."""
    tools = FakeTools()
    messages = [SYSTEM, user("please fix the failing test")]
    for number, (name, args) in enumerate(FIX_SEQUENCE[: 6 if edited else 3]):
        messages += step(name, args, tools.run(ToolCall(name, args)), f"old{number}")
    messages += step("run_command", {"command": demo.TEST_COMMAND}, KILLED, "old_killed")
    return [*messages, PARTIAL]


def test_fixing_goes_through_the_whole_sequence_and_answers_in_markdown() -> None:
    turns, answer = work([SYSTEM, user("fix the failing test")], FakeTools())
    assert calls_of(turns) == FIX_SEQUENCE
    assert all(len(r.tool_calls) == 1 for r in turns)
    assert turns[0].text.startswith(LABEL)
    assert "\n> fix the failing test\n" in turns[0].text
    assert "\n2. Run the tests to see the failure." in turns[0].text
    assert "zoneinfo" in turns[4].text
    assert turns[5].text == f"{LABEL} {demo.INSTALL_REASON}"
    assert turns[6].text == ""
    assert answer.startswith(f"{LABEL} **Fixed:**")
    assert "**What was wrong:**" in answer
    assert f"```python\n{demo.FIX_NEW_TEXT}```" in answer
    assert "now passes: Ran 5 tests in 6.012s, OK. Before the fix: Ran 5 tests" in answer
    assert "FAILED (failures=1)." in answer
    assert "interrupted" not in answer
    assert (
        "**Install check:** pip installed the package, editable, into a throwaway virtual "
        "environment (approved in this thread)." in answer
    )


def _until_the_install(tools: FakeTools) -> list[JSON]:
    """A run that made the fix and asked for the install step; `tools` answers it."""
    messages = [SYSTEM, user("fix the failing test")]
    for number, (name, args) in enumerate(FIX_SEQUENCE[:6]):
        messages += step(name, args, tools.run(ToolCall(name, args)), f"u{number}")
    return messages


@pytest.mark.parametrize(
    ("result", "why"),
    [
        (DENIED, "it was denied in this thread"),
        (TIMED_OUT, "nobody approved it within 1 h"),
        (UNASKED, "it needs a person's approval, and I could not ask for it in Slack"),
    ],
    ids=["denied", "timed_out", "not_asked"],
)
def test_an_install_nobody_approved_is_done_without_and_the_answer_says_why(
    result: str, why: str
) -> None:
    tools = FakeTools(install=result)
    messages = _until_the_install(tools)
    turns, answer = work(messages, tools)
    assert calls_of(turns) == FIX_SEQUENCE[6:]
    assert turns[0].text == (
        f"{LABEL} The install check was not approved, so I'll do without it and run the tests "
        "directly."
    )
    assert answer.startswith(f"{LABEL} **Fixed:**")
    assert f"**Install check:** skipped because {why}; I ran the tests without it." in answer
    assert "Ran 5 tests in 6.012s, OK" in answer
    assert "approved in" not in answer
    assert "<@" not in answer, "a mention in the model's text shows as text, so it names nobody"


def test_a_denied_install_is_not_asked_for_again_after_an_interruption() -> None:
    tools = FakeTools(files=_fixed_files(), install=DENIED)
    messages = _until_the_install(FakeTools(install=DENIED))
    messages += step("run_command", {"command": demo.TEST_COMMAND}, KILLED, "killed")
    messages += [PARTIAL, user("use zoneinfo")]
    turns, answer = work(messages, tools)
    assert calls_of(turns) == FIX_SEQUENCE[6:]
    assert "fix is already in place" in turns[0].text
    assert "skipped because it was denied in this thread" in answer


def test_an_install_cut_off_while_it_waits_for_approval_is_asked_for_again() -> None:
    messages = _until_the_install(FakeTools())[:-1]  # the request, without its result
    messages += [{"role": "tool", "tool_call_id": "call_u5_0", "content": NO_RESULT}]
    messages += [PARTIAL, user("go on, please")]
    turns, answer = work(messages, FakeTools(files=_fixed_files()))
    assert calls_of(turns) == FIX_SEQUENCE[5:]
    assert turns[0].text == (
        f"{LABEL} I picked up from the interrupted run: the fix is already in place. "
        f"{demo.INSTALL_REASON}"
    )
    assert "(approved in this thread)" in answer


def test_an_approved_install_that_fails_is_reported_and_the_tests_still_run() -> None:
    failed = "[approved by <@U0ALICE>]\nexit code 1 (0.6 s)\nerror: externally-managed-environment"
    tools = FakeTools(install=failed)
    turns, answer = work(_until_the_install(tools), tools)
    assert calls_of(turns) == FIX_SEQUENCE[6:]
    assert "install check failed" in turns[0].text
    assert "`pip install` failed (exit code 1); the tests ran from the workspace" in answer


def test_the_same_messages_always_get_the_same_reply() -> None:
    messages = [SYSTEM, user("fix the failing test")]
    assert next_reply(messages, TOOLS) == next_reply(list(messages), list(TOOLS))
    transcript = [*interrupted_transcript(edited=True), user("use zoneinfo")]
    assert next_reply(transcript, TOOLS) == next_reply(json.loads(json.dumps(transcript)), TOOLS)


def test_a_continued_run_skips_the_done_edit_and_reruns_the_killed_tests() -> None:
    messages = [*interrupted_transcript(edited=True), user("use zoneinfo please")]
    turns, answer = work(messages, FakeTools(files=_fixed_files()))
    assert calls_of(turns) == FIX_SEQUENCE[6:]
    assert "fix is already in place" in turns[0].text
    assert (
        "I picked up from the interrupted run: the fix was already in place, "
        "so I re-ran the tests." in answer
    )
    assert "As you asked, the fix uses `zoneinfo`." in answer
    assert "Ran 5 tests in 6.012s, OK" in answer


def test_a_run_killed_before_the_edit_runs_the_tests_again_then_makes_the_zoneinfo_fix() -> None:
    messages = [*interrupted_transcript(edited=False), user("use zoneinfo")]
    turns, answer = work(messages, FakeTools())
    assert calls_of(turns) == FIX_SEQUENCE[3:]
    assert "carried on where it stopped" in answer
    assert "As you asked, the fix uses `zoneinfo`." in answer


def test_the_cut_off_run_may_come_after_the_reply_that_cut_it_off() -> None:
    transcript = interrupted_transcript(edited=True)
    messages = [*transcript[:2], user("use zoneinfo"), *transcript[2:]]
    turns, answer = work(messages, FakeTools(files=_fixed_files()))
    assert calls_of(turns) == FIX_SEQUENCE[6:]
    assert "the fix was already in place, so I re-ran the tests." in answer


def test_an_edit_cut_off_without_a_result_is_made_again_and_found_already_made() -> None:
    messages = interrupted_transcript(edited=False)[:-3]  # up to the module read
    messages += step("run_command", {"command": demo.TEST_COMMAND}, unittest_output(False), "r")
    messages += step("edit_file", FIX_SEQUENCE[4][1], NO_RESULT, "edit")
    messages += [PARTIAL, user("go on")]
    turns, answer = work(messages, FakeTools(files=_fixed_files()))
    assert calls_of(turns) == FIX_SEQUENCE[4:]
    assert "carried on where it stopped" in answer


def test_an_edit_not_found_counts_as_done_when_a_read_shows_the_fix() -> None:
    messages = interrupted_transcript(edited=False)[:-3]  # up to the module read
    fixed = _fixed_files()[demo.MODULE]
    edit_args = FIX_SEQUENCE[4][1]
    messages += step("read_file", {"path": "dates.py"}, fixed, "again")
    messages += step("edit_file", edit_args, "error: old_text not found in dates.py", "edit")
    reply = next_reply(messages, TOOLS)
    assert reply.tool_calls == (ToolCall(*INSTALL),)  # what comes after the fix


def test_an_edit_not_found_without_a_read_reads_the_file_again() -> None:
    messages = interrupted_transcript(edited=False)[:-3]
    messages += step("run_command", {"command": demo.TEST_COMMAND}, unittest_output(False), "r")
    messages += step("edit_file", FIX_SEQUENCE[4][1], "error: old_text not found", "edit")
    reply = next_reply(messages, TOOLS)
    assert reply.tool_calls == (ToolCall("read_file", {"path": "dates.py"}),)


def test_an_unexpected_tool_error_ends_the_run_with_an_explanation() -> None:
    messages = [SYSTEM, user("fix the failing test")]
    messages += step("list_files", {}, LISTING, "ls")
    messages += step("read_file", {"path": demo.TEST_FILE}, "error: permission denied", "rd")
    reply = next_reply(messages, TOOLS)
    assert reply.tool_calls == ()
    assert reply.text.startswith(LABEL)
    assert "`read_file`" in reply.text
    assert "> error: permission denied" in reply.text


def test_a_test_command_that_cannot_run_ends_the_run() -> None:
    messages = interrupted_transcript(edited=False)[:-3]
    no_python = "exit code 127 (0.0 s)\nbash: python3: command not found"
    messages += step("run_command", {"command": demo.TEST_COMMAND}, no_python, "r")
    reply = next_reply(messages, TOOLS)
    assert reply.tool_calls == ()
    assert "`run_command`" in reply.text


def test_a_run_stops_after_at_most_twelve_tool_turns() -> None:
    messages = [SYSTEM, user("fix the failing test")]
    for number in range(MAX_TOOL_TURNS):
        messages += step("search", {"pattern": "x"}, "no matches", f"s{number}")
    reply = next_reply(messages, TOOLS)
    assert reply.tool_calls == ()
    assert f"after {MAX_TOOL_TURNS} tool steps" in reply.text


def test_a_question_about_the_repo_lists_files_reads_the_readme_and_answers() -> None:
    turns, answer = work([SYSTEM, user("what does this repo do?")], FakeTools())
    assert calls_of(turns) == [("list_files", {}), ("read_file", {"path": "README.md"})]
    assert answer.startswith(LABEL)
    assert "> what does this repo do?" in answer
    assert "**meeting-times**: A tiny library that shows a meeting's start time" in answer
    assert "```\n.gitignore\nREADME.md\ndates.py" in answer


def test_a_fix_request_on_another_repository_stops_without_changes() -> None:
    messages = [SYSTEM, user("fix the failing test")]
    messages += step("list_files", {}, "src/app.py\nREADME.md", "ls")
    reply = next_reply(messages, TOOLS)
    assert reply.tool_calls == ()
    assert "not the demo project" in reply.text


def test_missing_tools_are_named_instead_of_called() -> None:
    reply = next_reply([SYSTEM, user("fix the failing test")], ["list_files", "read_file"])
    assert reply.tool_calls == ()
    assert "`edit_file`, `run_command`" in reply.text


@pytest.fixture
async def llm(model_url: str) -> Any:
    client = openai.AsyncOpenAI(base_url=model_url, api_key="x", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


async def test_the_whole_fix_through_the_server_with_the_openai_client(
    llm: openai.AsyncOpenAI,
) -> None:
    tools = FakeTools()
    offered = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in TOOLS]
    messages: list[Any] = [SYSTEM, user("fix the failing test")]
    names: list[str] = []
    for _ in range(10):
        done = await llm.chat.completions.create(
            model="demo", messages=messages, tools=offered, stream=False
        )
        message = done.choices[0].message
        if not message.tool_calls:
            break
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            assert call.type == "function"
            names.append(call.function.name)
            result = tools.run(ToolCall(call.function.name, json.loads(call.function.arguments)))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    assert names == [name for name, _ in FIX_SEQUENCE]
    assert done.choices[0].finish_reason == "stop"
    assert "```python" in (message.content or "")
    assert demo.FIXED_MARKER in tools.files[demo.MODULE]


def _fixed_files() -> dict[str, str]:
    files = FakeTools().files
    files[demo.MODULE] = files[demo.MODULE].replace(demo.FIX_OLD_TEXT, demo.FIX_NEW_TEXT)
    return files


def test_the_plan_quotes_the_whole_request_shortened_at_a_word_and_lists_its_steps() -> None:
    request = "please fix the failing test in the dates module " + "and tidy up " * 30 + "END"
    plan = next_reply([SYSTEM, user(request)], TOOLS).text
    assert plan.startswith(f"{LABEL} **Plan** for your request:")
    quoted = next(line for line in plan.splitlines() if line.startswith("> "))
    assert quoted.startswith("> please fix the failing test in the dates module and tidy")
    assert quoted.endswith((" up…", " and…", " tidy…"))
    assert len(quoted) <= len("> ") + 200 + 1
    assert "END" not in plan
    assert "\n1. Look at the files" in plan
    explore = next_reply([SYSTEM, user("what is this project?")], TOOLS).text
    assert "\n> what is this project?\n" in explore
    assert "\n2. Read the README." in explore


def test_a_plan_streams_in_a_few_chunks_so_it_shows_early() -> None:
    from sandbox.model_records import AGENT_NOTE_CHUNKS, RequestRecord, compose
    from sandbox.model_script import ScriptItem

    def record(messages: list[JSON]) -> RequestRecord:
        return RequestRecord(id="r", received_at=0.0, messages=messages, model="m", stream=True)

    planning = record([SYSTEM, user("fix the failing test")])
    planning.tools = TOOLS
    plan = compose(planning, ScriptItem())
    assert plan.tool_calls
    assert len(plan.chunks) <= AGENT_NOTE_CHUNKS
    assert "".join(plan.chunks) == plan.text


def test_the_default_answer_mentions_an_interruption_only_when_one_is_open() -> None:
    from sandbox.model_script import cut_short_as

    def has_interrupted_partial(messages: list[JSON]) -> bool:
        return cut_short_as(messages) == "interrupted"

    reading = {"role": "tool", "tool_call_id": "c1", "content": "so a run can be interrupted"}
    asked: JSON = {"role": "assistant", "content": None, "tool_calls": [_call("c1")]}
    assert not has_interrupted_partial([SYSTEM, user("a"), asked, reading])
    killed = {"role": "tool", "tool_call_id": "c1", "content": KILLED}
    assert has_interrupted_partial([SYSTEM, user("a"), asked, killed, user("b")])
    assert has_interrupted_partial([SYSTEM, user("a"), PARTIAL, user("b")])
    answered = {"role": "assistant", "content": "Done."}
    assert not has_interrupted_partial([SYSTEM, user("a"), PARTIAL, user("b"), answered, user("c")])


def _call(call_id: str) -> JSON:
    function = {"name": "list_files", "arguments": "{}"}
    return {"id": call_id, "type": "function", "function": function}


def test_a_stopped_run_is_picked_up_as_stopped_and_never_called_interrupted() -> None:
    from sandbox.model_script import cut_short_as, default_answer

    stopped = {
        "role": "assistant",
        "content": "[stopped: a person stopped this earlier work before it finished]\nhalf",
    }
    messages = [SYSTEM, user("what is this project?"), stopped, user("go on")]
    assert cut_short_as(messages) == "stopped"
    answer = default_answer(messages)
    assert "A run of mine was stopped before it finished" in answer
    assert "interrupted" not in answer
    tools = FakeTools()
    cut = _until_the_install(tools)[:-2]  # the fix made, the install never asked
    turns, _ = work([*cut, stopped, user("carry on")], tools)
    assert "I picked up from the stopped run" in turns[0].text
    assert "interrupted" not in turns[0].text
