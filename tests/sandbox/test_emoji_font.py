"""The sandbox page draws emoji in colour on a machine with no emoji font: it loads Noto Color
Emoji from its own origin, only the package's slices its rules name, and text (digits too)
stays in the text font."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from sandbox.slack_emoji_font import FAMILY, emoji_font
from tests.sandbox.conftest import open_page

Client = TestClient[Any, Any]

FONT_URL = re.compile(r"url\((/static/fonts/[a-z0-9-]+\.woff)\?v=[0-9.]+\) format\('woff'\)")


async def font_urls(workspace: Client) -> list[str]:
    resp = await workspace.get("/static/emoji-font.css")
    assert resp.status == 200
    assert resp.content_type == "text/css"
    return FONT_URL.findall(await resp.text())


async def test_the_page_may_load_fonts_from_its_own_origin_only(workspace: Client) -> None:
    csp = (await workspace.get("/")).headers["Content-Security-Policy"]
    assert "font-src 'self';" in csp


async def test_the_stylesheet_points_each_of_the_packages_slices_at_the_font_route(
    workspace: Client,
) -> None:
    css = await (await workspace.get("/static/emoji-font.css")).text()
    urls = await font_urls(workspace)
    assert len(urls) == css.count("@font-face") == len(emoji_font().files) > 1
    assert css.count(f"font-family: '{FAMILY}'") == len(urls)
    assert "unicode-range: U+1f1e6-1f1ff;" in css
    assert "node_modules" not in css
    assert ".woff2" not in css


async def test_the_font_route_serves_woff_to_be_kept_with_its_type_not_sniffed(
    workspace: Client,
) -> None:
    for url in await font_urls(workspace):
        resp = await workspace.get(url)
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "font/woff"
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert (await resp.read())[:4] == b"wOFF"


@pytest.mark.parametrize(
    "path",
    [
        # In the package, but no rule names it: the whole font, the SVG-only WOFF2 slices.
        "/static/fonts/noto-color-emoji-emoji-400-normal.woff",
        "/static/fonts/noto-color-emoji-0-400-normal.woff2",
        "/static/fonts/package.json",
        "/static/fonts/..%2Fpackage.json",
        "/static/fonts/%2e%2e%2f%2e%2e%2fpackage.json",
        "/static/fonts/../../../package.json",
        "/static/fonts/",
        "/static/fonts/noto-color-emoji-0-400-normal.woff/x",
    ],
)
async def test_the_font_route_refuses_every_other_path(workspace: Client, path: str) -> None:
    resp = await workspace.get(path, allow_redirects=False)
    assert resp.status == 404
    assert not (await resp.read()).startswith(b"wOF")


def test_without_the_package_there_are_no_rules_and_no_files(tmp_path: Path) -> None:
    font = emoji_font(tmp_path / "missing")
    assert (font.stylesheet, font.files) == ("", frozenset())


async def rendered_fonts(page: Page, selector: str) -> list[dict[str, bool]]:
    """For each element `selector` finds, the fonts Chromium drew its text with (family: whether
    a web font)."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    root = (await cdp.send("DOM.getDocument"))["root"]["nodeId"]
    found = await cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector})
    drawn = []
    for node in found["nodeIds"]:
        fonts = (await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node}))["fonts"]
        drawn.append({f["familyName"]: f["isCustomFont"] for f in fonts})
    await cdp.detach()
    assert drawn, f"nothing matches {selector}"
    return drawn


async def green_pixels(page: Page, emoji: str) -> int:
    """How many clearly green pixels the emoji font draws `emoji` with: none if its glyphs are
    blank or black and white."""
    return int(
        await page.evaluate(
            """async ([family, emoji]) => {
                const font = `48px "${family}"`;
                await document.fonts.load(font, emoji);
                const pen = new OffscreenCanvas(64, 64).getContext("2d");
                pen.font = font;
                pen.fillText(emoji, 4, 52);
                const px = pen.getImageData(0, 0, 64, 64).data;
                let green = 0;
                for (let i = 0; i < px.length; i += 4)
                    if (px[i + 3] > 200 && px[i + 1] > px[i] + 40 && px[i + 1] > px[i + 2] + 40)
                        green++;
                return green;
            }""",
            [FAMILY, emoji],
        )
    )


async def test_emoji_are_drawn_in_colour_from_the_pages_own_font_and_text_in_the_text_font(
    workspace: Client,
) -> None:
    await workspace.post("/_sandbox/limits", json={"enabled": False})
    text = ":large_green_circle: *working* since 10:30 #1 :eyes: 🎉"
    body = {"channel": "C0GENERAL", "user": "U0ALICE", "text": text}
    assert (await workspace.post("/_sandbox/messages", json=body)).status == 200
    async with open_page(workspace) as page:
        message = page.locator("#channel-list .msg").filter(has_text="working")
        await expect(message.locator(".text")).to_have_text("🟢 working since 10:30 #1 👀 🎉")
        await expect(message.locator(".text .emoji")).to_have_text(["🟢", "👀", "🎉"])
        status = await page.evaluate(
            """async (family) => {
                await document.fonts.ready;
                return [...document.fonts]
                    .filter((f) => f.family.replaceAll('"', "") === family)
                    .map((f) => f.status);
            }""",
            FAMILY,
        )
        assert "loaded" in status
        assert await green_pixels(page, "🟢") > 200
        emoji = "#channel-list .text .emoji, #channel-form button.attach"
        assert await rendered_fonts(page, emoji) == [{FAMILY: True}] * 4
        # Text, digits and `#` included, never falls to the emoji font (it would blank them).
        for words in await rendered_fonts(page, "#channel-list .text b, #channel-list .meta"):
            assert words
            assert FAMILY not in words
        fetched = await page.evaluate(
            """() => performance.getEntriesByType("resource").map((e) => e.name)
                .filter((url) => url.includes(".woff"))"""
        )
    assert fetched
    assert all(url.startswith(str(workspace.make_url("/static/fonts/"))) for url in fetched)
