"""A colour emoji web font for the sandbox page, served from the page's own origin.

Machines without a colour emoji font (many Linux servers, CI) draw emoji as empty boxes. The
page loads Noto Color Emoji (npm `@fontsource/noto-color-emoji`, installed into node_modules by
`make install`) instead: the package's own `@font-face` rules, their unicode ranges kept, are
rewritten to point at `/static/fonts/`, which serves only the files those rules name, so the
browser fetches just the slices the emoji on screen need.

The slices are served as WOFF, not WOFF2: the package's WOFF2 slices carry only OpenType-SVG
glyphs, which Chromium does not draw (fontsource/fontsource#588), while its WOFF slices also
carry COLRv1, which it does (and the SVG table Safari draws).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import structlog
from aiohttp import web

FONT_PACKAGE = Path(__file__).resolve().parent.parent / "node_modules/@fontsource/noto-color-emoji"
FAMILY = "Noto Color Emoji"
FONT_ROUTE = "/static/fonts/"
STYLESHEET_ROUTE = "/static/emoji-font.css"
# The files' names stay the same from one package version to the next, so their URLs carry the
# version (`?v=`) and a browser may keep what it fetched for good.
FONT_HEADERS = {
    "Content-Type": "font/woff",
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}
_SOURCE = re.compile(r"url\(\./files/([a-z0-9-]+\.woff)\) format\('woff'\)")
# Ranges are copied into the page's CSS: only range characters, so no rule can smuggle more in.
_RANGE = re.compile(r"unicode-range:\s*(U\+[0-9a-fA-FuU+?,\s-]+);")

log = structlog.get_logger("sandbox.slack_emoji_font")


@dataclass(frozen=True)
class EmojiFont:
    """The page's `@font-face` rules and the only font files they may fetch."""

    stylesheet: str
    files: frozenset[str]
    package: Path


def _face(file: str, unicode_range: str, version: str) -> str:
    return (
        f"@font-face {{ font-family: '{FAMILY}'; font-style: normal; font-weight: 400; "
        f"font-display: swap; src: url({FONT_ROUTE}{file}?v={version}) format('woff'); "
        f"unicode-range: {unicode_range}; }}\n"
    )


@cache
def emoji_font(package: Path = FONT_PACKAGE) -> EmojiFont:
    """The package's regular-weight slices as rules pointing at `FONT_ROUTE`; no rules, with a
    warning, when the package is not installed, so the page falls back to the system's fonts."""
    try:
        css = (package / "400.css").read_text()
        version = json.loads((package / "package.json").read_bytes())["version"]
    except FileNotFoundError:
        log.warning("emoji_font_missing", path=str(package), fix="run `make install`")
        return EmojiFont("", frozenset(), package)
    faces: dict[str, str] = {}
    for rule in css.split("@font-face")[1:]:
        source, ranges = _SOURCE.search(rule), _RANGE.search(rule)
        if source and ranges:
            faces[source[1]] = ranges[1].strip()
    stylesheet = "".join(_face(file, ranges, version) for file, ranges in faces.items())
    return EmojiFont(stylesheet, frozenset(faces), package)


async def stylesheet(request: web.Request) -> web.Response:
    """The `@font-face` rules the page links (empty without the package)."""
    font = await asyncio.to_thread(emoji_font)
    return web.Response(
        text=font.stylesheet, content_type="text/css", headers={"Cache-Control": "no-cache"}
    )


async def font_file(request: web.Request) -> web.FileResponse:
    """One of the slices the rules name; any other path is not found."""
    font = await asyncio.to_thread(emoji_font)
    name = request.match_info["name"]
    if name not in font.files:
        raise web.HTTPNotFound()
    return web.FileResponse(font.package / "files" / name, headers=FONT_HEADERS)


def register_emoji_font(app: web.Application) -> None:
    """Serve the rules and the font files; before `/static/{name}`, which would shadow them."""
    app.router.add_get(STYLESHEET_ROUTE, stylesheet)
    app.router.add_get(FONT_ROUTE + "{name}", font_file)
