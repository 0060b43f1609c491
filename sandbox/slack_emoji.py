"""Slack's emoji names (`:large_green_circle:`, `:+1:`) for the sandbox page.

The names come from iamcal's emoji-data (npm `emoji-datasource`, installed into node_modules by
`make install`): the data set Slack's own emoji names are taken from, so a shortcode the page
shows as a character is one Slack would show, and any other stays as typed.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import structlog

EMOJI_DATA = Path(__file__).resolve().parent.parent / "node_modules/emoji-datasource/emoji.json"

log = structlog.get_logger("sandbox.slack_emoji")


def character(unified: str) -> str:
    """The emoji for emoji-data's `unified` code points ("1F44D", "1F3F3-FE0F-200D-1F308")."""
    return "".join(chr(int(code, 16)) for code in unified.split("-"))


@cache
def emoji_names(path: Path = EMOJI_DATA) -> dict[str, str]:
    """Every short name (aliases too, and the `skin-tone-N` modifiers) to its character; empty,
    with a warning, when the data is not installed, so shortcodes stay as text."""
    try:
        entries = json.loads(path.read_bytes())
    except FileNotFoundError:
        log.warning("emoji_data_missing", path=str(path), fix="run `make install`")
        return {}
    return {name: character(entry["unified"]) for entry in entries for name in entry["short_names"]}
