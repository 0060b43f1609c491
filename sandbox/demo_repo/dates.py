"""Meeting times as the people invited see them: local time in their own timezone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# Hours ahead of UTC for the timezones the team works in.
UTC_OFFSETS = {
    "America/New_York": -5,
    "Europe/Berlin": 1,
    "Asia/Tokyo": 9,
}


def local_timezone(name: str) -> timezone:
    """The timezone called `name`, e.g. "Europe/Berlin"."""
    return timezone(timedelta(hours=UTC_OFFSETS[name]))


def format_meeting(start: datetime, tz_name: str) -> str:
    """`start` (an aware datetime) as local time in `tz_name`, e.g. "Mon 15 Jan 10:00"."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware, e.g. datetime(..., tzinfo=UTC)")
    return start.astimezone(local_timezone(tz_name)).strftime("%a %d %b %H:%M")
