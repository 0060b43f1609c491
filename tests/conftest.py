"""Fixtures shared by every test that needs the real stack (integration and dashboard tests):
a Restate server, restate_app, the bot and the sandbox, started once per test session.

One stack per test session (starting Restate is the slow part); each test uses fresh threads,
and resets the model's script and the workspace's faults so tests do not leak into each other.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from sandbox.stack import Stack
from tests.github_sandbox import SandboxGitHub, make_remote, serve_github
from tests.integration.harness import Harness, open_harness

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Test folders that run against the real stack: marked `integration`, left out by `make unit`.
STACK_TESTS = ("integration", "dashboard")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(f"tests/{part}/" in str(item.fspath) for part in STACK_TESTS):
            item.add_marker(pytest.mark.integration)
    # Checks over everything the run logged go last, after every other test has run.
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)


def product_env(**overrides: str) -> dict[str, str]:
    """The environment of a test stack: fresh secrets, the sandbox, tight bounds."""
    token, secret = "xoxb-test-" + secrets.token_hex(8), secrets.token_hex(16)
    env = {
        "SLACK_BOT_TOKEN": token,
        "SLACK_SIGNING_SECRET": secret,
        "SANDBOX_BOT_TOKEN": token,
        "SANDBOX_SIGNING_SECRET": secret,
        "OPENAI_API_KEY": "sk-test-" + secrets.token_hex(8),
        "OPENAI_MODEL": "offline-demo",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        # Tests start hundreds of runs as a handful of people; the rate of new runs has its
        # own tests (tests/unit/test_bot_listeners.py).
        "RUNS_PER_USER_PER_HOUR": "0",
        "RUNS_PER_CHANNEL_PER_HOUR": "0",
    }
    return env | overrides


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = product_env(
        MODEL_MAX_ATTEMPTS="2",
        SLACK_MAX_ATTEMPTS="3",
        CLEANUP_WAIT_SECONDS="4",
        MODEL_TIMEOUT_SECONDS="3",
        DASHBOARD_PORT="0",
        DASHBOARD_TOKEN="dash-" + secrets.token_hex(12),
        CHANNEL_POLICIES="C0QUEUE=queue,C0BURST=interrupt/1.5,C0STEER=steer",
        SANDBOX_CHANNELS="C0STEER=steer-mode",
        ALLOWED_TEAM_IDS="T0SANDBOX",
        ALLOWED_CHANNEL_IDS="C0GENERAL,C0QUEUE,C0BURST,C0STEER,D0ALICE",
        AGENT_MODELS="smart=offline-smart",
    )
    stack = Stack(workdir=Path(tmp_path_factory.mktemp("stack")), env=env)
    try:
        stack.start_restate()
        stack.start_product(chunk_delay=0.01)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (never a downloaded browser).

    Module-scoped on purpose: Playwright's sync API keeps an event loop running in this
    thread while it is open, and the async tests that follow need the thread's loop free.
    """
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is missing: run `make test`")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def harness(stack: Stack) -> Iterator[Harness]:
    with open_harness(stack) as harness:
        yield harness


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository on `main`, where the sandbox's GitHub keeps its repositories."""
    return make_remote(tmp_path)


@pytest.fixture
async def github(remote: Path, tmp_path: Path) -> AsyncIterator[SandboxGitHub]:
    """The sandbox's GitHub endpoint on port 0, serving `remote`."""
    async with serve_github(tmp_path / "github") as server:
        yield server
