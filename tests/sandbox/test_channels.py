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


async def test_default_channels_are_general_queue_burst_steer_random_and_the_dm(
    workspace: Client,
) -> None:
    assert await channel_names(workspace) == {
        "C0GENERAL": "general",
        "C0QUEUE": "queue-mode",
        "C0BURST": "burst",
        "C0STEER": "steer",
        "C0OTHER": "random",
        "D0ALICE": "",
    }


async def test_alice_and_bob_can_post_in_every_public_channel(workspace: Client) -> None:
    for channel in ("C0QUEUE", "C0BURST", "C0STEER", "C0OTHER"):
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


def sdk(workspace: Client) -> AsyncWebClient:
    return AsyncWebClient(
        token="xoxb-sandbox-test-token", base_url=str(workspace.make_url("/api/"))
    )


async def test_every_default_channel_says_its_purpose_in_conversations_info(
    workspace: Client,
) -> None:
    slack = sdk(workspace)
    for channel_id in ("C0GENERAL", "C0QUEUE", "C0BURST", "C0STEER", "C0OTHER"):
        channel = (await slack.conversations_info(channel=channel_id))["channel"]
        purpose = channel["purpose"]
        assert purpose["value"]
        assert "\n" not in purpose["value"]
        assert purpose["creator"] == "U0ALICE"
        assert purpose["last_set"] == channel["created"]
        assert channel["topic"] == {"value": "", "creator": "", "last_set": 0}
    steer = (await slack.conversations_info(channel="C0STEER"))["channel"]["purpose"]["value"]
    assert "steer" in steer.lower()


async def test_an_extra_channel_has_an_empty_purpose_and_a_renamed_default_keeps_its_own(
    workspace_config: WorkspaceConfig,
) -> None:
    config = WorkspaceConfig(
        bot_token=workspace_config.bot_token,
        signing_secret=workspace_config.signing_secret,
        channels=(("C0DEPLOY", "deploys"), ("C0STEER", "steer-mode")),
    )
    async with TestClient(TestServer(create_workspace_app(config), port=0)) as client:
        slack = sdk(client)
        deploys = (await slack.conversations_info(channel="C0DEPLOY"))["channel"]
        assert deploys["purpose"] == {"value": "", "creator": "", "last_set": 0}
        steer = (await slack.conversations_info(channel="C0STEER"))["channel"]
        assert steer["name"] == "steer-mode"
        assert steer["purpose"]["value"]


async def test_conversations_list_pages_public_channels_by_default(workspace: Client) -> None:
    slack = sdk(workspace)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        # Three calls in all: conversations.list is Tier 2, a burst of four.
        page = await slack.conversations_list(limit=3, cursor=cursor)
        assert len(page["channels"]) <= 3
        seen += [c["id"] for c in page["channels"]]
        assert all(c["purpose"]["value"] for c in page["channels"])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == ["C0GENERAL", "C0QUEUE", "C0BURST", "C0STEER", "C0OTHER"]
    ims = await slack.conversations_list(types="im")
    assert [(c["id"], c["user"], c["is_im"]) for c in ims["channels"]] == [
        ("D0ALICE", "U0ALICE", True)
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"types": "public_channel,shared"}, "invalid_types"),
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "1001"}, "invalid_limit"),
        ({"cursor": "not base64!"}, "invalid_cursor"),
    ],
)
async def test_conversations_list_refuses_bad_arguments_as_slack_does(
    workspace: Client, args: dict[str, str], error: str
) -> None:
    resp = await workspace.post(
        "/api/conversations.list",
        data=args,
        headers={"Authorization": "Bearer xoxb-sandbox-test-token"},
    )
    assert (await resp.json()) == {"ok": False, "error": error}
