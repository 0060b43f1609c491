"""Dashboard tests run against the real stack (`stack`, `harness` from tests/conftest.py): a
JSON client that carries the dashboard token, and a Playwright browser on Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sandbox.stack import Stack
from tests.integration.harness import CHANNEL, TEAM, Harness

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


@pytest.fixture
def dashboard(stack: Stack, harness: Harness) -> Iterator[Dashboard]:
    with httpx.Client(timeout=60) as http:
        yield Dashboard(stack.urls["dashboard"], stack.env["DASHBOARD_TOKEN"], http)
