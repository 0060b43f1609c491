"""The offline model's demo agent: a deterministic policy that works the demo repository.

It reads the whole conversation (user turns, earlier tool calls and their results, also those
of interrupted runs) and picks the next step: tool calls or the final answer. It keeps no
state, so the same messages always get the same reply, and an interrupted run is continued
from what its transcript shows was done.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import demo_repo as demo
from sandbox.model_install import answer_line, before_tests, read_install
from sandbox.model_script import LABEL, content_text, quote, user_texts

JSON = dict[str, Any]

MAX_TOOL_TURNS = 12
# A plan quotes the request up to this many characters: enough to recognise it.
PLAN_QUOTE_LIMIT = 200
REQUIRED_TOOLS = ("list_files", "read_file", "edit_file", "run_command")

_FIX_WORDS = re.compile(r"\b(fix\w*|fail\w*|broken|bug\w*|zoneinfo|daylight|dst)\b", re.I)
_ASK_WORDS = re.compile(r"\b(what|explain|describe|overview|summar\w*|tell me)\b|\?\s*$", re.I)
_CUT_SHORT = re.compile(r"\b(interrupt\w*|killed|timed out|timeout|cancell?ed)\b", re.I)
# An error says so up front ("Error: ...", "No such file") or names itself ("... not found").
_ERROR = re.compile(
    r"^\W*(error|failed|failure|cannot|can't|could not|denied|invalid|refused|no such)\b"
    r"|\b(error:|not found|no such file|permission denied)",
    re.I,
)
_NOT_FOUND = re.compile(
    r"not found|no match|does not (contain|match)|doesn't (contain|match)", re.I
)
# Not anchored to lines: a tool may hand the output back inside JSON, its newlines escaped.
_RAN = re.compile(r"Ran \d+ tests? in [\d.]+s")
_VERDICT = re.compile(r"(?<![\w(])(?:OK(?: \([^)]*\))?|FAILED \([^)]*\))(?![\w)])")
_NUMBERED = re.compile(r"^\s*\d+(?:[\t:|│→]| {2})\s?")
_PATH = re.compile(r"[\w./-]+")
_MODULE_TOOLS = ("read_file", "edit_file", "write_file")
# A synthetic result ("[killed by the interruption ...]") is short and says so first; a file
# that merely mentions the word is not one.
_SYNTHETIC_LIMIT = 300


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: JSON


@dataclass(frozen=True)
class Reply:
    """One assistant turn: text, tool calls, or text followed by tool calls."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Step:
    """One tool call in the conversation and its result (None while unanswered)."""

    name: str
    arguments: JSON
    result: str | None
    turn: int  # index of the assistant message that asked for it

    @property
    def path(self) -> str:
        return _normal(str(self.arguments.get("path", "")))

    @property
    def cut_short(self) -> bool:
        """Killed by an interruption, timed out, or never answered: not done."""
        if self.result is None:
            return True
        if self.name == "run_command":
            return not _RAN.search(self.result) and bool(_CUT_SHORT.search(self.result))
        first = self.result.lstrip().partition("\n")[0]
        return len(self.result) < _SYNTHETIC_LIMIT and bool(_CUT_SHORT.search(first))

    @property
    def failed(self) -> bool:
        """The tool reported an error (a test run's failures are not one)."""
        if self.result is None or self.name == "run_command":
            return False
        first = next((line for line in self.result.splitlines() if line.strip()), "")
        return bool(_ERROR.search(first))

    @property
    def done(self) -> bool:
        return not self.cut_short and not self.failed

    @property
    def outcome(self) -> str:
        """For a test run: passed, failed, cut_short, or unknown (the tests did not run)."""
        if self.cut_short:
            return "cut_short"
        if not _RAN.search(self.result or ""):
            return "unknown"
        verdicts = _VERDICT.findall(self.result or "")
        return "passed" if verdicts and verdicts[-1].startswith("OK") else "failed"

    @property
    def unexpected(self) -> bool:
        if self.name == "run_command":
            # The install step's outcome, also a refusal, is the fix flow's to handle.
            return not _is_install(self) and self.outcome == "unknown"
        not_found = self.name == "edit_file" and _NOT_FOUND.search(self.result or "")
        return self.failed and not not_found


