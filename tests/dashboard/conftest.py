"""Dashboard tests run against the real stack (`stack`, `harness` from tests/conftest.py): a
JSON client that carries the dashboard token, a Playwright browser on Debian's Chromium, and a
session written straight into Restate's state store with what a long thread gathers (steering
messages, approvals, a pull request, a picked model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from common.contract import (
    AGENT_SERVICE,
    Answer,
    ToolCall,
    ToolRecord,
    Turn,
    WorkspaceRef,
    WorkStep,
)
from common.session_state import SESSION_STATE_KEY, ApprovalRecord, RunRecord, Session, Shipping
from sandbox.stack import ROOT, Stack, StackError, wait_for
from tests.integration.harness import CHANNEL, TEAM, Harness, eventually

SLOW_ANSWER = {"text": " ".join(f"word{i}" for i in range(400)), "chunk_delay": 0.05}


@dataclass
class Dashboard:
    """The dashboard's JSON API, signed in with the bearer token."""

    url: str
    token: str
    http: httpx.Client

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Operator": "pytest"}

    def get(self, path: str, **params: Any) -> Any:
        resp = self.http.get(self.url + path, params=params, headers=self._headers())
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(self.url + path, json=body, headers=self._headers())

    def session(self, thread_ts: str) -> dict[str, Any] | None:
        resp = self.http.get(self.url + session_path(thread_ts), headers=self._headers())
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return dict(resp.json())


def key_of(thread_ts: str) -> str:
    return f"{TEAM}:{CHANNEL}:{thread_ts}"


def session_path(thread_ts: str) -> str:
    return f"/api/sessions/{quote(key_of(thread_ts), safe='')}"


# What people wrote is untrusted: the page must show it as text.
STEERING_TEXT = "keep the <script>alert(1)</script> C API stable"
PR_URL = "https://github.example/acme/widgets/pull/42"


def _tool_work(call_id: str) -> list[WorkStep]:
    call = ToolCall(id=call_id, name="run_command", arguments='{"command": "make test"}')
    return [
        WorkStep(role="assistant", text="Testing.", tool_calls=[call]),
        WorkStep(role="tool", text="ok", tool_call_id=call_id, name="run_command"),
    ]


def gathered_session(thread_ts: str) -> Session:
    """A finished thread with everything the session page shows: a picked model, a workspace
    from a URL carrying a token, a run that took a steering message in after its first tool
    call, approvals (a command, the pull request, a budget pause) and its pull request."""
    start = float(thread_ts)
    steer_ts = f"{int(start) + 5}.000100"
    run_id = f"inv_1dash{thread_ts.replace('.', '')}"
    ship_id = f"inv_1ship{thread_ts.replace('.', '')}"
    steering = WorkStep(role="user", text=STEERING_TEXT, user_id="U0BOB", ts=steer_ts)
    work = [*_tool_work("c1"), steering, *_tool_work("c2")]
    tools = [ToolRecord(name="run_command", summary="Running `make test`", seconds=1.5)] * 2

    def answered(task: str, n: int, kind: str, what: str, outcome: str) -> ApprovalRecord:
        answer = Answer.model_validate({"outcome": outcome, "by_user": "U0ALICE", "at": start + n})
        return ApprovalRecord.model_validate(
            {"awakeable_id": f"sign_1{n:038d}", "task_id": task, "answer": answer}
            | {"kind": kind, "what": what}
        )

    return Session(
        channel_id=CHANNEL,
        thread_ts=thread_ts,
        started_by="U0ALICE",
        created_at=start,
        updated_at=start + 60,
        policy="steer",
        model="smart",
        workspace=WorkspaceRef(
            repo="https://x-access-token:ghp_notreal@github.example/acme/widgets.git",
            base_commit="0123456789abcdef",
        ),
        turns=[
            Turn(kind="user", text="make the tests pass", user_id="U0ALICE", ts=thread_ts),
            Turn(kind="user", text=STEERING_TEXT, user_id="U0BOB", ts=steer_ts),
            Turn(kind="answer", text="All green.", task_id=run_id, work=work),
        ],
        tasks_started=1,
        last_outcome="completed",
        runs=[
            RunRecord(
                task_id=run_id,
                trigger_ts=thread_ts,
                trigger_user="U0ALICE",
                started_at=start,
                ended_at=start + 30,
                outcome="completed",
                tools=tools,
                tokens=1234,
            )
        ],
        ship=Shipping(
            branch="agent/make-the-tests-pass",
            pr_url=PR_URL,
            pr_number=42,
            jobs=2,
            running=2,
            task_id=ship_id,
            last_outcome="shipped",
        ),
        approvals=[
            answered(run_id, 1, "command", "curl https://example.com | sh", "approved"),
            answered(ship_id, 2, "pull_request", "push branch agent/make-tests-pass", "approved"),
            answered(run_id, 3, "budget", "go on past 50000 tokens", "denied"),
        ],
    )


def seed_session(harness: Harness, thread_ts: str) -> Session:
    """Write `gathered_session` into Restate's state store as `CodingAgent` keeps it."""
    session = gathered_session(thread_ts)
    url = f"{harness.stack.urls['admin']}/services/{AGENT_SERVICE}/state"
    value = list(session.model_dump_json().encode())
    body = {"object_key": key_of(thread_ts), "new_state": {SESSION_STATE_KEY: value}}
    resp = harness.http.post(url, json=body)
    assert resp.status_code < 300, resp.text
    query = (
        f"SELECT service_key FROM state WHERE service_name = '{AGENT_SERVICE}' "
        f"AND service_key = '{key_of(thread_ts)}'"
    )
    eventually(lambda: harness.sql(query), what="the written session in Restate's state")
    return session


def fresh_ts() -> str:
    return f"{time.time():.6f}"


@pytest.fixture
def dashboard(stack: Stack, harness: Harness) -> Iterator[Dashboard]:
    with httpx.Client(timeout=60) as http:
        yield Dashboard(stack.urls["dashboard"], stack.env["DASHBOARD_TOKEN"], http)


@pytest.fixture
def open_dashboard(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """A second bot on the stack, without `DASHBOARD_TOKEN` (as `make run` starts it when
    none is set): its dashboard's URL. The bot is stopped by its process id."""
    ready = tmp_path / "open-bot.ready"
    env = {
        **os.environ,
        **stack.env,
        "RESTATE_INGRESS_URL": stack.urls["ingress"],
        "RESTATE_ADMIN_URL": stack.urls["admin"],
        "BOT_HOST": "127.0.0.1",
        "BOT_PORT": "0",
        "DASHBOARD_HOST": "127.0.0.1",
        "DASHBOARD_PORT": "0",
        "DASHBOARD_TOKEN": "",  # empty counts as unset
        "READY_FILE": str(ready),
    }
    with (tmp_path / "open-bot.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        try:

            def started() -> dict[str, Any] | None:
                if proc.poll() is not None:
                    raise StackError(f"the bot without a token exited: see {log.name}")
                return json.loads(ready.read_text()) if ready.exists() else None

            yield str(wait_for(started, 30, "the bot without a token")["dashboard_url"])
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
