"""Nothing lost, nothing doubled: crashes, restarts, bursts and failing dependencies."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import BOT_MENTION, Harness, eventually, plan_step


def _slow(words: int = 250, delay: float = 0.04) -> dict[str, object]:
    return {"text": " ".join(f"s{i}" for i in range(words)), "chunk_delay": delay}


def _streaming_session(harness: Harness, request: str) -> str:
    harness.script(plan_step("plan " + request), _slow())
    ts = harness.post(f"{BOT_MENTION} {request}")
    eventually(
        lambda: [
            r for r in harness.requests_mentioning("plan " + request) if r["chunks_sent"] >= 5
        ],
        what="the answer to stream",
    )
    return ts


def _exactly_one_answer(harness: Harness, ts: str) -> str:
    texts = harness.bot_texts(ts)
    assert len(texts) == 1, texts
    return texts[0]


def test_killing_restate_app_mid_stream_resumes_with_exactly_one_answer(harness: Harness) -> None:
    ts = _streaming_session(harness, "migrate the schema")
    harness.stack.procs["restate_app"].kill()
    harness.stack.start_restate_app()
    status = harness.idle_after(ts, tasks=1, timeout=90)
    assert status["last_outcome"] == "completed"
    assert "offline demo model" in _exactly_one_answer(harness, ts)


def test_restarting_the_restate_server_mid_task_loses_nothing(harness: Harness) -> None:
    ts = _streaming_session(harness, "bump the SDK")
    harness.stack.procs["restate"].stop()
    harness.stack.start_restate()
    status = harness.idle_after(ts, tasks=1, timeout=90)
    assert status["last_outcome"] == "completed"
    _exactly_one_answer(harness, ts)
    harness.post("one more thing", thread_ts=ts)
    assert harness.idle_after(ts, tasks=2, timeout=60)["last_outcome"] == "completed"


def test_an_event_the_bot_received_but_never_forwarded_runs_once_on_slacks_retry(
    harness: Harness,
) -> None:
    """Restate down: the bot answers 500 instead of acking; it dies; Slack's retry runs once."""
    stack = harness.stack
    stack.procs["restate"].stop()
    posted = harness.post_message(f"{BOT_MENTION} check the retries")
    ts, event_id = posted["ts"], posted["event_ids"][0]
    eventually(
        lambda: [d for d in harness.deliveries() if d["event_id"] == event_id and d["status"]],
        what="a refused first delivery",
    )
    stack.procs["bot"].kill()
    stack.start_restate()
    stack.start_bot()
    status = harness.idle_after(ts, tasks=1, timeout=60)
    assert status["tasks_started"] == 1
    assert [t["kind"] for t in harness.turns(ts)] == ["user", "answer"]


def test_sigterm_stops_the_bot_and_restate_app_gracefully(harness: Harness) -> None:
    for name, start in (
        ("bot", harness.stack.start_bot),
        ("restate_app", harness.stack.start_restate_app),
    ):
        proc = harness.stack.procs[name]
        proc.stop(signal.SIGTERM, timeout=15)
        assert proc.popen.returncode == 0, f"{name} did not exit cleanly on SIGTERM"
        start()
    harness.script(plan_step("plan"), {"text": "Back."})
    ts = harness.post(f"{BOT_MENTION} are you back?")
    assert harness.idle_after(ts, tasks=1)["last_outcome"] == "completed"


def test_twenty_replies_in_two_seconds_are_each_kept_once_in_order(harness: Harness) -> None:
    ts = _streaming_session(harness, "write the parser")
    replies = [f"reply {i:02d}" for i in range(20)]
    for text in replies:
        harness.post(text, thread_ts=ts)
    status = harness.idle_after(ts, tasks=2, timeout=120)
    users = [t["text"] for t in harness.turns(ts) if t["kind"] == "user"]
    assert users == ["write the parser", *replies]
    assert status["last_outcome"] == "completed"
    # Every run and notice ends (the notices trail the runs, queued behind Slack's limits).
    eventually(
        lambda: (
            not harness.sql(
                "SELECT id FROM sys_invocation WHERE target_service_name = 'CodingTask' "
                "AND status <> 'completed'"
            )
        ),
        timeout=120,
        what="every CodingTask invocation to end",
    )