@dataclass(frozen=True)
class Conversation:
    steps: list[Step]
    tools: frozenset[str]
    requests: list[str]  # user turns since the last finished answer, oldest first
    # Tool calls after this message index are this run's: the latest user turn or interrupted
    # partial (the cut-off run's work may come after the user turn that cut it off).
    run_start: int
    resumed: bool  # an earlier run was cut short and left tool calls behind
    # How the latest cut-short run ended, as the conversation says: "interrupted" (by a new
    # message) or "stopped" (by a person).
    cut_as: str = "interrupted"

    @property
    def this_run(self) -> list[Step]:
        return [s for s in self.steps if s.turn > self.run_start]

    @property
    def tool_turns(self) -> int:
        return len({s.turn for s in self.this_run})

    def last_done(self, name: str, path: str | None = None, after: int = -1) -> Step | None:
        found = [
            s
            for s in self.steps
            if s.name == name and s.done and s.turn > after and path in (None, s.path)
        ]
        return found[-1] if found else None

    def last_test_run(self, after: int = -1) -> Step | None:
        runs = [s for s in self.steps if _is_test_run(s) and s.turn > after]
        return runs[-1] if runs else None

    def last_install(self, after: int = -1) -> Step | None:
        runs = [s for s in self.steps if _is_install(s) and s.turn > after]
        return runs[-1] if runs else None

    def fix_in_place_on_resume(self, fixed_at: int) -> bool:
        """Whether this run just picked up from an interrupted one that had made the fix."""
        return self.resumed and not self.this_run and fixed_at < self.run_start

    def call(self, text: str, name: str, arguments: JSON) -> Reply:
        if not text and self.resumed and not self.this_run:
            text = f"{LABEL} I picked up from the {self.cut_as} run and carry on where it stopped."
        return Reply(text, (ToolCall(name, arguments),))


def next_reply(messages: list[JSON], tools: list[str]) -> Reply:
    """The next assistant turn for `messages` when the request offers `tools`."""
    conv = read_conversation(messages, tools)
    missing = [t for t in REQUIRED_TOOLS if t not in conv.tools]
    if missing:
        names = ", ".join(f"`{t}`" for t in missing)
        return Reply(f"{LABEL} I need the tools {names} to work on the code, and they are missing.")
    if conv.tool_turns >= MAX_TOOL_TURNS:
        return Reply(_stopped_answer(conv))
    latest = conv.this_run[-1].turn if conv.this_run else None
    unexpected = next((s for s in conv.this_run if s.turn == latest and s.unexpected), None)
    if unexpected is not None:
        return Reply(_error_answer(unexpected))
    return _fix_reply(conv) if wants_fix(conv.requests) else _explore_reply(conv)


def read_conversation(messages: list[JSON], tools: list[str]) -> Conversation:
    results = {m.get("tool_call_id"): content_text(m) for m in messages if m.get("role") == "tool"}
    steps = [
        Step(name, arguments, results.get(call_id), turn)
        for turn, message in enumerate(messages)
        if message.get("role") == "assistant"
        for call_id, name, arguments in _calls(message)
    ]
    answered = _last(messages, _is_final_answer)
    partial = _last(messages, _is_partial)
    run_start = max(_last(messages, lambda m: m.get("role") == "user"), partial)
    earlier = [s for s in steps if answered < s.turn < run_start]
    cut_short = partial > answered or any(s.cut_short for s in earlier)
    return Conversation(
        steps=steps,
        tools=frozenset(tools),
        requests=user_texts(messages[answered + 1 :]) or user_texts(messages)[-1:],
        run_start=run_start,
        resumed=bool(earlier) and (cut_short or _was_cut_short(messages[:run_start])),
        cut_as=_cut_as(messages[partial]) if partial >= 0 else "interrupted",
    )


def _last(messages: list[JSON], test: Callable[[JSON], bool]) -> int:
    return max((i for i, m in enumerate(messages) if test(m)), default=-1)


