"""What a person sees of a run in its thread: the step the agent is on before the answer comes,
and, for a cut run, a notice that says truthfully how it was cut."""

from __future__ import annotations

from typing import Any

from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually, plan_step


def _slow(prefix: str, words: int = 300) -> dict[str, object]:
    return {"text": " ".join(f"{prefix}{i}" for i in range(words)), "chunk_delay": 0.05}


def _status_updates(harness: Harness, answer: str) -> list[str]:
    """The texts the status message showed after its post, in order, up to and with the one
    that made it the answer (found by `answer`)."""
    updates = [c["args"] for c in harness.calls("chat.update") if c["args"].get("channel")]
    status_ts = next(u["ts"] for u in updates if answer in str(u.get("text")))
    texts = [str(u.get("text")) for u in updates if u["ts"] == status_ts]
    return texts[: next(i for i, t in enumerate(texts) if answer in t) + 1]


def test_the_status_message_names_the_step_before_the_answer_arrives(harness: Harness) -> None:
    harness.script(
        {
            "text": "**Plan**: run the slow check, then answer.",
            "tool_calls": [{"name": "run_command", "arguments": {"command": "sleep 4"}}],
        },
        {"text": "The slow check is **done**."},
    )
    ts = harness.post(f"{BOT_MENTION} run the slow check")
    assert harness.idle_after(ts, tasks=1)["last_outcome"] == "completed"

    posted = [c["args"] for c in harness.calls("chat.postMessage")]
    status = next(p for p in posted if p.get("thread_ts") == ts)
    assert status["text"].startswith(":hourglass_flowing_sand: Planning…")
    *progress, answer = _status_updates(harness, "The slow check is *done*.")
    heads = [text.splitlines()[0] for text in progress]
    assert ":hourglass_flowing_sand: Running `sleep 4`" in heads
    running = next(t for t in progress if t.startswith(":hourglass_flowing_sand: Running"))
    assert "*Plan*: run the slow check, then answer." in running
    assert "Running" not in answer
    assert "Planning" not in answer


def _start(harness: Harness, marker: str, request: str) -> str:
    harness.script(plan_step(marker), _slow(marker[:2]))
    ts = harness.post(f"{BOT_MENTION} {request}")
    harness.streaming(marker, chunks=10)
    return ts


def _notice(harness: Harness, ts: str, head: str) -> str:
    return eventually(
        lambda: next((t for t in harness.bot_texts(ts) if head in t), None),
        what=f"the notice saying {head!r}",
    )


def test_a_stopped_run_is_labelled_stopped_and_an_interrupted_one_interrupted(
    harness: Harness,
) -> None:
    stopped = _start(harness, "st plan to stop", "count the lines")
    status: dict[str, Any] = harness.status_message(stopped)
    harness.interact(
        "action", user="U0ALICE", channel=CHANNEL, message_ts=status["ts"], action_id="stop_task"
    )
    notice = _notice(harness, stopped, "Stopped by")
    assert "\n>st0 st1" in notice
    assert notice.endswith("\n_(stopped by <@U0ALICE>)_")
    assert "interrupted" not in notice
    assert harness.idle_after(stopped, tasks=1)["last_outcome"] == "stopped"
    harness.script({"text": "Going on."})
    harness.post("go on counting", thread_ts=stopped)
    harness.idle_after(stopped, tasks=2)
    told = str(harness.requests_mentioning("go on counting")[-1]["messages"])
    assert "[stopped: a person stopped this earlier work before it finished]" in told
    assert "[interrupted" not in told

    cut = _start(harness, "cu plan to cut", "count the words")
    harness.post("count the files instead", thread_ts=cut)
    notice = _notice(harness, cut, "Cancelled, restarting")
    assert "\n>cu0 cu1" in notice
    assert notice.endswith("\n_(interrupted by a new message)_")
    assert "stopped" not in notice
    harness.idle_after(cut, tasks=2)


def test_a_run_cut_before_it_wrote_anything_leaves_no_empty_partial(harness: Harness) -> None:
    # The first model turn is a tool call with no text; the reply cuts the run in that step.
    slow = {"name": "run_command", "arguments": {"command": "sleep 30"}}
    harness.script({"tool_calls": [slow]}, {"text": "Counted them."})
    ts = harness.post(f"{BOT_MENTION} count the tests")
    eventually(
        lambda: any("Running `sleep 30`" in t for t in harness.bot_texts(ts)),
        what="the status message naming the command",
    )
    harness.post("count the test files too", thread_ts=ts)

    assert harness.idle_after(ts, tasks=2)["last_outcome"] == "completed"
    notice = _notice(harness, ts, "Cancelled, restarting")
    assert "\n• Running `sleep 30` (killed after" in notice
    assert ">" not in notice
    assert "interrupted" not in notice
    texts = harness.bot_texts(ts)
    assert any("Counted them." in t for t in texts)
    bare = [t for t in texts if not any(ch.isalnum() for ch in t.replace("_", ""))]
    assert not bare, f"a message with no words was left: {bare!r}"
    assert not any("(interrupted" in t for t in texts)
