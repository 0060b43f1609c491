"""The Slack payload fixtures stay what they claim: each parses, names the reference its shape
comes from, has the outer shape of its kind, and is used by some test."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from tests.slack_fixtures import FIXTURES, load, read, with_ids

TESTS = Path(__file__).parents[1]
FILES = sorted(FIXTURES.glob("*.json"))
# What Slack's Events API puts around every event ("Callback field overview").
ENVELOPE = {"token", "team_id", "api_app_id", "event", "type", "event_id", "event_time"}


@cache
def _test_sources() -> str:
    here = Path(__file__).resolve()
    paths = (p for p in TESTS.rglob("*.py") if p.resolve() != here)
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


def test_there_are_fixtures() -> None:
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_fixture_parses_and_names_its_source(path: Path) -> None:
    data = read(path.stem)
    source = data.get("_source")
    assert isinstance(source, str)
    assert "https://" in source
    kind = path.stem.split("_", 1)[0]
    assert kind in ("event", "command", "interaction"), "name a fixture for what it is"
    if kind == "event":
        assert ENVELOPE - data.keys() == set()
        assert data["type"] == "event_callback"
        assert isinstance(data["event"].get("type"), str)
    elif kind == "command":
        # Form fields: every value a string, as `application/x-www-form-urlencoded` has them.
        assert all(isinstance(v, str) for v in data.values())
        assert data["command"].startswith("/")
    else:
        assert isinstance(data.get("type"), str)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_fixture_is_used_by_a_test(path: Path) -> None:
    assert f'"{path.stem}"' in _test_sources()


def test_a_loaded_payload_is_a_fresh_copy_without_its_source() -> None:
    first = load("event_file_share")
    assert "_source" not in first
    with_ids(first, ts="1.000001", thread_ts="1.000000", event_id="Ev0CHANGED")
    first["event"]["files"][0]["name"] = "changed.txt"
    again = load("event_file_share")
    assert again["event"]["ts"] != "1.000001"
    assert again["event"]["files"][0]["name"] == "build.log"


def test_ids_are_only_replaced_where_slack_puts_them() -> None:
    stopped = with_ids(load("event_agent_session_stopped"), event_ts="2.000001")
    assert stopped["event"]["event_ts"] == "2.000001"
    assert "ts" not in stopped["event"]
    with pytest.raises(KeyError):
        with_ids(load("event_agent_session_stopped"), ts="2.000002")