def wants_fix(requests: list[str]) -> bool:
    """Whether the open request (newest turn first) is about fixing the code."""
    for text in reversed(requests):
        if _FIX_WORDS.search(text):
            return True
        if _ASK_WORDS.search(text):
            return False
    return False


def _calls(message: JSON) -> list[tuple[str | None, str, JSON]]:
    out: list[tuple[str | None, str, JSON]] = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        arguments = arguments if isinstance(arguments, dict) else {}
        out.append((call.get("id"), str(function.get("name", "")), arguments))
    return out


def _is_final_answer(message: JSON) -> bool:
    return (
        message.get("role") == "assistant"
        and not message.get("tool_calls")
        and bool(content_text(message).strip())
        and not _is_partial(message)
    )


def _is_partial(message: JSON) -> bool:
    """An interrupted or stopped run's partial answer, as the product marks it."""
    text = content_text(message).strip().lower()
    return message.get("role") == "assistant" and text.startswith(("[interrupted", "[stopped"))


def _cut_as(partial: JSON) -> str:
    """How a partial answer's run ended, as the product marks it."""
    stopped = content_text(partial).strip().lower().startswith("[stopped")
    return "stopped" if stopped else "interrupted"


def _was_cut_short(messages: list[JSON]) -> bool:
    """Whether the run before the latest user turn ended without a finished answer."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return not _is_final_answer(message)
    return False


def _is_test_run(step: Step) -> bool:
    command = str(step.arguments.get("command", ""))
    return step.name == "run_command" and "unittest" in command


def _is_install(step: Step) -> bool:
    command = str(step.arguments.get("command", ""))
    return step.name == "run_command" and command.strip() == demo.INSTALL_COMMAND


def _normal(path: str) -> str:
    path = path.strip().removeprefix("./").strip("/")
    return "" if path == "." else path


# ----------------------------------------------------------------------------- fixing


def _fix_reply(conv: Conversation) -> Reply:
    listing = conv.last_done("list_files")
    if listing is None:
        plan = _plan(
            conv,
            "Look at the files, then read the failing test and the code it covers.",
            "Run the tests to see the failure.",
            "Fix the bug.",
            "Check that the package still installs (that step asks for your approval).",
            "Run the tests again and show the diff.",
        )
        return conv.call(plan if not conv.resumed else "", "list_files", {})
    if demo.MODULE not in _listed(listing.result or ""):
        return Reply(_not_demo_answer(listing))
    for path in (demo.TEST_FILE, demo.MODULE):
        if conv.last_done("read_file", path) is None:
            return conv.call("", "read_file", {"path": path})
    fixed_at, stale, failed_edits = _module_state(conv.steps)
    if fixed_at is None:
        return _towards_fix(conv, stale, failed_edits)
    return _after_fix(conv, fixed_at)


def _module_state(steps: list[Step]) -> tuple[int | None, bool, int]:
    """When the module was known to be fixed (and still is), whether a failed or foreign
    edit left its content unknown, and how many edits of it failed."""
    fixed_at: int | None = None
    stale, failed_edits = False, 0
    for step in steps:
        if step.path != demo.MODULE or step.cut_short or step.name not in _MODULE_TOOLS:
            continue
        if step.failed:
            # A failed edit changed nothing, but what the file holds now needs a fresh look.
            if step.name != "read_file":
                failed_edits, stale = failed_edits + 1, True
            continue
        text = step.result or ""
        if step.name != "read_file":
            text = str(step.arguments.get("new_text", step.arguments.get("content", "")))
        fixed = demo.FIXED_MARKER in text
        if step.name == "read_file" and not fixed and demo.BUGGY_MARKER not in text:
            continue  # a part of the file that shows neither version
        stale = step.name != "read_file" and not fixed
        fixed_at = (step.turn if fixed_at is None else fixed_at) if fixed else None
    return fixed_at, stale, failed_edits


def _towards_fix(conv: Conversation, stale: bool, failed_edits: int) -> Reply:
    if failed_edits >= 2:
        return Reply(_stuck_answer("my edit of `dates.py` did not apply twice"))
    if stale:
        return conv.call("", "read_file", {"path": demo.MODULE})
    module = conv.last_done("read_file", demo.MODULE)
    if module is None or demo.BUGGY_MARKER not in (module.result or ""):
        return Reply(_stuck_answer("`dates.py` does not look like the code I know how to fix"))
    baseline = conv.last_test_run()
    if baseline is None or baseline.outcome in ("cut_short", "unknown"):
        return conv.call("", "run_command", {"command": demo.TEST_COMMAND})
    if baseline.outcome == "passed":
        return Reply(_stuck_answer("the tests already pass, so there is no failure to fix"))
    edit = {"path": demo.MODULE, "old_text": demo.FIX_OLD_TEXT, "new_text": demo.FIX_NEW_TEXT}
    return Reply(f"{LABEL} {demo.EDIT_REASON}", (ToolCall("edit_file", edit),))


def _after_fix(conv: Conversation, fixed_at: int) -> Reply:
    install = conv.last_install(after=fixed_at)
    if install is None or install.cut_short:
        resumed = conv.fix_in_place_on_resume(fixed_at)
        picked_up = f"I picked up from the {conv.cut_as} run: the fix is already in place. "
        text = f"{LABEL} {picked_up if resumed else ''}{demo.INSTALL_REASON}"
        return conv.call(text, "run_command", {"command": demo.INSTALL_COMMAND})
    run = conv.last_test_run(after=install.turn)
    if run is None or run.outcome in ("cut_short", "unknown"):
        # Said once, as the run turns to the tests: a denied step is not asked for again.
        text = before_tests(read_install(install.result or "")) if run is None else ""
        if conv.fix_in_place_on_resume(fixed_at):
            text = (
                f"{LABEL} I picked up from the {conv.cut_as} run: the fix is already in place, "
                "so I'm running the tests again."
            )
        return conv.call(text, "run_command", {"command": demo.TEST_COMMAND})
    if run.outcome == "failed":
        return Reply(_stuck_answer("the tests still fail after my change", run))
    if "show_diff" in conv.tools and conv.last_done("show_diff", after=fixed_at) is None:
        return conv.call("", "show_diff", {})
    return Reply(_fixed_answer(conv, fixed_at, run))


def _plan(conv: Conversation, *steps: str) -> str:
    """The plan a run states first: the request it answers (quoted, shortened), then its steps
    as a numbered list."""
    numbered = [f"{number}. {step}" for number, step in enumerate(steps, 1)]
    request = conv.requests[-1] if conv.requests else ""
    asked = [quote(request, PLAN_QUOTE_LIMIT), ""] if request else []
    return "\n".join([f"{LABEL} **Plan** for your request:", "", *asked, *numbered])


def _listed(listing: str) -> set[str]:
    return {_normal(p) for p in _PATH.findall(listing)}


# ----------------------------------------------------------------------------- exploring


def _explore_reply(conv: Conversation) -> Reply:
    listing = conv.last_done("list_files")
    if listing is None:
        plan = _plan(conv, "Look at the files.", "Read the README.", "Tell you what I found.")
        return conv.call(plan if not conv.resumed else "", "list_files", {})
    readme = _readme_path(listing.result or "")
    if readme is not None and conv.last_done("read_file", readme) is None:
        return conv.call("", "read_file", {"path": readme})
    read = conv.last_done("read_file", readme) if readme is not None else None
    return Reply(_explore_answer(conv, listing, read))


def _readme_path(listing: str) -> str | None:
    found = sorted(p for p in _listed(listing) if re.fullmatch(r"(?i)readme(\.\w+)?", p))
    return found[0] if found else None


def _explore_answer(conv: Conversation, listing: Step, readme: Step | None) -> str:
    lines = [f"{LABEL} Here is what I found for your request:", "", quote(conv.requests[-1]), ""]
    if readme is not None:
        title, summary = _readme_summary(readme.result or "")
        lines += [f"**{title}**: {summary}" if title else summary, ""]
    lines += ["**Files:**", *_fenced("", _head(listing.result or "", 20)), ""]
    can = (
        "read this project and fix its failing test (ask me to)"
        if demo.MODULE in _listed(listing.result or "")
        else "only show you around here"
    )
    lines.append(f"_As an offline demo model I can {can}; no real model was called._")
    return "\n".join(lines)


def _readme_summary(text: str) -> tuple[str, str]:
    """The README's first heading and first paragraph of prose."""
    # Without the line numbers a file viewer may put in front of each line.
    lines = [_NUMBERED.sub("", line, count=1) for line in text.splitlines()]
    title = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("#")), "")
    paragraph: list[str] = []
    for line in lines:
        prose = line.strip() and not line.startswith(("#", "```", "-", ">"))
        if prose:
            paragraph.append(line.strip())
        elif paragraph:
            break
    summary = " ".join(paragraph)
    return title, summary if len(summary) <= 400 else summary[:400].rstrip() + "…"


