"""A release upgrade as docs/deploy.md describes it ("Upgrading and rolling back"), on loopback.

The pinned restate-server, the sandbox Slack and offline model, the bot, and `restate_app`
served three times from the same code under three URLs, each its own registration: v1, then
v2 (the upgrade), then v3 (the roll-back, which is a roll-forward to old code under a new URL).
New invocations go to the newest deployment; a run already going stays pinned to the one it
started on and finishes there; the drained old deployment is removed through the admin API.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.stack import Stack
from tests.conftest import product_env
from tests.integration.harness import BOT_MENTION, Harness, eventually, open_harness

# A real Restate server and three restate_app processes: left out by `make unit`.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# The first run streams long enough (about 8 s) for v2 to be started and registered meanwhile.
SLOW_END = "end-of-the-v1-run"
SLOW = {"chunks": [f"w{i} " for i in range(160)] + [SLOW_END], "chunk_delay": 0.05}
# Runs whose deployment is read while they go: a couple of seconds each.
STEADY_END = "end-of-a-steady-run"
STEADY = {"chunks": [f"s{i} " for i in range(40)] + [STEADY_END], "chunk_delay": 0.05}


@pytest.fixture(scope="module")
def release_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Restate, the sandbox, the bot and restate_app v1 (`restate_app`), registered: a stack of
    this module's own, as the test adds and removes deployments the shared stack's tests use."""
    env = product_env(
        ALLOWED_TEAM_IDS="T0SANDBOX",
        ALLOWED_CHANNEL_IDS="C0GENERAL",
        DASHBOARD_PORT="0",
        DASHBOARD_TOKEN="dash-" + secrets.token_hex(12),
    )
    stack = Stack(workdir=Path(tmp_path_factory.mktemp("upgrade")), env=env)
    try:
        stack.start_restate()
        stack.start_product(chunk_delay=0.01)
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def harness(release_stack: Stack) -> Iterator[Harness]:
    """The harness on this module's stack (in place of tests/conftest.py's shared one)."""
    with open_harness(release_stack) as harness:
        yield harness


def start_release(harness: Harness, name: str) -> str:
    """Serve the same code again on a port of its own, registered under its own URL (by
    restate_app itself, with the admin API's `POST /deployments`); the new deployment's id."""
    stack = harness.stack
    stack.env["RESTATE_APP_PORT"] = "0"
    stack.start_restate_app(name)
    return deployments(harness)[stack.urls[name]]


def deployments(harness: Harness) -> dict[str, str]:
    """The registered deployments: URL to id."""
    resp = harness.http.get(harness.stack.urls["admin"] + "/deployments")
    resp.raise_for_status()
    return {d["uri"].rstrip("/"): d["id"] for d in resp.json()["deployments"]}


def running_task(harness: Harness, ts: str) -> str:
    """The invocation id of the session's running task, once it runs."""
    found = eventually(lambda: harness.status(ts).get("running_task_id"), what=f"a task in {ts}")
    return str(found)


def invocation(harness: Harness, invocation_id: str) -> dict[str, Any]:
    """An invocation's status and the deployment it is pinned to (none before it starts)."""
    rows = harness.sql(
        f"SELECT status, pinned_deployment_id FROM sys_invocation WHERE id = '{invocation_id}'"
    )
    return rows[0] if rows else {}


def pinned_to(harness: Harness, invocation_id: str) -> str:
    """The deployment an invocation is pinned to, once it has started on one."""
    pinned = eventually(
        lambda: invocation(harness, invocation_id).get("pinned_deployment_id"),
        what=f"{invocation_id} pinned to a deployment",
    )
    return str(pinned)


def unfinished_on(harness: Harness, deployment: str) -> int:
    """The drain check docs/deploy.md gives operators (step 4)."""
    rows = harness.sql(
        "SELECT count(*) AS n FROM sys_invocation "
        f"WHERE pinned_deployment_id = '{deployment}' AND status <> 'completed'"
    )
    return int(rows[0]["n"])


def answers(harness: Harness, ts: str, marker: str) -> int:
    return sum(marker in text for text in harness.bot_texts(ts))


def new_session_on(harness: Harness, text: str) -> tuple[str, str]:
    """Start a session with a steady run; its thread and the deployment its run is on."""
    harness.script(STEADY)
    ts = harness.post(f"{BOT_MENTION} {text}")
    return ts, pinned_to(harness, running_task(harness, ts))


def reply_runs_on(harness: Harness, ts: str) -> str:
    """Reply in a thread whose session is idle; the deployment the new run is on, once the
    run has answered."""
    harness.script(STEADY)
    harness.post("one more thing", thread_ts=ts)
    deployment = pinned_to(harness, running_task(harness, ts))
    harness.idle_after(ts, tasks=2)
    return deployment


def remove_deployment(harness: Harness, deployment: str, force: bool) -> httpx.Response:
    url = f"{harness.stack.urls['admin']}/deployments/{deployment}"
    return harness.http.delete(url, params={"force": str(force).lower()})


def remove_drained(harness: Harness, deployment: str) -> None:
    """Remove a deployment as `restate deployments remove` does: the admin API implements
    only forced removal (`force=false` answers 501), so the drain check is the caller's."""
    eventually(lambda: unfinished_on(harness, deployment) == 0, what=f"{deployment} to drain")
    refused = remove_deployment(harness, deployment, force=False)
    assert refused.status_code == 501, refused.text
    removed = remove_deployment(harness, deployment, force=True)
    assert removed.status_code < 300, removed.text


def test_a_new_release_takes_new_runs_while_running_ones_finish_on_the_old_then_rolls_forward(
    harness: Harness,
) -> None:
    stack = harness.stack
    v1 = deployments(harness)[stack.urls["restate_app"]]
    harness.script(SLOW)
    first = harness.post(f"{BOT_MENTION} a long piece of work")
    first_task = running_task(harness, first)
    assert pinned_to(harness, first_task) == v1

    v2 = start_release(harness, "v2")
    second, second_on = new_session_on(harness, "work for the new release")
    assert second_on == v2
    assert harness.status(first)["running_task_id"] == first_task
    assert pinned_to(harness, first_task) == v1

    harness.idle_after(first, tasks=1)
    harness.idle_after(second, tasks=1)
    assert answers(harness, first, SLOW_END) == 1
    assert invocation(harness, first_task) == {"status": "completed", "pinned_deployment_id": v1}
    remove_drained(harness, v1)
    stack.procs["restate_app"].stop()
    assert v1 not in deployments(harness).values()

    assert reply_runs_on(harness, first) == v2
    assert answers(harness, first, SLOW_END) == 1
    assert answers(harness, first, STEADY_END) == 1

    v3 = start_release(harness, "v3")
    _, third_on = new_session_on(harness, "work after the roll-back")
    assert third_on == v3
