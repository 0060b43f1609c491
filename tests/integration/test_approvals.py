"""Approvals on the real stack: a risky command waits for Approve in its thread; the
participants (or an admin) answer, others are refused; Deny and no answer in time reach the
model as the tool's result; a Stop or a reply while it waits ends it cleanly; a restart of
every process while it waits changes nothing; a push is never made without an approval."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.listeners.approvals import NOT_ALLOWED, NOT_WAITING
from common.contract import APPROVE_ACTION_ID, DENY_ACTION_ID
from restate_app.tools.workspace import directory_name
from sandbox.stack import Stack
from tests.integration.harness import BOT_MENTION, CHANNEL, TEAM, Harness, eventually, open_harness


def _run(command: str) -> dict[str, Any]:
    return {
        "text": "Running it.",
        "tool_calls": [{"name": "run_command", "arguments": {"command": command}}],
    }


def _tool_results(request: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in request["messages"] if m.get("role") == "tool"]


def _request_message(harness: Harness, ts: str) -> dict[str, Any]:
    """The thread's request for approval, once it shows its buttons."""
    return eventually(
        lambda: next(
            (m for m in harness.thread(ts) if APPROVE_ACTION_ID in json.dumps(m.get("blocks"))),
            None,
        ),
        what="a request for approval with its buttons",
    )


def _current(harness: Harness, ts: str, request_ts: str) -> dict[str, Any]:
    return dict(harness.message(request_ts, thread_ts=ts))


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


def _click(harness: Harness, message: dict[str, Any], action_id: str, user: str) -> None:
    clicked = harness.interact(
        "action", user=user, channel=CHANNEL, message_ts=message["ts"], action_id=action_id
    )
    assert clicked["status"] == 200


