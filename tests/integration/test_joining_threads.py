"""The agent called into a thread already under way reads it first: the root message and the
replies before the mention reach its first model request, marked as earlier context, read
once, and the files shared there are copied into its workspace; a thread it started itself is
not read again."""

from __future__ import annotations

import time

from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually, plan_step


def test_a_mention_deep_in_a_thread_brings_the_thread_so_far(harness: Harness) -> None:
    root = harness.post("the nightly build fails on arm64 since tuesday (root-5150)")
    harness.post("it's the new linker flag, I think (reply-6262)", thread_ts=root, user="U0BOB")
    harness.post("reverting it locally fixes it", thread_ts=root)
    harness.script(plan_step("joined"), {"text": "I read the thread."})
    mention = harness.post(f"{BOT_MENTION} can you make a proper fix?", thread_ts=root)

    request = eventually(
        lambda: next(iter(harness.requests_mentioning("root-5150")), None),
        what="a model request with the thread's root message",
    )
    text = next(str(m["content"]) for m in request["messages"] if "root-5150" in str(m))
    assert "Earlier in this thread, before you were called in" in text
    assert text.index("root-5150") < text.index("reply-6262") < text.index("proper fix")
    harness.idle_after(root, tasks=1)
    reads = [c for c in harness.calls("conversations.replies") if c["args"].get("ts") == root]
    assert len(reads) == 1
    assert reads[0]["args"]["latest"] == mention


def test_a_session_the_agent_started_is_not_read_back(harness: Harness) -> None:
    harness.script(plan_step("fresh"), {"text": "Done."})
    root = harness.post(f"{BOT_MENTION} start here")
    harness.idle_after(root, tasks=1)
    harness.script(plan_step("again"), {"text": "Again."})
    harness.post(f"{BOT_MENTION} and now this", thread_ts=root)
    harness.idle_after(root, tasks=2)
    assert [c for c in harness.calls("conversations.replies") if c["args"].get("ts") == root] == []


def test_a_log_shared_before_the_agent_was_called_in_is_in_its_workspace(
    harness: Harness,
) -> None:
    marker = f"m{time.time_ns()}"
    body = {
        "channel": CHANNEL,
        "user": "U0BOB",
        "text": f"the deploy log ({marker})",
        "files": [{"name": "deploy.log", "content": f"step 1 ok\nFATAL {marker}: disk full\n"}],
    }
    resp = harness.http.post(f"{harness.workspace}/_sandbox/messages", json=body)
    resp.raise_for_status()
    root = str(resp.json()["ts"])
    harness.script(
        {
            "text": f"Searching {marker}.",
            "tool_calls": [{"name": "search", "arguments": {"pattern": f"FATAL {marker}"}}],
        },
        {"text": "The disk is full."},
        when=marker,
    )
    harness.post(f"{BOT_MENTION} what broke?", thread_ts=root)
    harness.idle_after(root, tasks=1)
    last = harness.requests_mentioning(f"Searching {marker}.")[-1]
    person = next(str(m["content"]) for m in last["messages"] if m["role"] == "user")
    assert "[Attached file: deploy.log (text/plain" in person
    assert "[Shared files, copied into your workspace: `.slack-files/F" in person
    (found,) = [str(m["content"]) for m in last["messages"] if m["role"] == "tool"]
    assert f"/deploy.log:2:FATAL {marker}: disk full" in found
