"""The sandbox page's attach button and Forward dialog, in Debian's Chromium: a text file goes
with a message (or alone) through the control API and shows as a file card; one over the control
API's bound is refused on the page and nothing is posted, one at the bound goes through; a
forwarded message shows in the destination channel with its author and source; the dialog is
keyboard-operable.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import FilePayload, Locator, Page, expect

from sandbox.slack_shares import MAX_UPLOAD_BYTES, MAX_UPLOADS
from tests.sandbox.conftest import open_page

Client = TestClient[Any, Any]

LOG = b'Traceback (most recent call last):\n  File "app.py", line 3\nZeroDivisionError: boom\n'


@pytest.fixture
async def workspace_open(workspace: Client) -> Client:
    """The workspace with Slack's rate limits off: these tests post faster than Slack allows."""
    await workspace.post("/_sandbox/limits", json={"enabled": False})
    return workspace


@pytest.fixture
async def page(workspace_open: Client) -> AsyncIterator[Page]:
    async with open_page(workspace_open) as page:
        yield page


def text_file(name: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": "text/plain", "buffer": data}


def row(page: Page, pane: str, text: str) -> Locator:
    return page.locator(f"#{pane}-list .msg").filter(has_text=text)


async def get_json(workspace: Client, path: str) -> Any:
    resp = await workspace.get(path)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def messages(workspace: Client, channel: str, thread_ts: str = "") -> list[dict[str, Any]]:
    """What the control API has of a channel (or a thread), as the page gets it."""
    query = f"channel={channel}" + (f"&thread_ts={thread_ts}" if thread_ts else "")
    return list((await get_json(workspace, f"/_sandbox/messages?{query}"))["messages"])


async def post_as(workspace: Client, user: str, text: str) -> str:
    body = {"channel": "C0GENERAL", "user": user, "text": text}
    resp = await workspace.post("/_sandbox/messages", json=body)
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["ts"])


async def test_a_file_attached_in_the_composer_is_sent_with_the_message_and_shown(
    page: Page, workspace_open: Client
) -> None:
    form = page.locator("#channel-form")
    async with page.expect_file_chooser() as chooser:
        await form.get_by_role("button", name="Attach a file").click()
    await (await chooser.value).set_files(text_file("build.log", LOG))
    chip = form.locator(".chip")
    await expect(chip.locator(".file-name")).to_have_text("build.log")
    await expect(chip.locator(".file-meta")).to_have_text(f"{len(LOG)} B")
    await page.fill("#channel-input", "the build fails")
    await page.press("#channel-input", "Enter")
    card = row(page, "channel", "the build fails").locator(".file")
    await expect(card.locator(".file-name")).to_have_text("build.log")
    await expect(card.locator(".file-meta")).to_have_text(f"Plain Text · {len(LOG)} B")
    await expect(chip).to_have_count(0)
    [message] = await messages(workspace_open, "C0GENERAL")
    assert (message["text"], message["subtype"]) == ("the build fails", "file_share")
    assert [(f["name"], f["size"]) for f in message["files"]] == [("build.log", len(LOG))]
    files = (await get_json(workspace_open, "/_sandbox/files"))["files"]
    assert [f["id"] for f in files] == [message["files"][0]["id"]]
    content = await workspace_open.get(files[0]["content_url"])
    assert await content.read() == LOG
    await card.get_by_text("Preview", exact=False).click()
    await expect(card.locator("pre.preview span").last).to_have_text("ZeroDivisionError: boom")


async def test_a_reply_can_be_only_a_file_and_a_chip_can_be_removed_before_sending(
    page: Page, workspace_open: Client
) -> None:
    root = await post_as(workspace_open, "U0ALICE", "send me the output")
    await row(page, "channel", "send me the output").click()
    form = page.locator("#thread-form")
    await form.locator("input[type=file]").set_input_files(
        [text_file("out.txt", b"expected 3, got 4\n"), text_file("notes.md", b"# notes\n")]
    )
    await expect(form.locator(".chip .file-name")).to_have_text(["out.txt", "notes.md"])
    await form.get_by_role("button", name="Remove notes.md").click()
    await expect(form.locator(".chip .file-name")).to_have_text(["out.txt"])
    await expect(form.get_by_role("button", name="Attach a file")).to_be_focused()
    await form.get_by_role("button", name="Reply").click()
    await expect(page.locator("#thread-list .file-name")).to_have_text(["out.txt"])
    await expect(form.locator(".chip")).to_have_count(0)
    reply = (await messages(workspace_open, "C0GENERAL", root))[-1]
    assert (reply["text"], reply["subtype"]) == ("", "file_share")
    assert [f["name"] for f in reply["files"]] == ["out.txt"]


