"""The agent codes: tools in its thread's workspace, each a durable step; a reply kills the
running command at once and the next run continues from everything the cut run did."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import psutil

from common.contract import APPROVE_ACTION_ID, DENY_ACTION_ID
from restate_app.tools.workspace import directory_name
from sandbox import demo_repo as demo
from tests.integration.harness import BOT_MENTION, CHANNEL, TEAM, Harness, eventually


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def _workspace(harness: Harness, ts: str) -> Path:
    root = Path(harness.stack.env["WORKSPACES_DIR"])
    return root / directory_name(f"{TEAM}:{CHANNEL}:{ts}")


def _tool_results(request: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in request["messages"] if m.get("role") == "tool"]


def _running_step(harness: Harness, ts: str, text: str) -> dict[str, Any]:
    return eventually(
        lambda: (s := harness.status(ts)) and text in (s.get("running_step") or "") and s,
        what=f"the run to be at {text!r}",
    )


def _answer_the_approval(harness: Harness, ts: str, action_id: str) -> None:
    """Click Approve or Deny (as the thread's author) on the run's request for approval."""
    request = eventually(
        lambda: next(
            (m for m in harness.thread(ts) if APPROVE_ACTION_ID in json.dumps(m.get("blocks"))),
            None,
        ),
        timeout=60,
        what="a request for approval with its buttons",
    )
    assert "venv" in json.dumps(request["blocks"])
    clicked = harness.interact(
        "action", user="U0ALICE", channel=CHANNEL, message_ts=request["ts"], action_id=action_id
    )
    assert clicked["status"] == 200


def _sleepers(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_a_reply_during_a_command_kills_it_and_the_next_run_gets_its_output(
    harness: Harness,
) -> None:
    marker = f"marker{time.time_ns()}"
    command = f"echo started {marker}; sleep 60; touch done-{marker}"
    harness.script(
        {"text": "Running the slow suite.", "tool_calls": [_call("run_command", command=command)]},
        {"text": "Stopped the slow suite as you asked."},
    )
    ts = harness.post(f"{BOT_MENTION} run the slow suite")
    _running_step(harness, ts, "Running")
    eventually(lambda: _sleepers(f"sleep 60; touch done-{marker}"), what="the command to run")
    harness.post("skip that, it is too slow", thread_ts=ts)
    status = harness.idle_after(ts, tasks=2)
    assert status["last_outcome"] == "completed"
    # The whole process group is gone, and the command never reached its end.
    assert not _sleepers(f"sleep 60; touch done-{marker}")
    assert not (_workspace(harness, ts) / f"done-{marker}").exists()
    after = harness.requests_mentioning("skip that, it is too slow")[0]
    killed = [r for r in _tool_results(after) if "killed by the interruption" in r]
    assert len(killed) == 1
    assert f"started {marker}" in killed[0]
    turns = harness.turns(ts)
    assert [t["kind"] for t in turns] == ["user", "partial", "user", "answer"]
    assert turns[1]["work"][-1]["killed"] is True
    assert any("Cancelled, restarting" in t for t in harness.bot_texts(ts))


def test_edits_before_an_interruption_are_in_the_next_runs_workspace(harness: Harness) -> None:
    slow = {"text": " ".join(f"w{i}" for i in range(400)), "chunk_delay": 0.05}
    harness.script(
        {
            "text": "Writing notes.",
            "tool_calls": [_call("write_file", path="notes.md", content="kept\n")],
        },
        slow,
        {"tool_calls": [_call("read_file", path="notes.md")]},
        {"text": "The notes are there."},
    )
    ts = harness.post(f"{BOT_MENTION} write the notes")
    harness.streaming("Writing notes.", chunks=5)
    harness.post("and read them back", thread_ts=ts)
    harness.idle_after(ts, tasks=2)
    read = harness.requests_mentioning("and read them back")[-1]
    assert any("kept" in r for r in _tool_results(read))
    assert (_workspace(harness, ts) / "notes.md").read_text() == "kept\n"
    assert "notes.md" in harness.status(ts)["workspace"]["patch"]


def test_a_deleted_workspace_is_rebuilt_from_restate_state_with_the_same_diff(
    harness: Harness,
) -> None:
    harness.script(
        {"tool_calls": [_call("write_file", path="added.txt", content="one\ntwo\n")]},
        {"tool_calls": [_call("show_diff")]},
        {"text": "Added."},
    )
    ts = harness.post(f"{BOT_MENTION} add a file")
    harness.idle_after(ts, tasks=1)
    before = _tool_results(harness.requests_mentioning("add a file")[-1])[-1]
    workspace = _workspace(harness, ts)
    assert workspace.exists()
    shutil.rmtree(workspace)
    harness.script({"tool_calls": [_call("show_diff")]}, {"text": "Same diff."})
    harness.post("show me the diff again", thread_ts=ts)
    harness.idle_after(ts, tasks=2)
    after = _tool_results(harness.requests_mentioning("show me the diff again")[-1])[-1]
    assert "added.txt" in after
    assert after == before
    assert (workspace / "added.txt").read_text() == "one\ntwo\n"


def test_a_finished_run_ends_with_a_change_summary_and_the_diff_as_a_file(
    harness: Harness,
) -> None:
    harness.script(
        {"tool_calls": [_call("write_file", path="CHANGELOG.md", content="- fixed\n")]},
        {"text": "Wrote the changelog."},
    )
    ts = harness.post(f"{BOT_MENTION} add a changelog")
    harness.idle_after(ts, tasks=1)
    texts = harness.bot_texts(ts)
    assert any("*Changes:* 1 file, +1 -0: `CHANGELOG.md`" in t for t in texts)
    files = eventually(
        lambda: [f for m in harness.thread(ts) for f in m.get("files") or []],
        what="the diff uploaded into the thread",
    )
    assert files[0]["name"] == "changes.diff"
    runs = harness.status(ts)["last_run"]
    assert [t["name"] for t in runs["tools"]] == ["write_file"]


def test_killing_restate_app_mid_loop_does_not_rerun_finished_tool_steps(
    harness: Harness,
) -> None:
    marker = f"m{time.time_ns()}"
    harness.script(
        {"tool_calls": [_call("run_command", command=f"echo {marker} >> runs.log")]},
        {"text": f"slow {marker} " + " ".join(f"w{i}" for i in range(200)), "chunk_delay": 0.05},
        {"text": "Resumed."},
    )
    ts = harness.post(f"{BOT_MENTION} log once")
    harness.streaming(f"echo {marker}", chunks=5)
    harness.stack.procs["restate_app"].kill()
    harness.stack.start_restate_app()
    status = harness.idle_after(ts, tasks=1, timeout=60)
    assert status["last_outcome"] == "completed"
    assert (_workspace(harness, ts) / "runs.log").read_text().count(marker) == 1
    # The first model call is not asked again: its result is in the journal.
    first_calls = [r for r in harness.requests_mentioning("log once") if not _tool_results(r)]
    assert len(first_calls) == 1


def test_the_demo_repository_gets_fixed_and_a_reply_mid_test_continues_from_the_edit(
    harness: Harness,
) -> None:
    """The newcomer's first run: fix the failing test, approve the install check, interrupt
    the test command, watch the new run continue from the work done (without asking again)
    and end with a diff in the thread."""
    ts = harness.post(f"{BOT_MENTION} please fix the failing test")
    _answer_the_approval(harness, ts, APPROVE_ACTION_ID)

    def testing_the_fix() -> bool:
        status = harness.status(ts)
        edited = any(t["name"] == "edit_file" for t in (status["last_run"] or {}).get("tools", []))
        return edited and "unittest" in (status["running_step"] or "")

    eventually(testing_the_fix, timeout=60, what="the tests to run again after the fix")
    harness.post("use zoneinfo instead", thread_ts=ts)
    status = harness.idle_after(ts, tasks=2, timeout=120)
    assert status["last_outcome"] == "completed"
    texts = harness.bot_texts(ts)
    assert any("Cancelled, restarting" in t for t in texts)
    assert any("```" in t for t in texts)
    files = eventually(
        lambda: [f for m in harness.thread(ts) for f in m.get("files") or []],
        what="the diff uploaded into the thread",
    )
    assert files[-1]["name"] == "changes.diff"
    assert "zoneinfo" in (_workspace(harness, ts) / "dates.py").read_text()
    requests = harness.requests_mentioning("use zoneinfo instead")
    results = _tool_results(requests[0])
    assert any("killed by the interruption" in r for r in results)
    installed = "[approved by <@U0ALICE>; network on for this command]\nexit code 0"
    assert any(r.startswith(installed) for r in results), results
    assert any("Install check:* pip installed the package" in t for t in texts)
    asked = [m for m in harness.thread(ts) if "Approved by" in json.dumps(m.get("blocks"))]
    assert len(asked) == 1, "the continued run does not ask again"
    assert json.dumps(status["workspace"]).count("dates.py") >= 1


def test_the_demo_agent_denied_its_install_check_does_without_and_says_so(
    harness: Harness,
) -> None:
    ts = harness.post(f"{BOT_MENTION} fix the failing test, nothing installed please")
    _answer_the_approval(harness, ts, DENY_ACTION_ID)
    status = harness.idle_after(ts, tasks=1, timeout=120)
    assert status["last_outcome"] == "completed"
    final = harness.requests_mentioning("nothing installed please")[-1]
    assert "The command was not run: <@U0ALICE> denied it." in _tool_results(final)
    # Said while it turns to the tests (the status message shows it live), then answered.
    said = [str(m.get("content")) for m in final["messages"] if m.get("role") == "assistant"]
    assert any("do without it and run the tests directly" in t for t in said)
    texts = harness.bot_texts(ts)
    assert any("skipped because it was denied in this thread" in t for t in texts)
    assert demo.FIXED_MARKER in (_workspace(harness, ts) / demo.MODULE).read_text()


def test_a_reply_during_the_plan_keeps_the_plan(harness: Harness) -> None:
    """The first model call (where the model plans) is cut mid-stream: what it had written
    reaches the next run, marked as interrupted."""
    plan = "Plan: first read dates.py, then " + " ".join(f"step{i}" for i in range(300))
    harness.script({"text": plan, "chunk_delay": 0.05}, {"text": "Following the new plan."})
    ts = harness.post(f"{BOT_MENTION} plan the refactor")
    harness.streaming("plan the refactor", chunks=8)
    harness.post("plan it for zoneinfo instead", thread_ts=ts)
    harness.idle_after(ts, tasks=2)
    after = harness.requests_mentioning("plan it for zoneinfo instead")[0]["messages"]
    kept = [str(m["content"]) for m in after if m["role"] == "assistant"]
    assert any("[interrupted" in text and "Plan: first read dates.py" in text for text in kept)
    assert [t["kind"] for t in harness.turns(ts)] == ["user", "partial", "user", "answer"]
