"""Slack's own agent session, on the real stack: a run marks the thread's session processing
(Slack then shows its stop button), pressing that button stops the run as Stop does, and the
session is active again once the run has ended."""

from __future__ import annotations

from typing import Any

from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually, plan_step


def _session(harness: Harness, thread_ts: str) -> dict[str, Any] | None:
    resp = harness.http.get(f"{harness.workspace}/_sandbox/agent_sessions")
    resp.raise_for_status()
    return next((s for s in resp.json()["sessions"] if s["thread_ts"] == thread_ts), None)


def test_slacks_stop_button_stops_the_run_and_the_session_goes_back_to_active(
    harness: Harness,
) -> None:
    slow = {"text": " ".join(f"w{i}" for i in range(2000)), "chunk_delay": 0.05}
    harness.script(plan_step("a long answer"), slow)
    ts = harness.post(f"{BOT_MENTION} explain everything (native-stop)")
    harness.streaming("a long answer")
    processing = eventually(
        lambda: (s := _session(harness, ts)) and s["status"] == "processing" and s,
        what="the thread's agent session to be processing",
    )
    assert "explain everything" in processing["title"]

    pressed = harness.http.post(
        f"{harness.workspace}/_sandbox/agent_stop",
        json={"channel": CHANNEL, "thread_ts": ts, "user": "U0ALICE"},
    )
    pressed.raise_for_status()
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "stopped"
    eventually(
        lambda: [t for t in harness.bot_texts(ts) if "Stopped by" in t],
        what="the stopped notice",
    )
    eventually(
        lambda: ((s := _session(harness, ts)) and s["status"] == "active") or None,
        what="the session to be active again",
    )


def test_a_finished_run_leaves_its_session_active(harness: Harness) -> None:
    harness.script(plan_step("short"), {"text": "Done quickly."})
    ts = harness.post(f"{BOT_MENTION} something short")
    harness.idle_after(ts, tasks=1)
    eventually(
        lambda: ((s := _session(harness, ts)) and s["status"] == "active") or None,
        what="the session to be active after the answer",
    )
