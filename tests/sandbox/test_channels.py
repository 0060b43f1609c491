"""The workspace's channels: the defaults, extras from config, `--channel` and SANDBOX_CHANNELS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.__main__ import parse_settings
from sandbox.slack_workspace import WorkspaceConfig, create_workspace_app

Client = TestClient[Any, Any]
REQUIRED = ["--signing-secret=s", "--bot-token=xoxb-t"]


@pytest.fixture
async def extra_workspace(workspace_config: WorkspaceConfig) -> AsyncIterator[Client]:
    config = WorkspaceConfig(
        bot_token=workspace_config.bot_token,
        signing_secret=workspace_config.signing_secret,
        bot_url=workspace_config.bot_url,
        channels=(("C0DEPLOY", "deploys"),),
    )
    async with TestClient(TestServer(create_workspace_app(config), port=0)) as client:
        yield client


async def channel_names(client: Client) -> dict[str, str]:
    listed = (await (await client.get("/_sandbox/channels")).json())["channels"]
    return {c["id"]: c.get("name", "") for c in listed}


async def test_default_channels_are_general_queue_burst_random_and_the_dm(
    workspace: Client,
) -> None:
    assert await channel_names(workspace) == {
        "C0GENERAL": "general",
        "C0QUEUE": "queue-mode",
        "C0BURST": "burst",
        "C0OTHER": "random",
        "D0ALICE": "",
    }


async def test_alice_and_bob_can_post_in_every_public_channel(workspace: Client) -> None:
    for channel in ("C0QUEUE", "C0BURST", "C0OTHER"):
        for user in ("U0ALICE", "U0BOB"):
            body = {"channel": channel, "user": user, "text": "hi"}
            assert (await workspace.post("/_sandbox/messages", json=body)).status == 200


async def test_configured_extra_channel_works_in_the_web_api(extra_workspace: Client) -> None:
    assert (await channel_names(extra_workspace))["C0DEPLOY"] == "deploys"
    slack = AsyncWebClient(
        token="xoxb-sandbox-test-token", base_url=str(extra_workspace.make_url("/api/"))
    )
    info = await slack.conversations_info(channel="C0DEPLOY")
    assert info["channel"]["name"] == "deploys"
    posted = await slack.chat_postMessage(channel="#deploys", text="shipped")
    assert posted["channel"] == "C0DEPLOY"


def test_channels_come_from_the_environment_then_the_command_line() -> None:
    argv = [*REQUIRED, "--channel", "C0DEPLOY=deploys", "--channel=C0OPS=#ops"]
    settings = parse_settings(argv, {"SANDBOX_CHANNELS": "C1A=one, C2B=two,"})
    assert settings.channels == (
        ("C1A", "one"),
        ("C2B", "two"),
        ("C0DEPLOY", "deploys"),
        ("C0OPS", "ops"),
    )
    assert parse_settings(REQUIRED, {}).channels == ()


@pytest.mark.parametrize("spec", ["deploys", "X0DEPLOY=deploys", "C0DEPLOY=Deploys", "C0DEPLOY="])
def test_malformed_channel_is_a_usage_error(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_settings([*REQUIRED, "--channel", spec], {})
    assert exc.value.code == 2
    assert "--channel" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_settings(REQUIRED, {"SANDBOX_CHANNELS": spec})
