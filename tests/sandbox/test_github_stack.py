"""`make run`'s shipping path, offline: the stack gives the demo repository a bare remote in
the sandbox GitHub, and the product's settings (`sandbox_env`) reach its pull-request API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from restate_app.shipping import GitHubConfig, PullRequestText, branch_name, ship
from restate_app.tools.workspace import Workspaces
from sandbox.demo_repo import FIX_NEW_TEXT, FIX_OLD_TEXT, MODULE
from sandbox.stack import Stack
from tests.github_sandbox import branches


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(
        workdir=tmp_path,
        env={"SANDBOX_SIGNING_SECRET": "s", "SANDBOX_BOT_TOKEN": "xoxb-stack"},
    )
    try:
        stack.start_sandbox(chunk_delay=0.01)
        yield stack
    finally:
        stack.stop()


async def test_the_demo_repository_ships_to_the_sandbox_github(
    stack: Stack, tmp_path: Path
) -> None:
    repo = stack.workspace_env()["AGENT_REPO"]
    assert repo == str(tmp_path / "github" / "sandbox" / "demo.git")
    env = stack.sandbox_env()
    config = GitHubConfig(api_url=env["GITHUB_API_URL"], token=SecretStr(env["GITHUB_TOKEN"]))
    key = "T0SANDBOX:C0GENERAL:1700000000.000100"
    ws = await Workspaces(tmp_path / "workspaces").open(key, None, repo)
    module = ws.root / MODULE
    module.write_text(module.read_text().replace(FIX_OLD_TEXT, FIX_NEW_TEXT))
    text = PullRequestText(title="Fix summer meeting times", body="Use zoneinfo.")
    branch = branch_name(key, text.title)

    result = await ship(ws, branch, text.title, text, config)

    assert result.pull_request is not None
    assert branch in branches(Path(repo))
    async with httpx.AsyncClient() as http:
        listed = (await http.get(stack.urls["workspace"] + "/_sandbox/pulls")).json()["pulls"]
        page = await http.get(result.pull_request.url)
    assert [(p["head"], p["html_url"]) for p in listed] == [(branch, result.pull_request.url)]
    assert "ZoneInfo(name)" in page.text
