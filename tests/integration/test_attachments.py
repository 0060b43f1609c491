"""Files and forwarded messages reach the model: a log attached to a reply is downloaded with
the bot token and its text is in the next model request; a forwarded message's text and link
are; a forward or file share with nothing in it is no turn and interrupts nothing."""

from __future__ import annotations

import time
from typing import Any

from bot.attachments import MAX_FILE_CHARS
from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually, plan_step

FILES_NOTE = "[Shared files, copied into your workspace: `.slack-files/F"
LOG = 'Traceback (most recent call last):\n  File "app.py", line 3\nZeroDivisionError: boom-7731'


def _post(harness: Harness, **body: Any) -> dict[str, Any]:
    body = {"channel": CHANNEL, "user": "U0ALICE", "text": ""} | body
    resp = harness.http.post(f"{harness.workspace}/_sandbox/messages", json=body)
    resp.raise_for_status()
    return dict(resp.json())


def test_a_log_attached_to_a_mention_is_read_into_the_model_request(harness: Harness) -> None:
    harness.script(plan_step("look at the log"), {"text": "Found it."})
    sent = _post(
        harness,
        text=f"{BOT_MENTION} why does this fail?",
        files=[{"name": "build.log", "content": LOG}],
    )
    request = eventually(
        lambda: next(iter(harness.requests_mentioning("boom-7731")), None),
        what="a model request with the log's text",
    )
    user_text = str(request["messages"])
    assert "build.log (text/plain" in user_text
    assert "why does this fail?" in user_text
    harness.idle_after(sent["ts"], tasks=1)


def test_a_file_shared_without_a_comment_is_a_turn_with_the_file(harness: Harness) -> None:
    harness.script(plan_step("start"), {"text": "Ready."})
    root = harness.post(f"{BOT_MENTION} I'll send you the failing output")
    harness.idle_after(root, tasks=1)
    harness.script(plan_step("read it"), {"text": "Read it."})
    _post(harness, thread_ts=root, files=[{"name": "out.txt", "content": "expected 3, got 4"}])
    eventually(
        lambda: next(iter(harness.requests_mentioning("expected 3, got 4")), None),
        what="a model request with the shared file's text",
    )
    harness.idle_after(root, tasks=2)


def test_a_forwarded_message_reaches_the_model_with_its_author_and_link(
    harness: Harness,
) -> None:
    original = harness.post("the deploy broke at step migrate-42", user="U0BOB")
    harness.script(plan_step("check"), {"text": "Checked."})
    root = harness.post(f"{BOT_MENTION} can you look at this?")
    harness.idle_after(root, tasks=1)
    harness.script(plan_step("forwarded"), {"text": "Seen."})
    _post(harness, thread_ts=root, forward={"channel": CHANNEL, "ts": original})
    request = eventually(
        lambda: next(iter(harness.requests_mentioning("migrate-42")), None),
        what="a model request with the forwarded text",
    )
    assert "Forwarded message from" in str(request["messages"])
    assert f"/archives/{CHANNEL}/p{original.replace('.', '')}" in str(request["messages"])


def test_a_forward_of_an_empty_message_is_no_turn_and_interrupts_nothing(
    harness: Harness,
) -> None:
    harness.script(plan_step("working"), {"text": " ".join(["word"] * 150), "chunk_delay": 0.05})
    empty = _post(harness, files=[{"name": "x.txt", "content": "x"}])  # a root with no thread
    root = harness.post(f"{BOT_MENTION} write a long answer")
    harness.streaming("working")
    # Slack forwards a message whose text is empty (a file-only post) as an attachment with no
    # text: nothing a person wrote, nothing attached.
    forward = {"channel": CHANNEL, "ts": empty["ts"]}
    sent = _post(harness, thread_ts=root, forward=forward, wait=True)
    assert [d["status"] for d in sent["deliveries"]] == [200]  # answered while the run streams
    status = harness.idle_after(root, tasks=1)
    assert status["tasks_started"] == 1
    assert status["last_outcome"] == "completed"
    assert [t["kind"] for t in harness.turns(root)] == ["user", "answer"]
    assert not [t for t in harness.bot_texts(root) if "Cancelled" in t]


def test_a_shared_file_is_copied_whole_into_the_workspace_and_kept_out_of_the_changes(
    harness: Harness,
) -> None:
    """The turn's text has the start of a long log; the agent's tools find all of it in the
    workspace, and the copy is no change of the session's."""
    marker = f"tail{time.time_ns()}"
    log_text = "\n".join(f"line {i}: ok" for i in range(3000)) + f"\nFATAL {marker}\n"
    assert len(log_text) > MAX_FILE_CHARS
    harness.script(
        {
            "text": f"Searching {marker}.",
            "tool_calls": [
                {"name": "search", "arguments": {"pattern": f"FATAL {marker}", "path": "."}},
                {"name": "write_file", "arguments": {"path": "NOTES.md", "content": "seen\n"}},
            ],
        },
        {"text": "Found the fatal line."},
        when=marker,
    )
    sent = _post(
        harness,
        text=f"{BOT_MENTION} where does this log fail? ({marker})",
        files=[{"name": "../big build.log", "content": log_text}],
    )
    harness.idle_after(sent["ts"], tasks=1)
    last = harness.requests_mentioning(f"Searching {marker}.")[-1]
    person = next(m for m in last["messages"] if m["role"] == "user")
    assert FILES_NOTE in str(person["content"])
    found, _ = [str(m["content"]) for m in last["messages"] if m["role"] == "tool"]
    assert f"/_big_build.log:3001:FATAL {marker}" in found
    assert found.startswith(".slack-files/F")
    # The model's own copy of the text stops long before the line it found in the workspace.
    assert f"FATAL {marker}" not in str(person["content"])
    patch = harness.status(sent["ts"])["workspace"]["patch"]
    assert "NOTES.md" in patch
    assert ".slack-files" not in patch