# ----------------------------------------------------------------------------- answers


def _fixed_answer(conv: Conversation, fixed_at: int, run: Step) -> str:
    before = [s for s in conv.steps if _is_test_run(s) and s.outcome == "failed"]
    install = conv.last_install(after=fixed_at)
    return demo.fixed_answer(
        LABEL,
        notes=_resume_note(conv, fixed_at),
        passed=_verdict(run),
        failed=_verdict(before[-1]) if before else None,
        diff_shown=conv.last_done("show_diff", after=fixed_at) is not None,
        install=answer_line(read_install(install.result or "")) if install else None,
    )


def _resume_note(conv: Conversation, fixed_at: int) -> list[str]:
    notes = []
    if conv.resumed and fixed_at < conv.run_start:
        notes.append(
            f"I picked up from the {conv.cut_as} run: the fix was already in place, "
            "so I re-ran the tests."
        )
    elif conv.resumed:
        notes.append(f"I picked up from the {conv.cut_as} run and carried on where it stopped.")
    if any("zoneinfo" in r.lower() for r in conv.requests):
        notes.append("As you asked, the fix uses `zoneinfo`.")
    return notes


def _verdict(run: Step) -> str:
    """A unittest run's summary from its output, e.g. "Ran 5 tests in 6.0s, OK"."""
    text = run.result or ""
    found = [m.group(0) for m in (_RAN.search(text), *_VERDICT.finditer(text)) if m]
    return ", ".join(found[:1] + found[-1:]) if len(found) > 1 else "".join(found)


