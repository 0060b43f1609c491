"""An Enterprise Grid org-wide installation, on the real stack: the sandbox sends Slack's
org-wide payloads (no installation team in `authorizations`, `enterprise` on interactions, no
`team`), and every way into a thread reaches the same session, keyed by the organisation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually, plan_step

ORG = "E0SANDBOX"


@pytest.fixture
def org_wide(harness: Harness) -> Iterator[Harness]:
    harness.http.post(f"{harness.workspace}/_sandbox/install", json={"org_wide": ORG})
    try:
        yield harness
    finally:
        harness.http.post(f"{harness.workspace}/_sandbox/install", json={"org_wide": None})


def test_an_org_wide_install_answers_and_keeps_one_session_per_thread(org_wide: Harness) -> None:
    harness = org_wide
    harness.script(plan_step("org plan"), {"text": "Answered for the org."})
    ts = harness.post(f"{BOT_MENTION} hello from the org")
    eventually(
        lambda: [t for t in harness.bot_texts(ts) if "Answered for the org" in t],
        what="the answer in the thread",
    )
    eventually(
        lambda: harness.agent(ts, "status", team=ORG)["turns"] >= 2 or None,
        what="the session, keyed by the organisation, to hold the question and the answer",
    )

    harness.script(plan_step("second"), {"text": "Second answer."})
    harness.post("and one more thing", thread_ts=ts)
    eventually(
        lambda: harness.agent(ts, "status", team=ORG)["tasks_started"] == 2 or None,
        what="the reply to reach the same session",
    )


def test_the_status_shortcut_on_an_org_wide_install_finds_the_session(org_wide: Harness) -> None:
    harness = org_wide
    harness.script(plan_step("plan"), {"text": "Done here."})
    ts = harness.post(f"{BOT_MENTION} shortcut check")
    eventually(lambda: harness.agent(ts, "status", team=ORG)["state"] == "idle" or None)
    before = len(harness.ephemerals())
    harness.interact(
        "shortcut", user="U0ALICE", channel=CHANNEL, message_ts=ts, callback_id="agent_status"
    )
    shown = eventually(
        lambda: harness.ephemerals()[before:],
        what="the shortcut's answer",
    )
    assert "There is no agent session" not in str(shown)
    assert "*Session* in" in str(shown)
