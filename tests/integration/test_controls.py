"""Steering a session from Slack: Stop, "status", /agent-status, policies, reactions, limits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually, plan_step
from tests.slack_fixtures import load, with_ids


def _slow(words: int = 300, delay: float = 0.05, prefix: str = "w") -> dict[str, object]:
    return {"text": " ".join(f"{prefix}{i}" for i in range(words)), "chunk_delay": delay}


def _start_slow_session(
    harness: Harness, request: str, channel: str = CHANNEL, words: int = 300
) -> str:
    harness.script(plan_step("plan " + request), _slow(words))
    ts = harness.post(f"{BOT_MENTION} {request}", channel=channel)
    harness.streaming("plan " + request)
    return ts


def test_the_stop_button_stops_without_restarting(harness: Harness) -> None:
    ts = _start_slow_session(harness, "index the repository")
    status_msg = harness.status_message(ts)
    clicked = harness.interact(
        "action",
        user="U0ALICE",
        channel=CHANNEL,
        message_ts=status_msg["ts"],
        action_id="stop_task",
    )
    assert clicked["status"] == 200

    eventually(lambda: [t for t in harness.bot_texts(ts) if "Stopped" in t], what="stop notice")
    status = harness.idle_after(ts, tasks=1)
    assert status["stops"] == 1
    assert status["interruptions"] == 0
    assert status["last_outcome"] == "stopped"
    assert not any("restarting" in t for t in harness.bot_texts(ts))
    closed = harness.requests_mentioning("plan index the repository")[-1]
    assert closed["outcome"] == "client_closed"
    # Reactions wait behind every other Slack call (their limits are the tightest).
    eventually(
        lambda: "octagonal_sign" in harness.reactions(ts), timeout=90, what="the stopped reaction"
    )


def test_a_stop_reply_stops_and_is_not_a_turn(harness: Harness) -> None:
    ts = _start_slow_session(harness, "profile the tests")
    harness.post("stop", thread_ts=ts)
    eventually(lambda: [t for t in harness.bot_texts(ts) if "Stopped" in t], what="stop notice")
    status = harness.idle_after(ts, tasks=1)
    assert status["stops"] == 1
    assert [t["text"] for t in harness.turns(ts) if t["kind"] == "user"] == ["profile the tests"]


def test_only_participants_may_stop(harness: Harness) -> None:
    ts = _start_slow_session(harness, "audit the dependencies")
    status_msg = harness.status_message(ts)
    harness.interact(
        "action", user="U0BOB", channel=CHANNEL, message_ts=status_msg["ts"], action_id="stop_task"
    )
    eventually(
        lambda: [e for e in harness.ephemerals("U0BOB") if "Only people" in e.get("text", "")],
        what="a refusal for bob",
    )
    assert harness.status(ts)["state"] == "working"
    harness.post("cancel", thread_ts=ts)
    assert harness.idle_after(ts, tasks=1)["last_outcome"] == "stopped"


def test_status_in_a_thread_answers_privately_and_does_not_interrupt(harness: Harness) -> None:
    ts = _start_slow_session(harness, "write the changelog")
    before = len(harness.ephemerals("U0BOB"))
    harness.post("status", thread_ts=ts, user="U0BOB")
    answer = eventually(
        lambda: harness.ephemerals("U0BOB")[before:], what="an ephemeral status answer"
    )[0]
    assert "working" in answer["text"]
    assert answer["thread_ts"] == ts
    status = harness.status(ts)
    assert status["state"] == "working"
    assert status["interruptions"] == 0
    harness.post("stop", thread_ts=ts)
    harness.idle_after(ts, tasks=1)


def test_agent_status_lists_the_channel_and_details_a_thread_link(harness: Harness) -> None:
    harness.script(plan_step("plan"), {"text": "Done."})
    ts = harness.post(f"{BOT_MENTION} tidy the imports")
    harness.idle_after(ts, tasks=1)

    listing = harness.interact("command", command="/agent-status", text="", channel=CHANNEL)
    assert listing["status"] == 200
    assert listing["json"]["response_type"] == "ephemeral"
    assert "tidy the imports" in listing["json"]["text"]

    link = f"https://sandbox.slack.com/archives/{CHANNEL}/p{ts.replace('.', '')}"
    detail = harness.interact("command", command="/agent-status", text=link, channel=CHANNEL)
    text = detail["json"]["text"]
    assert "idle" in text
    assert "Last task: completed" in text
    assert "Turns: 2" in text

    helped = harness.interact("command", command="/agent-status", text="help", channel=CHANNEL)
    assert "thread link" in helped["json"]["text"]
    unknown = harness.interact("command", command="/agent-status", text="frobnicate")
    assert "I don't know" in unknown["json"]["text"]


def test_the_status_shortcut_answers_for_the_thread(harness: Harness) -> None:
    harness.script(plan_step("plan"), {"text": "Shortcut answer."})
    ts = harness.post(f"{BOT_MENTION} rename the flag")
    harness.idle_after(ts, tasks=1)
    before = len(harness.ephemerals())
    shortcut = harness.interact(
        "shortcut", user="U0ALICE", channel=CHANNEL, message_ts=ts, callback_id="agent_status"
    )
    assert shortcut["status"] == 200
    answer = eventually(lambda: harness.ephemerals()[before:], what="shortcut answer")[0]
    assert "idle" in answer["text"]


def test_queue_mode_answers_each_reply_in_order_without_cancelling(harness: Harness) -> None:
    ts = _start_slow_session(harness, "draft the RFC", channel="C0QUEUE", words=80)
    harness.script(plan_step("plan two"), {"text": "Second answer."})
    harness.post("also cover rollback", thread_ts=ts, channel="C0QUEUE")
    assert eventually(lambda: harness.status(ts, "C0QUEUE")["queued"] == 1, what="queued")
    status = harness.idle_after(ts, tasks=2, timeout=60, channel="C0QUEUE")
    assert status["interruptions"] == 0
    assert [t["kind"] for t in harness.turns(ts, "C0QUEUE")] == ["user", "answer", "user", "answer"]
    assert not any("Cancelled" in t for t in harness.bot_texts(ts, "C0QUEUE"))


def test_a_burst_of_replies_in_the_debounce_window_starts_one_run(harness: Harness) -> None:
    ts = _start_slow_session(harness, "port the CLI", channel="C0BURST")
    for i in range(5):
        harness.post(f"detail {i}", thread_ts=ts, channel="C0BURST")
    status = harness.idle_after(ts, tasks=2, timeout=60, channel="C0BURST")
    assert status["tasks_started"] == 2
    notices = [t for t in harness.bot_texts(ts, "C0BURST") if "Cancelled" in t]
    assert len(notices) <= 1
    users = [t["text"] for t in harness.turns(ts, "C0BURST") if t["kind"] == "user"]
    assert users == ["port the CLI"] + [f"detail {i}" for i in range(5)]


def test_reactions_track_the_state_and_progress_streams_into_the_status(harness: Harness) -> None:
    answer = {"text": "Use **bold** " + "word " * 160, "chunk_delay": 0.05}
    harness.script(plan_step("plan"), answer)
    ts = harness.post(f"{BOT_MENTION} explain the cache")
    harness.idle_after(ts, tasks=1)
    # Reactions wait behind every other Slack call (their limits are the tightest, and this
    # module's earlier sessions have used them): the received one stays, the done one joins.
    done = {"eyes", "white_check_mark"}
    eventually(lambda: harness.reactions(ts) == done, timeout=90, what="the reactions")
    status_msg = next(m for m in harness.thread(ts) if "bold" in m.get("text", ""))
    assert "*bold*" in status_msg["text"]
    assert "**bold**" not in status_msg["text"]
    assert status_msg.get("edited")
    updates = [c for c in harness.calls("chat.update") if c["args"].get("ts") == status_msg["ts"]]
    assert len(updates) >= 2


def test_rate_limited_slack_calls_are_waited_out(harness: Harness) -> None:
    harness.fault("chat.postMessage", count=1, status=429, retry_after=1)
    harness.script(plan_step("plan"), {"text": "After the rate limit."})
    ts = harness.post(f"{BOT_MENTION} reformat the config")
    assert harness.idle_after(ts, tasks=1)["last_outcome"] == "completed"
    assert any("After the rate limit." in t for t in harness.bot_texts(ts))


def test_people_outside_the_allowlist_are_refused_politely(harness: Harness) -> None:
    before = len(harness.ephemerals())
    ts = harness.post(f"{BOT_MENTION} deploy to prod", channel="C0OTHER")
    refusal = eventually(lambda: harness.ephemerals()[before:], what="a refusal")[0]
    assert "not allowed" in refusal["text"]
    assert harness.status(ts, "C0OTHER")["tasks_started"] == 0


def test_slacks_agent_session_stop_button_stops_the_task(harness: Harness) -> None:
    ts = _start_slow_session(harness, "split the module")
    stopped = load("event_agent_session_stopped")
    with_ids(stopped, event_ts=ts + "9", thread_ts=ts, event_id=f"Ev{time.time_ns()}")
    assert harness.deliver(stopped)["status"] == 200
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "stopped"


def test_a_thousand_queued_replies_stay_within_the_sessions_bounds(harness: Harness) -> None:
    """The `queue` policy holds replies while a task runs: 1,000 of 1 kB each leave a stored
    session and a next model request within the limits, with one marker counting the rest."""
    slow = {"text": " ".join(f"w{i}" for i in range(3000)), "chunk_delay": 0.05}
    harness.script(plan_step("plan the queue"), slow, *[{"text": "Read them all."}] * 5)
    ts = harness.post(f"{BOT_MENTION} summarise what follows", channel="C0QUEUE")
    harness.streaming("plan the queue")
    body = "x" * 1_000

    def reply(number: int) -> None:
        with httpx.Client(timeout=60) as http:
            # `wait`: the reply is acked by the bot, so stored in Restate, before the next step.
            message = {"channel": "C0QUEUE", "user": "U0BOB", "text": f"reply {number} {body}"}
            message |= {"wait": True}
            resp = http.post(
                f"{harness.workspace}/_sandbox/messages", json={**message, "thread_ts": ts}
            )
            resp.raise_for_status()

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(reply, range(1000)))

    def read_status() -> dict[str, Any] | None:
        try:
            return harness.status(ts, "C0QUEUE")
        except httpx.TimeoutException:
            return None  # a machine this busy answers late; that is not a lost message

    def idle_after(tasks: int) -> dict[str, Any] | None:
        found = read_status()
        return (
            found
            if found and found["state"] == "idle" and found["tasks_started"] >= tasks
            else None
        )

    eventually(
        lambda: (found := read_status()) is not None and found["queued"] == 50,
        timeout=180,
        what="a full, bounded queue",
    )
    # Stop the long task (the queue joins the conversation), then ask once more.
    harness.post("stop", thread_ts=ts, user="U0ALICE", channel="C0QUEUE")
    eventually(lambda: idle_after(1), timeout=120, what="the stop to settle")
    harness.post("now summarise the replies", thread_ts=ts, channel="C0QUEUE")
    status = eventually(lambda: idle_after(2), timeout=180, what="the next run to end")
    turns = harness.turns(ts, "C0QUEUE")
    assert status["turns"] <= 200
    assert sum(len(t["text"].encode()) for t in turns if t["kind"] != "dropped") <= 256_000
    assert [t["kind"] for t in turns].count("dropped") == 1
    last = harness.requests_mentioning("now summarise the replies")[-1]["messages"]
    assert len(last) <= 201
    assert sum("earlier turns were dropped" in str(m.get("content")) for m in last) == 1


def test_a_run_cut_while_its_status_waits_its_turn_gets_one_notice_above_the_next(
    harness: Harness,
) -> None:
    """In a busy channel a run's status message may still wait for its turn at Slack (about
    one post a second per channel) when a reply cuts the run: the replacement starts at once
    all the same, and the cut run's notice comes once, before the replacement's messages."""
    channel = "C0BURST"
    long_answer = {"text": " ".join(f"w{i}" for i in range(300)), "chunk_delay": 0.05}
    harness.script(long_answer, long_answer, long_answer)
    roots = [harness.post(f"{BOT_MENTION} busy channel {i}", channel=channel) for i in range(3)]
    harness.streaming("busy channel 2", chunks=2)
    harness.script({"text": "Done after the cut."})
    harness.post("cut it short", thread_ts=roots[2], channel=channel)
    harness.idle_after(roots[2], tasks=2, timeout=60, channel=channel)

    def shown() -> list[str] | None:
        bot = sorted(
            (m for m in harness.thread(roots[2], channel) if m.get("bot_id")),
            key=lambda m: m["ts"],
        )
        texts = [str(m.get("text", "")) for m in bot]
        return texts if any("restarting" in t for t in texts) else None

    texts = eventually(shown, timeout=60, what="the cut run's notice")
    notices = [i for i, t in enumerate(texts) if "restarting" in t]
    answers = [i for i, t in enumerate(texts) if "Done after the cut." in t]
    assert len(notices) == 1
    assert len(answers) == 1
    assert notices[0] < answers[0]


def test_a_run_cut_while_its_answer_waits_for_slack_gets_a_notice_quoting_it(
    harness: Harness,
) -> None:
    """The model had finished, but Slack's Retry-After held the answer back when a reply cut
    the run: the status message becomes one notice quoting what the run was about to say (it
    used to count as answered and stay "working" forever), then the replacement answers."""
    marker = f"answer held back {time.time_ns()}"
    harness.fault("chat.update", count=1, status=429, retry_after=20)
    harness.script({"text": "The answer that never showed."}, {"text": "Done after the cut."})
    ts = harness.post(f"{BOT_MENTION} {marker}")
    status_ts = harness.status_message(ts)["ts"]
    eventually(
        lambda: any(r["outcome"] == "completed" for r in harness.requests_mentioning(marker)),
        what="the first answer streamed to its end",
    )
    eventually(
        lambda: any(
            c["http_status"] == 429 and c["args"].get("ts") == status_ts
            for c in harness.calls("chat.update")
        ),
        what="the status message's update answered 429",
    )
    harness.post("cut it short", thread_ts=ts)
    harness.idle_after(ts, tasks=2, timeout=90)

    def settled() -> list[dict[str, Any]] | None:
        bot = [m for m in harness.thread(ts) if m.get("bot_id") and not m.get("files")]
        texts = [str(m.get("text", "")) for m in bot]
        done = any("restarting" in t for t in texts) and any("Done after" in t for t in texts)
        return bot if done else None

    bot = eventually(settled, timeout=90, what="the notice and the replacement's answer")
    notices = [m for m in bot if "restarting" in str(m.get("text", ""))]
    assert len(notices) == 1
    assert "The answer that never showed" in notices[0]["text"]
    assert not [m for m in bot if "stop_task" in str(m.get("blocks"))]


def test_agent_status_pages_through_the_sessions_restate_keeps(harness: Harness) -> None:
    """Each page is its own bounded query on Restate: of eleven sessions, page 1 shows the
    ten most recent and says more follow, page 2 the eleventh."""
    channel, marker = "D0ALICE", f"paging-{time.time_ns()}"
    jobs = [f"{marker} job {i:02d}" for i in range(11)]
    harness.script(*[{"text": "Done."}] * len(jobs))
    with harness.limits_off():
        roots = [harness.post(job, channel=channel) for job in jobs]
        for ts in roots:
            harness.idle_after(ts, tasks=1, channel=channel)
    first = harness.interact("command", command="/agent-status", text="", channel=channel)
    second = harness.interact("command", command="/agent-status", text="page 2", channel=channel)
    first_text, second_text = first["json"]["text"], second["json"]["text"]
    assert sum(job in first_text for job in jobs) == 10
    assert "More: `/agent-status page 2`" in first_text
    assert all(job in first_text + second_text for job in jobs)
    assert "(page 2," in second_text