def _stale_click(harness: Harness, message: dict[str, Any], action_id: str, user: str) -> None:
    """A click on the request as it was (a client that has not seen it change): Slack's
    `block_actions` payload with the original button, signed and delivered to the bot."""
    button = next(b for b in _buttons(message) if b["action_id"] == action_id)
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "api_app_id": "A0SANDBOX",
        "team": {"id": TEAM, "domain": "sandbox"},
        "channel": {"id": CHANNEL, "name": "general"},
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": CHANNEL,
            "thread_ts": message.get("thread_ts"),
        },
        "trigger_id": "1.2.3",
        "actions": [button | {"block_id": "approval", "action_ts": f"{time.time():.6f}"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    delivered = harness.deliver(body, content_type="application/x-www-form-urlencoded")
    assert delivered["status"] == 200


def _told(harness: Harness, user: str, text: str, before: int = 0) -> dict[str, Any]:
    return eventually(
        lambda: next((e for e in harness.ephemerals(user)[before:] if text in e["text"]), None),
        what=f"an ephemeral {text!r} for {user}",
    )


def _ended(harness: Harness, ts: str, request_ts: str, line: str) -> dict[str, Any]:
    """The request once it shows how it ended, without its buttons."""
    return eventually(
        lambda: (
            (m := _current(harness, ts, request_ts))
            and line in json.dumps(m.get("blocks"))
            and not _buttons(m)
            and m
        ),
        what=f"the request to say {line!r} without buttons",
    )


def _workspace(harness: Harness, ts: str) -> Path:
    root = Path(harness.stack.env["WORKSPACES_DIR"])
    return root / directory_name(f"{TEAM}:{CHANNEL}:{ts}")


def test_a_participants_approve_runs_the_command_and_an_outsider_is_refused(
    harness: Harness,
) -> None:
    marker = f"m{time.time_ns()}"
    command = f"curl --version > /dev/null; echo {marker} >> approved.log; echo ran-{marker}"
    harness.script(_run(command), {"text": f"Fetched {marker}."})
    ts = harness.post(f"{BOT_MENTION} fetch the data {marker}")
    request = _request_message(harness, ts)
    text = json.dumps(request["blocks"])
    assert f"curl --version &gt; /dev/null; echo {marker}" in text
    assert "it reaches the network" in text
    assert [b["action_id"] for b in _buttons(request)] == [APPROVE_ACTION_ID, DENY_ACTION_ID]
    eventually(
        lambda: "Waiting for approval" in (harness.status(ts)["running_step"] or ""),
        what="the timeline to say the run waits for approval",
    )

    before = len(harness.ephemerals("U0BOB"))
    _click(harness, request, APPROVE_ACTION_ID, "U0BOB")
    _told(harness, "U0BOB", NOT_ALLOWED, before)
    assert harness.status(ts)["state"] == "working"
    assert _buttons(_current(harness, ts, request["ts"])), "a refused click changes nothing"

    clicked_at = time.time()
    _click(harness, request, APPROVE_ACTION_ID, "U0ALICE")
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "completed"
    after = harness.requests_mentioning(f"ran-{marker}")[0]
    result = _tool_results(after)[-1]
    assert f"ran-{marker}" in result
    assert "approved by <@U0ALICE>; network on for this command" in result
    print(f"approval click -> next model request: {after['received_at'] - clicked_at:.3f} s")
    _ended(harness, ts, request["ts"], "Approved by <@U0ALICE>")
    assert (_workspace(harness, ts) / "approved.log").read_text().count(marker) == 1

    # A click from a client that still shows the buttons changes nothing and says so.
    before = len(harness.ephemerals("U0ALICE"))
    _stale_click(harness, request, DENY_ACTION_ID, "U0ALICE")
    _told(harness, "U0ALICE", "already answered: approved by <@U0ALICE>", before)
    assert len(harness.requests_mentioning(f"ran-{marker}")) == 1


def test_a_push_denied_is_never_made_and_the_model_hears_why(harness: Harness) -> None:
    marker = f"agent-{time.time_ns()}"
    harness.script(
        _run(f"git push origin HEAD:refs/heads/{marker}"),
        {"text": f"I left {marker} unpushed, as asked."},
    )
    ts = harness.post(f"{BOT_MENTION} push it to {marker}")
    request = _request_message(harness, ts)
    assert "it pushes or publishes" in json.dumps(request["blocks"])
    _click(harness, request, DENY_ACTION_ID, "U0ALICE")
    assert harness.idle_after(ts, tasks=1)["last_outcome"] == "completed"
    final = harness.requests_mentioning(f"refs/heads/{marker}")[-1]
    assert "The command was not run: <@U0ALICE> denied it." in _tool_results(final)
    assert any(f"I left {marker} unpushed" in t for t in harness.bot_texts(ts))
    _ended(harness, ts, request["ts"], "Denied by <@U0ALICE>")
    remote = harness.stack.env["AGENT_REPO"]
    refs = subprocess.run(
        ["git", "--git-dir", remote, "for-each-ref", "--format=%(refname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert marker not in refs


def _restart_restate_app(stack: Stack, **env: str | None) -> None:
    for name, value in env.items():
        if value is None:
            stack.env.pop(name, None)
        else:
            stack.env[name] = value
    stack.procs["restate_app"].stop()
    stack.start_restate_app()


@pytest.fixture
def short_timeout(stack: Stack) -> Iterator[Harness]:
    """restate_app with a 2 s `APPROVAL_TIMEOUT`, as before afterwards."""
    _restart_restate_app(stack, APPROVAL_TIMEOUT="2")
    try:
        with open_harness(stack) as harness:
            yield harness
    finally:
        _restart_restate_app(stack, APPROVAL_TIMEOUT=None)


def test_no_answer_in_time_reaches_the_model_and_the_run_goes_on(short_timeout: Harness) -> None:
    harness = short_timeout
    marker = f"m{time.time_ns()}"
    harness.script(_run(f"wget -q http://example.invalid/{marker}"), {"text": f"Skipped {marker}."})
    ts = harness.post(f"{BOT_MENTION} download {marker}")
    request = _request_message(harness, ts)
    assert "No answer within 2 s counts as no." in json.dumps(request["blocks"])
    assert harness.idle_after(ts, tasks=1, timeout=60)["last_outcome"] == "completed"
    final = harness.requests_mentioning(f"example.invalid/{marker}")[-1]
    assert "The command was not run: nobody approved it within 2 s." in _tool_results(final)
    _ended(harness, ts, request["ts"], "No answer within 2 s")
    before = len(harness.ephemerals("U0ALICE"))
    _stale_click(harness, request, APPROVE_ACTION_ID, "U0ALICE")
    _told(harness, "U0ALICE", "nobody answered in time", before)


@pytest.mark.parametrize("how", ["stop", "reply"])
def test_a_stop_or_a_reply_while_waiting_ends_the_wait_and_takes_the_buttons_away(
    harness: Harness, how: str
) -> None:
    marker = f"m{time.time_ns()}"
    harness.script(_run(f"curl -s http://example.invalid/{marker}"), {"text": "Did it without."})
    ts = harness.post(f"{BOT_MENTION} call the API {marker}")
    request = _request_message(harness, ts)
    if how == "stop":
        _click(harness, harness.status_message(ts), "stop_task", "U0ALICE")
        status = harness.idle_after(ts, tasks=1)
        assert status["last_outcome"] == "stopped"
        line = "No longer needed: the run was stopped."
        notice = "Stopped"
    else:
        harness.post("never mind, do it without the network", thread_ts=ts)
        status = harness.idle_after(ts, tasks=2)
        assert status["last_outcome"] == "completed"
        line = "No longer needed: the run was interrupted."
        notice = "Cancelled, restarting"
        replacement = harness.requests_mentioning("never mind")[0]
        assert any("interrupted" in r for r in _tool_results(replacement))
    _ended(harness, ts, request["ts"], line)
    eventually(
        lambda: len([t for t in harness.bot_texts(ts) if notice in t]) == 1,
        what=f"one {notice!r} notice",
    )
    before = len(harness.ephemerals("U0ALICE"))
    _stale_click(harness, request, APPROVE_ACTION_ID, "U0ALICE")
    _told(harness, "U0ALICE", NOT_WAITING, before)


def test_an_approval_survives_killing_restate_app_and_restarting_restate(
    harness: Harness,
) -> None:
    stack = harness.stack
    marker = f"m{time.time_ns()}"
    command = f"curl --version > /dev/null; echo {marker} >> approved.log"
    harness.script(_run(command), {"text": f"Survived {marker}."})
    ts = harness.post(f"{BOT_MENTION} fetch after a crash {marker}")
    request = _request_message(harness, ts)
    stack.procs["restate_app"].kill()
    stack.procs["restate"].stop()
    stack.start_restate()
    stack.start_restate_app()
    _click(harness, request, APPROVE_ACTION_ID, "U0ALICE")
    status = harness.idle_after(ts, tasks=1, timeout=90)
    assert status["last_outcome"] == "completed"
    assert status["tasks_started"] == 1
    assert (_workspace(harness, ts) / "approved.log").read_text().count(marker) == 1
    assert [t["kind"] for t in harness.turns(ts)] == ["user", "answer"]
    _ended(harness, ts, request["ts"], "Approved by <@U0ALICE>")
    asked = [m for m in harness.thread(ts) if "Approved by" in json.dumps(m.get("blocks"))]
    assert len(asked) == 1, "the request was asked once"
