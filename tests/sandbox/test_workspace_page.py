"""The sandbox page in Debian's Chromium: its header counts the 429s answered, live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_workspace import WorkspaceConfig
from tests.sandbox.conftest import open_page

Client = TestClient[Any, Any]


@pytest.fixture
async def page(limited: Client) -> AsyncIterator[Page]:
    """The workspace's page, its live feed open."""
    async with open_page(limited) as page:
        yield page


async def test_the_header_counts_429s_as_they_are_answered(
    page: Page, limited: Client, workspace_config: WorkspaceConfig
) -> None:
    counter = page.locator("header #limits")
    await expect(counter).to_have_text("429s: 0")
    slack = AsyncWebClient(
        token=workspace_config.bot_token, base_url=str(limited.make_url("/api/"))
    )
    for _ in range(3):
        await slack.chat_postMessage(channel="C0GENERAL", text="status")
    for refused in range(1, 3):
        with pytest.raises(SlackApiError):
            await slack.chat_postMessage(channel="C0GENERAL", text="one too many")
        await expect(counter).to_have_text(f"429s: {refused}")
    await limited.post("/_sandbox/limits", json={"enabled": False})
    await expect(counter).to_have_text("429s: 2 (limits off)")
    await limited.post("/_sandbox/reset")
    await expect(counter).to_have_text("429s: 0 (limits off)")


async def test_the_install_toggle_switches_the_app_to_an_org_wide_install_and_back(
    page: Page, limited: Client
) -> None:
    toggle = page.get_by_label("Install")
    await expect(toggle).to_have_value("")
    await toggle.select_option(label="org-wide (Enterprise Grid)")
    await expect(page.locator("#toast")).to_have_text("Installed org-wide in E0SANDBOX")
    config = await (await limited.get("/_sandbox/config")).json()
    assert config["org_wide"] == "E0SANDBOX"
    await page.reload()
    await expect(page.get_by_label("Install")).to_have_value("E0SANDBOX")
    await page.get_by_label("Install").select_option(label="this workspace")
    await expect(page.locator("#toast")).to_have_text("Installed in this workspace")
    assert (await (await limited.get("/_sandbox/config")).json())["org_wide"] is None
