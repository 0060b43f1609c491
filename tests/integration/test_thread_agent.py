"""The interruptible thread agent, end to end: signed Slack events in, answers in the thread."""

from __future__ import annotations

import time

from tests.integration.harness import BOT_MENTION, Harness, envelope, eventually, plan_step


def _slow_answer(words: int = 200, delay: float = 0.05) -> dict[str, object]:
    return {"text": " ".join(f"word{i}" for i in range(words)), "chunk_delay": delay}


def test_a_mention_gets_an_answer_in_its_thread(harness: Harness) -> None:
    harness.script(plan_step("1. read the code\n2. fix it"), {"text": "Here is the **fix**."})
    ts = harness.post(f"{BOT_MENTION} please fix the flaky test")

    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "completed"
    assert any("Here is the" in t and "fix" in t for t in harness.bot_texts(ts))
    kinds = [t["kind"] for t in harness.turns(ts)]
    assert kinds == ["user", "answer"]


def test_a_reply_mid_stream_closes_the_stream_and_restarts_with_everything(
    harness: Harness,
) -> None:
    harness.script(plan_step("plan for the migration"), _slow_answer())
    ts = harness.post(f"{BOT_MENTION} write the migration")
    first_answer = eventually(
        lambda: [
            r
            for r in harness.requests_mentioning("plan for the migration")
            if r["chunks_sent"] >= 5
        ],
        what="the first answer to stream",
    )[0]

    reply = harness.post_message("use PostgreSQL, not MySQL", thread_ts=ts)

    closed = eventually(
        lambda: next(
            (
                r
                for r in harness.model_requests()
                if r["id"] == first_answer["id"] and r["client_closed_at"]
            ),
            None,
        ),
        what="the first answer's stream to be closed by the client",
    )
    assert closed["outcome"] == "client_closed"
    assert closed["chunks_sent"] < 200
    arrived = harness.delivered_at(reply["event_ids"][0])
    latency_ms = (closed["client_closed_at"] - arrived) * 1e3
    print(f"reply at the bot -> old stream closed: {latency_ms:.1f} ms")

    eventually(
        lambda: [t for t in harness.bot_texts(ts) if "Cancelled" in t and "restarting" in t],
        what="the cancelled, restarting notice",
    )
    labelled = "_(interrupted by a new message)_"
    assert any("word0" in t and labelled in t for t in harness.bot_texts(ts))
    status = harness.idle_after(ts, tasks=2)
    assert status["interruptions"] == 1
    assert status["last_outcome"] == "completed"

    rerun = next(
        r
        for r in harness.requests_mentioning("use PostgreSQL")
        if r["received_at"] > closed["client_closed_at"]
    )
    text = str(rerun["messages"])
    assert "write the migration" in text
    assert "interrupted" in text
    assert "word0 word1" in text
    assert [t["kind"] for t in harness.turns(ts)] == ["user", "partial", "user", "answer"]


def test_slack_retries_and_mention_twins_start_one_task(harness: Harness) -> None:
    ts = harness.post(f"{BOT_MENTION} summarise the design doc")
    harness.idle_after(ts, tasks=1)
    mention = envelope(
        {
            "type": "app_mention",
            "channel": "C0GENERAL",
            "user": "U0ALICE",
            "text": f"{BOT_MENTION} summarise the design doc",
            "ts": ts,
            "event_ts": ts,
        },
        event_id="EvRETRIED" + ts.replace(".", ""),
    )
    redelivered = harness.deliver(
        mention, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert redelivered["status"] == 200

    harness.post("and the appendix", thread_ts=ts)
    status = harness.idle_after(ts, tasks=2)
    assert status["tasks_started"] == 2
    assert [t["kind"] for t in harness.turns(ts)] == ["user", "answer", "user", "answer"]


def test_bot_messages_and_edits_are_ignored(harness: Harness) -> None:
    ts = harness.post(f"{BOT_MENTION} check the logs")
    harness.idle_after(ts, tasks=1)
    base = {"channel": "C0GENERAL", "channel_type": "channel", "thread_ts": ts}
    ignored = [
        {**base, "type": "message", "bot_id": "B0OTHER", "text": "beep", "ts": f"{ts}1"},
        {
            **base,
            "type": "message",
            "subtype": "message_changed",
            "ts": f"{ts}2",
            "message": {"text": "edited", "user": "U0ALICE", "ts": ts},
        },
        {**base, "type": "message", "subtype": "message_deleted", "ts": f"{ts}3"},
    ]
    for event in ignored:
        assert harness.deliver(envelope(event))["status"] == 200

    harness.post("thanks", thread_ts=ts)
    status = harness.idle_after(ts, tasks=2)
    assert status["tasks_started"] == 2
    user_texts = [t["text"] for t in harness.turns(ts) if t["kind"] == "user"]
    assert user_texts == ["check the logs", "thanks"]


def test_a_bad_signature_is_refused_and_does_nothing(harness: Harness) -> None:
    forged_mention = envelope(
        {
            "type": "app_mention",
            "channel": "C0GENERAL",
            "user": "U0ALICE",
            "text": f"{BOT_MENTION} forged",
            "ts": "1000000000.000001",
        }
    )
    forged = harness.deliver(
        forged_mention, headers={"X-Slack-Signature": "v0=" + "0" * 64}, sign=False
    )
    assert forged["status"] == 401
    stale = harness.deliver(forged_mention, timestamp=int(time.time()) - 600)
    assert stale["status"] == 401
    assert harness.status("1000000000.000001")["tasks_started"] == 0


def test_a_model_failure_ends_in_a_friendly_message_and_the_next_reply_works(
    harness: Harness,
) -> None:
    harness.script({"status": 500}, {"status": 500})
    ts = harness.post(f"{BOT_MENTION} refactor the parser")
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "failed"
    assert any("Sorry" in t for t in harness.bot_texts(ts))
    assert not any("Traceback" in t or "500" in t for t in harness.bot_texts(ts))

    harness.script(plan_step("plan"), {"text": "Refactored."})
    harness.post("try again please", thread_ts=ts)
    status = harness.idle_after(ts, tasks=2)
    assert status["last_outcome"] == "completed"
    assert any("Refactored." in t for t in harness.bot_texts(ts))


def test_a_rate_limited_model_is_retried_after_its_retry_after(harness: Harness) -> None:
    harness.script({"status": 429, "retry_after": 1}, plan_step("plan"), {"text": "Answered."})
    ts = harness.post(f"{BOT_MENTION} rename the module")
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "completed"
    assert any("Answered." in t for t in harness.bot_texts(ts))
    limited, retried = harness.requests_mentioning("rename the module")[:2]
    assert limited["status"] == 429
    print(f"retried {retried['received_at'] - limited['received_at']:.2f} s after a 429")


def test_a_slack_outage_during_the_run_is_retried(harness: Harness) -> None:
    harness.http.post(
        f"{harness.workspace}/_sandbox/faults",
        json={"method": "chat.postMessage", "count": 2, "status": 500},
    ).raise_for_status()
    ts = harness.post(f"{BOT_MENTION} bump the version")
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "completed"
    statuses = [
        c["http_status"]
        for c in harness.calls("chat.postMessage")
        if c["args"].get("thread_ts") == ts
    ]
    assert statuses.count(500) == 2
