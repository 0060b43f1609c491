"""Drives the running stack from tests: the sandbox's control API, Restate's ingress and admin."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from sandbox.stack import Stack

T = TypeVar("T")
BOT_MENTION = "<@U0BOT>"
CHANNEL = "C0GENERAL"
TEAM = "T0SANDBOX"


def envelope(
    event: dict[str, Any], team: str = TEAM, event_id: str | None = None
) -> dict[str, Any]:
    """An Events API `event_callback` envelope around `event`, as Slack sends it."""
    return {
        "token": "sandbox-verification-token",
        "type": "event_callback",
        "team_id": team,
        "api_app_id": "A0SANDBOX",
        "event": event,
        "event_id": event_id or f"Ev{time.time_ns()}",
        "event_time": int(time.time()),
    }


def eventually(check: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
    """Poll until `check` returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}: last value {last!r}")


@contextmanager
def open_harness(stack: Stack) -> Iterator[Harness]:
    """A harness on `stack`, with the model's script and the workspace's faults cleared."""
    with httpx.Client(timeout=30) as http:
        http.delete(stack.urls["model"].removesuffix("/v1") + "/_model/script")
        http.delete(stack.urls["workspace"] + "/_sandbox/faults")
        yield Harness(stack=stack, http=http)


@dataclass
class Harness:
    stack: Stack
    http: httpx.Client

    @property
    def workspace(self) -> str:
        return self.stack.urls["workspace"]

    @property
    def model(self) -> str:
        return self.stack.urls["model"].removesuffix("/v1")

    # ------------------------------------------------------------------ sandbox Slack
    def post(
        self,
        text: str,
        thread_ts: str | None = None,
        user: str = "U0ALICE",
        channel: str = CHANNEL,
    ) -> str:
        """A person's message, delivered to the bot as Slack would; returns its ts."""
        return str(self.post_message(text, thread_ts, user, channel)["ts"])

    def post_message(
        self,
        text: str,
        thread_ts: str | None = None,
        user: str = "U0ALICE",
        channel: str = CHANNEL,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if thread_ts:
            body["thread_ts"] = thread_ts
        resp = self.http.post(f"{self.workspace}/_sandbox/messages", json=body)
        resp.raise_for_status()
        return dict(resp.json())

    def delivered_at(self, event_id: str) -> float:
        """When the workspace sent an event to the bot (the first attempt), unix seconds."""
        url = f"{self.workspace}/_sandbox/deliveries"

        def first() -> list[dict[str, Any]]:
            resp = self.http.get(url, params={"event_id": event_id})
            resp.raise_for_status()
            return list(resp.json()["deliveries"])

        return float(eventually(first, what=f"delivery of {event_id}")[0]["started_at"])

    def deliver(self, body: Any, headers: dict[str, str] | None = None, **extra: Any) -> Any:
        payload = {"body": body, "headers": headers or {}, **extra}
        resp = self.http.post(f"{self.workspace}/_sandbox/deliver", json=payload)
        resp.raise_for_status()
        return resp.json()

    def thread(self, thread_ts: str, channel: str = CHANNEL) -> list[dict[str, Any]]:
        resp = self.http.get(
            f"{self.workspace}/_sandbox/messages",
            params={"channel": channel, "thread_ts": thread_ts},
        )
        resp.raise_for_status()
        return list(resp.json()["messages"])

    def bot_texts(self, thread_ts: str, channel: str = CHANNEL) -> list[str]:
        return [m.get("text", "") for m in self.thread(thread_ts, channel) if m.get("bot_id")]

    def message(self, ts: str, channel: str = CHANNEL, thread_ts: str | None = None) -> Any:
        return next(m for m in self.thread(thread_ts or ts, channel) if m["ts"] == ts)

    def reactions(self, ts: str, channel: str = CHANNEL, thread_ts: str | None = None) -> set[str]:
        return {r["name"] for r in self.message(ts, channel, thread_ts).get("reactions", [])}

    def status_message(self, thread_ts: str, channel: str = CHANNEL) -> dict[str, Any]:
        """The bot message of the thread that carries a Stop button."""
        return eventually(
            lambda: next(
                (m for m in self.thread(thread_ts, channel) if "stop_task" in str(m.get("blocks"))),
                None,
            ),
            what="a status message with a Stop button",
        )

    def ephemerals(self, user: str = "U0ALICE") -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.workspace}/_sandbox/ephemerals", params={"user": user})
        resp.raise_for_status()
        return list(resp.json()["ephemerals"])

    def interact(self, kind: str, **body: Any) -> dict[str, Any]:
        """A slash command (`command`), button click (`action`) or shortcut (`shortcut`)."""
        resp = self.http.post(f"{self.workspace}/_sandbox/{kind}", json=body)
        resp.raise_for_status()
        return dict(resp.json())

    def fault(self, method: str, **fault: Any) -> None:
        resp = self.http.post(f"{self.workspace}/_sandbox/faults", json={"method": method, **fault})
        resp.raise_for_status()

    def calls(self, method: str) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.workspace}/_sandbox/calls", params={"method": method})
        resp.raise_for_status()
        return list(resp.json()["calls"])

    def limits(self) -> dict[str, Any]:
        """Whether the workspace enforces Slack's rate limits, and the 429s it has answered:
        `rate_limited`, `by_method` and `during_retry_after` (calls that ignored a Retry-After)."""
        resp = self.http.get(f"{self.workspace}/_sandbox/limits")
        resp.raise_for_status()
        return dict(resp.json())

    def set_limits(self, enabled: bool) -> dict[str, Any]:
        resp = self.http.post(f"{self.workspace}/_sandbox/limits", json={"enabled": enabled})
        resp.raise_for_status()
        return dict(resp.json())

    @contextmanager
    def limits_off(self) -> Iterator[None]:
        """Slack's rate limits off for a block, then back as they were."""
        before = bool(self.limits()["enabled"])
        self.set_limits(False)
        try:
            yield
        finally:
            self.set_limits(before)

    def deliveries(self) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.workspace}/_sandbox/deliveries")
        resp.raise_for_status()
        return list(resp.json()["deliveries"])

    def signed_headers(self, body: str) -> dict[str, str]:
        """Slack's v0 signature of `body`, for requests sent straight to the bot."""
        timestamp = str(int(time.time()))
        secret = self.stack.env["SLACK_SIGNING_SECRET"].encode()
        digest = hmac.new(secret, f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}",
        }

    # ------------------------------------------------------------------ offline model
    def script(self, *responses: dict[str, Any], when: str | None = None) -> None:
        """Queue model replies; with `when`, each answers only a request whose messages hold
        that text (a run left over from another test cannot take them)."""
        items = [r if when is None else {"when": when, **r} for r in responses]
        resp = self.http.post(f"{self.model}/_model/script", json={"responses": items})
        resp.raise_for_status()

    def model_requests(self) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.model}/_model/requests")
        resp.raise_for_status()
        return list(resp.json()["requests"])

    def streaming(self, marker: str, chunks: int = 3) -> dict[str, Any]:
        """Wait for a model request whose messages contain `marker` to stream `chunks` chunks."""
        return eventually(
            lambda: next(
                (r for r in self.requests_mentioning(marker) if r["chunks_sent"] >= chunks), None
            ),
            what=f"a model stream for {marker!r}",
        )

    def requests_mentioning(self, text: str) -> list[dict[str, Any]]:
        return [
            r for r in self.model_requests() if any(text in str(m) for m in r.get("messages", []))
        ]

    # ------------------------------------------------------------------ Restate
    def agent(
        self, thread_ts: str, handler: str, channel: str = CHANNEL, team: str = TEAM
    ) -> dict[str, Any]:
        key = quote(f"{team}:{channel}:{thread_ts}", safe="")
        resp = self.http.post(f"{self.stack.urls['ingress']}/CodingAgent/{key}/{handler}")
        resp.raise_for_status()
        return dict(resp.json())

    def status(self, thread_ts: str, channel: str = CHANNEL) -> dict[str, Any]:
        return self.agent(thread_ts, "status", channel)

    def turns(self, thread_ts: str, channel: str = CHANNEL) -> list[dict[str, Any]]:
        return list(self.agent(thread_ts, "history", channel)["turns"])

    def idle_after(
        self, thread_ts: str, tasks: int, timeout: float = 30.0, channel: str = CHANNEL
    ) -> dict[str, Any]:
        """Wait until the session has started `tasks` tasks and none is running."""

        def check() -> dict[str, Any] | None:
            status = self.status(thread_ts, channel)
            done = status["state"] == "idle" and status["tasks_started"] >= tasks
            return status if done else None

        return eventually(check, timeout, f"session {thread_ts} idle after {tasks} task(s)")

    def sql(self, query: str) -> list[dict[str, Any]]:
        resp = self.http.post(
            f"{self.stack.urls['admin']}/query",
            json={"query": query},
            headers={"Accept": "application/json"},
        )
        resp.raise_for_status()
        return list(resp.json()["rows"])


def plan_step(text: str) -> dict[str, Any]:
    """A scripted first model turn: `text` and one harmless tool call, so the run goes on to
    a second model call whose request carries `text` (tests find that request by it)."""
    return {"text": text, "tool_calls": [{"name": "list_files", "arguments": {}}]}
