"""Shipping a thread's work on the real stack: "open a PR" and the Create PR button wait for a
person's approval, then push the thread's branch to the sandbox GitHub's remote and open one
draft pull request, whose link is posted once; a later run updates the same branch and pull
request; a denied request pushes nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from common.contract import APPROVE_ACTION_ID, DENY_ACTION_ID, SHIP_ACTION_ID
from tests.github_sandbox import branches
from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually


def _write(path: str, content: str, answer: str) -> list[dict[str, Any]]:
    call = {"name": "write_file", "arguments": {"path": path, "content": content}}
    return [{"text": "Writing it.", "tool_calls": [call]}, {"text": answer}]


def _with_action(harness: Harness, ts: str, action_id: str, after: str = "") -> dict[str, Any]:
    """The thread's newest message (after ts `after`) with a button `action_id`."""
    return eventually(
        lambda: next(
            (
                m
                for m in reversed(harness.thread(ts))
                if m["ts"] > after and action_id in json.dumps(m.get("blocks"))
            ),
            None,
        ),
        what=f"a message with {action_id}",
    )


def _click(
    harness: Harness, message: dict[str, Any], action_id: str, user: str = "U0ALICE"
) -> None:
    clicked = harness.interact(
        "action", user=user, channel=CHANNEL, message_ts=message["ts"], action_id=action_id
    )
    assert clicked["status"] == 200


def _pulls(harness: Harness) -> list[dict[str, Any]]:
    resp = httpx.get(harness.workspace + "/_sandbox/pulls")
    resp.raise_for_status()
    return list(resp.json()["pulls"])


def _remote(harness: Harness) -> Path:
    return Path(harness.stack.env["AGENT_REPO"])


def _ship_state(harness: Harness, ts: str) -> dict[str, Any]:
    rows = harness.sql(
        "SELECT value_utf8 FROM state WHERE service_name = 'CodingAgent' "
        f"AND key = 'session' AND service_key LIKE '%:{ts}'"
    )
    return dict(json.loads(rows[0]["value_utf8"])["ship"])


def _ship_done(harness: Harness, ts: str, jobs: int) -> dict[str, Any]:
    return eventually(
        lambda: (s := _ship_state(harness, ts))["jobs"] == jobs and s["running"] is None and s,
        what=f"ship {jobs} to end",
    )


def test_open_a_pr_waits_for_approval_then_opens_one_draft_and_later_runs_update_it(
    harness: Harness,
) -> None:
    marker = f"m{time.time_ns()}"
    harness.script(*_write(f"notes-{marker}.md", "first\n", "Wrote the notes."))
    ts = harness.post(f"{BOT_MENTION} write release notes {marker}")
    harness.idle_after(ts, tasks=1)
    # The answer that changed files offers Create PR.
    _with_action(harness, ts, SHIP_ACTION_ID)
    before = set(branches(_remote(harness)))

    harness.post("open a PR", thread_ts=ts)
    request = _with_action(harness, ts, APPROVE_ACTION_ID)
    assert "draft pull request" in json.dumps(request["blocks"])
    # Nothing is pushed before a person says yes.
    assert set(branches(_remote(harness))) == before
    _click(harness, request, APPROVE_ACTION_ID)

    state = _ship_done(harness, ts, jobs=1)
    branch, url = state["branch"], state["pr_url"]
    assert branch.startswith("agent/write-release-notes")
    assert branch in branches(_remote(harness))
    mine = [p for p in _pulls(harness) if p["head"] == branch]
    assert [(p["html_url"], p["draft"]) for p in mine] == [(url, True)]
    links = lambda: [t for t in harness.bot_texts(ts) if url in t]  # noqa: E731
    assert len(eventually(links, what="the pull request's link")) == 1
    first_commit = branches(_remote(harness))[branch]

    # A later run that changes files asks to push again; approved, it updates the same PR.
    harness.script(*_write(f"notes-{marker}.md", "second\n", "Updated the notes."))
    last = harness.thread(ts)[-1]["ts"]
    harness.post(f"{BOT_MENTION} say second instead", thread_ts=ts)
    harness.idle_after(ts, tasks=2)
    _click(harness, _with_action(harness, ts, APPROVE_ACTION_ID, after=last), APPROVE_ACTION_ID)
    _ship_done(harness, ts, jobs=2)
    assert branches(_remote(harness))[branch] != first_commit
    assert [p["html_url"] for p in _pulls(harness) if p["head"] == branch] == [url]
    eventually(
        lambda: [t for t in harness.bot_texts(ts) if "updated" in t and "#" in t],
        what="a line saying the pull request was updated",
    )
    assert len(links()) == 1


def test_a_denied_ship_pushes_nothing_and_the_button_asks_again(harness: Harness) -> None:
    marker = f"d{time.time_ns()}"
    harness.script(*_write(f"draft-{marker}.txt", "x\n", "Drafted."))
    ts = harness.post(f"{BOT_MENTION} draft a file {marker}")
    harness.idle_after(ts, tasks=1)
    before = branches(_remote(harness))

    answer = _with_action(harness, ts, SHIP_ACTION_ID)
    _click(harness, answer, SHIP_ACTION_ID)
    request = _with_action(harness, ts, DENY_ACTION_ID)
    _click(harness, request, DENY_ACTION_ID, user="U0ALICE")
    state = _ship_done(harness, ts, jobs=1)
    assert (state["branch"], state["last_outcome"]) == (None, "denied")
    assert branches(_remote(harness)) == before

    # Someone outside the thread cannot approve the next request.
    last = request["ts"]
    _click(harness, answer, SHIP_ACTION_ID)
    again = _with_action(harness, ts, APPROVE_ACTION_ID, after=last)
    _click(harness, again, APPROVE_ACTION_ID, user="U0BOB")
    eventually(
        lambda: [e for e in harness.ephemerals("U0BOB") if "Only the people" in e["text"]],
        what="a refusal for bob",
    )
    assert _ship_state(harness, ts)["running"] == 2
    _click(harness, again, APPROVE_ACTION_ID)
    assert _ship_done(harness, ts, jobs=2)["last_outcome"] == "shipped"