def _not_demo_answer(listing: Step) -> str:
    head = (
        f"{LABEL} This repository is not the demo project I know how to fix (there is no "
        f"`{demo.MODULE}`), so I stopped without changing anything."
    )
    return "\n".join([head, "", "**Files:**", *_fenced("", _head(listing.result or "", 20))])


def _stuck_answer(why: str, run: Step | None = None) -> str:
    lines = [f"{LABEL} I stopped because {why}."]
    if run is not None:
        lines += ["", "The end of the test output:", "", *_fenced("", _tail(run.result or ""))]
    return "\n".join(lines)


def _error_answer(step: Step) -> str:
    head = (
        f"{LABEL} I stopped: the `{step.name}` tool answered with something I did not expect, "
        "so I did not go on."
    )
    return "\n".join([head, "", quote(_head(step.result or "", 8))])


def _stopped_answer(conv: Conversation) -> str:
    return (
        f"{LABEL} I stopped after {conv.tool_turns} tool steps in this run without finishing; "
        "ask me again to carry on from here."
    )


def _fenced(language: str, text: str) -> list[str]:
    # A longer fence keeps a code block intact when the text itself holds one.
    fence = "````" if "```" in text else "```"
    return [f"{fence}{language}", text.rstrip("\n"), fence]


def _head(text: str, lines: int) -> str:
    kept = text.splitlines()
    more = [f"… ({len(kept) - lines} more lines)"] if len(kept) > lines else []
    return "\n".join(kept[:lines] + more)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.splitlines()[-lines:])
