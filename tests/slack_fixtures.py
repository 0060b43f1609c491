"""Slack's payloads as Slack sends them, kept as data under `tests/fixtures/slack/`: one JSON
file per payload (an Events API envelope, a slash command's form fields, or the JSON inside an
interaction's `payload=`), each naming in `_source` the reference its shape comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
JSON = dict[str, Any]


def read(name: str) -> JSON:
    """The whole file `fixtures/slack/<name>.json`, `_source` included."""
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"{name}.json holds {type(data).__name__}, not a payload object")
    return data


def load(name: str) -> JSON:
    """The payload of `fixtures/slack/<name>.json` without its `_source`, parsed afresh on
    every call: a test may change its copy without touching the file or another test's."""
    payload = read(name)
    del payload["_source"]
    return payload


def with_ids(
    envelope: JSON,
    *,
    ts: str | None = None,
    event_ts: str | None = None,
    thread_ts: str | None = None,
    event_id: str | None = None,
) -> JSON:
    """`envelope` with the ids a test needs fresh, where Slack puts them: a message's `ts`
    (and its `event_ts`, the same for a new message), the `event_ts` of another event, the
    thread's `thread_ts`, the delivery's `event_id`. Only ids the payload already carries are
    replaced, so no field Slack does not send is added."""
    event = envelope["event"]
    for key, value in (("ts", ts), ("event_ts", event_ts or ts), ("thread_ts", thread_ts)):
        if value is not None:
            if key not in event:
                raise KeyError(f"the event carries no {key!r}")
            event[key] = value
    if event_id is not None:
        envelope["event_id"] = event_id
    return envelope