async def test_a_file_over_the_control_apis_bound_is_refused_on_the_page_one_at_it_is_sent(
    page: Page, workspace_open: Client
) -> None:
    form = page.locator("#channel-form")
    too_big = text_file("huge.log", b"x" * (MAX_UPLOAD_BYTES + 1))
    await form.locator("input[type=file]").set_input_files(too_big)
    note = form.get_by_role("alert")
    await expect(note).to_have_text("huge.log is too large: a file may be at most 1.0 MB.")
    await expect(form.locator(".chip")).to_have_count(0)
    await form.get_by_role("button", name="Send").click()
    # A message at the bound still goes through: its JSON body is past aiohttp's default 1 MiB.
    lines = b"line\n" * (MAX_UPLOAD_BYTES // 5)
    await form.locator("input[type=file]").set_input_files(text_file("big.log", lines))
    await expect(note).to_have_count(0)
    await page.fill("#channel-input", "the whole log")
    await page.press("#channel-input", "Enter")
    posted = row(page, "channel", "the whole log")
    await expect(posted.locator(".file-name")).to_have_text("big.log")
    shown = await messages(workspace_open, "C0GENERAL")
    assert [[f["name"] for f in m["files"]] for m in shown] == [["big.log"]]
    files = (await get_json(workspace_open, "/_sandbox/files"))["files"]
    assert [f["name"] for f in files] == ["big.log"]


async def test_the_control_api_takes_a_message_with_a_file_at_its_bound(
    workspace_open: Client,
) -> None:
    content = '"\n' * (MAX_UPLOAD_BYTES // 2)  # each character escaped in JSON: twice as long

    async def post_file(content: str) -> int:
        upload = {"name": "q.txt", "content": content}
        body = {"channel": "C0GENERAL", "user": "U0ALICE", "files": [upload]}
        raw = json.dumps(body).encode()
        assert len(raw) > 2 * MAX_UPLOAD_BYTES
        headers = {"Content-Type": "application/json"}
        resp = await workspace_open.post(
            "/_sandbox/messages", data=io.BytesIO(raw), headers=headers
        )
        return resp.status

    assert await post_file(content) == 200
    assert await post_file(content + "xx") == 400
    config = await get_json(workspace_open, "/_sandbox/config")
    assert (config["max_upload_bytes"], config["max_uploads"]) == (MAX_UPLOAD_BYTES, MAX_UPLOADS)


async def open_forward(page: Page, on: str) -> Locator:
    """Open "Forward message" from a channel message's ⋯ menu; returns the dialog."""
    message = row(page, "channel", on)
    await message.hover()
    await message.locator("button.more").click()
    await page.get_by_role("menuitem", name="Forward message").click()
    dialog = page.get_by_role("dialog", name="Forward message")
    await expect(dialog).to_be_visible()
    return dialog


async def test_a_forwarded_message_shows_in_the_other_channel_with_its_source(
    page: Page, workspace_open: Client
) -> None:
    original = await post_as(workspace_open, "U0BOB", "the deploy broke at *migrate-42*")
    dialog = await open_forward(page, "the deploy broke")
    await expect(dialog.get_by_label("Forward to")).to_be_focused()
    await expect(dialog.locator(".share")).to_contain_text("the deploy broke at migrate-42")
    await dialog.get_by_label("Forward to").select_option(label="#random")
    await dialog.get_by_label("Add a message (optional)").fill("@agent have a look")
    await dialog.get_by_role("button", name="Forward").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#toast")).to_have_text("Forwarded to #random")
    await page.locator("nav button.chan", has_text="#random").click()
    forwarded = row(page, "channel", "have a look")
    await expect(forwarded.locator(".text").first).to_have_text("@agent have a look")
    share = forwarded.locator(".share")
    await expect(share.locator(".share-author")).to_have_text("bob")
    await expect(share.locator(".text b")).to_have_text("migrate-42")
    await expect(share.locator(".share-footer")).to_contain_text("Posted in #general")
    link = share.get_by_role("link", name="View message")
    permalink = workspace_open.make_url(f"/archives/C0GENERAL/p{original.replace('.', '')}")
    await expect(link).to_have_attribute("href", str(permalink))
    shown = await messages(workspace_open, "C0OTHER")
    [attachment] = shown[0]["attachments"]
    assert (attachment["is_share"], attachment["channel_id"], attachment["ts"]) == (
        True,
        "C0GENERAL",
        original,
    )
    assert shown[0]["text"] == "<@U0BOT> have a look"


async def test_the_forward_dialog_closes_on_escape_and_gives_focus_back(
    page: Page, workspace_open: Client
) -> None:
    await post_as(workspace_open, "U0ALICE", "keep this one here")
    await page.select_option("#user", label="bob")
    dialog = await open_forward(page, "keep this one here")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(row(page, "channel", "keep this one").locator("button.more")).to_be_focused()
    await page.keyboard.press("Enter")  # the ⋯ button, from the keyboard
    await expect(page.get_by_role("menuitem", name="Agent status")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await expect(dialog).to_be_visible()
    # bob is no member of alice's DM with the agent: he cannot forward there.
    await expect(dialog.get_by_role("option", name="DM: alice ↔ agent")).to_be_disabled()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    channels = (await get_json(workspace_open, "/_sandbox/channels"))["channels"]
    assert [m["text"] for c in channels for m in c["messages"]] == ["keep this one here"]
