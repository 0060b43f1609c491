"""Session keys: one Slack thread, named by its team, channel and root message."""

from __future__ import annotations


def thread_key(team_id: str, channel_id: str, thread_ts: str) -> str:
    """The key of a session: one Slack thread, named by the ts of its root message."""
    for part in (team_id, channel_id, thread_ts):
        if not part or ":" in part or "/" in part:
            raise ValueError(f"not a valid thread key part: {part!r}")
    return f"{team_id}:{channel_id}:{thread_ts}"


def parse_thread_key(key: str) -> tuple[str, str, str]:
    """Split a thread key into (team_id, channel_id, thread_ts)."""
    parts = key.split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a thread key: {key!r}")
    return parts[0], parts[1], parts[2]
