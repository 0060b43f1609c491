"""Hostile or broken requests to the public Slack endpoint: refused or answered, never fatal."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.integration.harness import (
    BOT_MENTION,
    CHANNEL,
    TEAM,
    Harness,
    envelope,
    eventually,
    plan_step,
)


def _mention(ts: str, text: str = f"{BOT_MENTION} hello", **extra: Any) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "channel": CHANNEL,
        "user": "U0ALICE",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        **extra,
    }


def _fresh_ts() -> str:
    now = time.time_ns() // 1000
    return f"{now // 1_000_000}.{now % 1_000_000:06d}"


def test_missing_wrong_and_stale_signatures_get_401_and_do_nothing(harness: Harness) -> None:
    ts = _fresh_ts()
    body = envelope(_mention(ts))
    url = harness.stack.urls["bot_events"]
    missing = httpx.post(url, json=body)
    assert missing.status_code == 401
    wrong = harness.deliver(body, headers={"X-Slack-Signature": "v0=" + "1" * 64}, sign=False)
    assert wrong["status"] == 401
    stale = harness.deliver(body, timestamp=int(time.time()) - 301)
    assert stale["status"] == 401
    assert harness.status(ts)["turns"] == 0


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ('{"type": "event_callback", "event": ', "application/json"),
        ('["not", "an", "object"]', "application/json"),
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        ("a=1&&=&b", "application/x-www-form-urlencoded"),
        ("text=no-command-here", "application/x-www-form-urlencoded"),
        ("\x00\x01\x02", "application/octet-stream"),
    ],
)
def test_malformed_bodies_get_400_and_the_bot_lives_on(
    harness: Harness, raw: str, content_type: str
) -> None:
    answered = harness.deliver(raw, content_type=content_type)
    assert answered["status"] == 400
    assert httpx.get(harness.stack.urls["bot"] + "/healthz").status_code == 200


def test_a_body_over_the_size_limit_is_refused(harness: Harness) -> None:
    huge = json.dumps(envelope(_mention(_fresh_ts(), text="x" * 2_000_000)))
    answered = httpx.post(
        harness.stack.urls["bot_events"],
        content=huge,
        headers=harness.signed_headers(huge),
    )
    assert answered.status_code == 413


def test_unknown_event_types_and_commands_are_acknowledged(harness: Harness) -> None:
    event = {"type": "reaction_added", "user": "U0ALICE", "reaction": "eyes", "event_ts": "1.2"}
    assert harness.deliver(envelope(event))["status"] == 200
    unknown = harness.interact("command", command="/frobnicate", text="now")
    assert unknown["status"] == 200
    assert "don't know" in (unknown["json"] or {}).get("text", "")


def test_a_huge_message_with_control_characters_and_emoji_is_bounded_and_kept(
    harness: Harness,
) -> None:
    harness.script(plan_step("plan"), {"text": "ok"})
    text = f"{BOT_MENTION} fix \u0007 this 🚀 " + "y" * 100_000
    ts = harness.post(text)
    harness.idle_after(ts, tasks=1)
    first = harness.turns(ts)[0]["text"]
    assert first.startswith("fix \u0007 this 🚀")
    assert len(first) < 21_000


def test_events_for_a_team_or_channel_not_served_have_no_effect(harness: Harness) -> None:
    ts = _fresh_ts()
    foreign = harness.deliver(envelope(_mention(ts, channel="C0OTHER")))
    assert foreign["status"] == 200
    assert harness.status(ts, "C0OTHER")["turns"] == 0
    other_team = harness.deliver(envelope(_mention(ts, team="T0ELSEWHERE"), team="T0ELSEWHERE"))
    assert other_team["status"] == 200
    assert harness.agent(ts, "status", team="T0ELSEWHERE")["turns"] == 0
    assert harness.status(ts)["turns"] == 0


def test_a_slack_connect_guest_is_refused_though_the_event_names_an_allowed_team(
    harness: Harness,
) -> None:
    """In a Slack Connect channel the event's `team` is the host's (allowed) while the
    author's `user_team` is their own organisation's (not allowed): no session starts."""
    ts, before = _fresh_ts(), len(harness.ephemerals("U0BOB"))
    guest = _mention(ts, team=TEAM, user_team="T0GUEST", source_team="T0GUEST", user="U0BOB")
    assert harness.deliver(envelope(guest))["status"] == 200
    refusal = eventually(lambda: harness.ephemerals("U0BOB")[before:], what="a refusal")[0]
    assert "not allowed" in refusal["text"]
    assert harness.status(ts)["turns"] == 0


@pytest.mark.parametrize("page", ["²", "0", "99999"])
def test_agent_status_with_a_page_number_it_cannot_serve_answers_clearly(
    harness: Harness, page: str
) -> None:
    answered = harness.interact("command", command="/agent-status", text=f"page {page}")
    assert answered["status"] == 200
    assert "Pages go from 1 to" in (answered["json"] or {}).get("text", "")
