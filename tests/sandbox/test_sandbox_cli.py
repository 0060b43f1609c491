"""`python -m sandbox` as a real process: ready file, both servers answering, clean SIGTERM, and
started by `Stack` as `make run` and the integration tests start it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.stack import Stack

Eventually = Callable[..., Awaitable[Any]]


@pytest.fixture
async def sandbox_process(
    tmp_path: Path, eventually: Eventually
) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, str]]]:
    ready = tmp_path / "ready.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--workspace-port=0",
        "--model-port=0",
        "--chunk-delay=0.01",
        f"--ready-file={ready}",
        env={"SANDBOX_SIGNING_SECRET": "s3cret", "SANDBOX_BOT_TOKEN": "xoxb-cli", "PATH": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(ready.exists, within=15)
        yield proc, json.loads(ready.read_text())
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.communicate()


async def test_cli_serves_both_apps_and_stops_on_sigterm(
    sandbox_process: tuple[asyncio.subprocess.Process, dict[str, str]],
) -> None:
    proc, info = sandbox_process
    assert info["api_url"] == info["workspace_url"] + "/api/"
    assert info["workspace_url"].startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as http:
        auth = await http.post(
            info["api_url"] + "auth.test", headers={"Authorization": "Bearer xoxb-cli"}
        )
        assert auth.json()["ok"] is True
        models = await http.get(
            info["model_url"] + "/models", headers={"Authorization": "Bearer k"}
        )
        assert models.status_code == 200
    assert proc.stdout is not None
    assert json.loads(await proc.stdout.readline()) == info
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), timeout=10) == 0


async def test_cli_names_every_missing_setting() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        env={"PATH": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=15)
    assert proc.returncode == 2
    assert b"SANDBOX_SIGNING_SECRET" in err
    assert b"SANDBOX_BOT_TOKEN" in err


def test_the_stack_passes_the_slack_limits_setting_to_the_sandbox(tmp_path: Path) -> None:
    env = {"SANDBOX_SIGNING_SECRET": "s", "SANDBOX_BOT_TOKEN": "xoxb-stack"}
    stack = Stack(workdir=tmp_path, env=env | {"SANDBOX_SLACK_LIMITS": "off"})
    try:
        stack.start_sandbox(chunk_delay=0.01)
        limits = httpx.get(stack.urls["workspace"] + "/_sandbox/limits", timeout=10).json()
        assert limits["enabled"] is False
    finally:
        stack.stop()