def test_fifty_threads_at_once_each_keep_their_messages(harness: Harness) -> None:
    # Short answers: this is about messages, not about the demo agent's tool runs.
    harness.script(*[{"text": "Answered."}] * 200)
    roots = [harness.post(f"{BOT_MENTION} thread {i:02d}") for i in range(50)]
    for i, ts in enumerate(roots):
        harness.post(f"follow-up {i:02d}", thread_ts=ts)

    def settled(i: int, ts: str) -> bool:
        try:
            status, turns = harness.status(ts), harness.turns(ts)
        except httpx.TimeoutException:
            return False  # a machine this busy answers late; that is not a lost message

        users = [t["text"] for t in turns if t["kind"] == "user"]
        return (
            status["state"] == "idle"
            and users == [f"thread {i:02d}", f"follow-up {i:02d}"]
            and turns[-1]["kind"] == "answer"
            and status["last_outcome"] == "completed"
        )

    for i, ts in enumerate(roots):
        eventually(lambda i=i, ts=ts: settled(i, ts), timeout=240, what=f"thread {i} settled")


@pytest.mark.parametrize(
    "script",
    [
        [{"hang": 6}, plan_step("plan"), {"text": "After a hang."}],
        [plan_step("plan"), {"text": "cut " * 50, "close_after": 3}, {"text": "After a cut."}],
    ],
    ids=["hang-past-timeout", "closed-mid-answer"],
)
def test_a_model_that_hangs_or_drops_the_stream_is_retried(
    harness: Harness, script: list[dict[str, object]]
) -> None:
    harness.script(*script)
    ts = harness.post(f"{BOT_MENTION} survive the model")
    assert harness.idle_after(ts, tasks=1, timeout=60)["last_outcome"] == "completed"
    assert any("After a" in t for t in harness.bot_texts(ts))


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel"])
def test_a_permanent_slack_error_fails_the_task_and_the_thread_still_works(
    harness: Harness, error: str
) -> None:
    harness.fault("chat.postMessage", count=2, error=error)
    ts = harness.post(f"{BOT_MENTION} post somewhere odd")
    assert harness.idle_after(ts, tasks=1)["last_outcome"] == "failed"
    log = (Path(harness.stack.workdir) / "restate_app.log").read_text()
    assert error in log
    harness.post("try again", thread_ts=ts)
    assert harness.idle_after(ts, tasks=2)["last_outcome"] == "completed"


def test_a_slack_that_does_not_answer_is_waited_for_then_retried(harness: Harness) -> None:
    harness.fault("chat.postMessage", count=1, delay=12)
    ts = harness.post(f"{BOT_MENTION} slow slack")
    assert harness.idle_after(ts, tasks=1, timeout=60)["last_outcome"] == "completed"


def test_a_slack_outage_during_the_notice_never_holds_up_the_restart(harness: Harness) -> None:
    ts = _streaming_session(harness, "survive slack")
    harness.fault("chat.postMessage", count=2, delay=8)
    harness.fault("chat.update", count=2, delay=8)
    harness.post("change of plan", thread_ts=ts)
    status = harness.idle_after(ts, tasks=2, timeout=120)
    assert status["interruptions"] == 1
    slow = [c["wall"] + c["duration"] for c in harness.calls("chat.update") if c["duration"] > 7]
    replacement = harness.requests_mentioning("change of plan")[0]
    assert replacement["received_at"] < min(slow)
    assert [t for t in harness.bot_texts(ts) if "Cancelled, restarting" in t]


@pytest.mark.after_all
def test_no_secret_reaches_the_logs_or_restate_state(harness: Harness) -> None:
    env = harness.stack.env
    secrets = [env["SLACK_BOT_TOKEN"], env["SLACK_SIGNING_SECRET"], env["OPENAI_API_KEY"]]
    secrets += [v for k, v in env.items() if k == "DASHBOARD_TOKEN"]
    logs = {
        p.name: p.read_text(errors="replace") for p in Path(harness.stack.workdir).glob("*.log")
    }
    assert logs
    for name, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in {name}"
    for secret in secrets:
        rows = harness.sql(f"SELECT service_key FROM state WHERE value_utf8 LIKE '%{secret}%'")
        assert rows == []


def test_events_are_not_acked_while_slack_auth_is_unavailable(harness: Harness) -> None:
    """A fresh bot that cannot run auth.test answers 503, so Slack delivers the event again."""
    stack = harness.stack
    stack.procs["bot"].stop()
    harness.fault("auth.test", count=3, error="ratelimited", status=429, retry_after=0)
    stack.start_bot()
    posted = harness.post_message(f"{BOT_MENTION} after the auth outage")
    status = harness.idle_after(posted["ts"], tasks=1, timeout=60)
    assert status["tasks_started"] == 1
    first = [d for d in harness.deliveries() if d["event_id"] == posted["event_ids"][0]]
    assert first[0]["status"] == 503
    # Leave a bot that started with Slack reachable (the dashboard reads its workspace URL).
    stack.procs["bot"].stop()
    stack.start_bot()
