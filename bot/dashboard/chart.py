"""The overview's chart of run outcomes over time: which span and bar width it shows, and its
bars. By default (`auto`) the span fits the data: from the oldest run that ended within the
last day, so a young deployment's runs are not squeezed into one bar at the right edge of six
hours; the fixed spans stay to choose from.
"""

from __future__ import annotations

import math
from typing import Any

from common.contract import OUTCOMES

AUTO = "auto"
# Fixed chart windows: seconds shown -> seconds per bar.
WINDOWS = {"1h": (3600, 60), "6h": (21_600, 600), "24h": (86_400, 3600)}
# The fitted span: never shorter than this, never longer than the day the overview covers.
MIN_SPAN = 5 * 60
MAX_SPAN = 86_400
BAR_WIDTHS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600)
MAX_BARS = 48
# The page's word for each outcome: one word each, the ones people use in the thread.
OUTCOME_WORDS = {
    "completed": "done",
    "cancelled": "interrupted",
    "stopped": "stopped",
    "failed": "failed",
}


def fit(now: float, first: float | None) -> tuple[int, int]:
    """The span and bar width showing every run since `first` (None: no runs), with a bar to
    spare before it: at least `MIN_SPAN`, at most `MAX_SPAN`, at most `MAX_BARS` bars."""
    wanted = max(0.0, now - first) if first is not None else 0.0
    wanted = min(wanted, MAX_SPAN)
    for width in BAR_WIDTHS:
        span = max(MIN_SPAN, (math.ceil(wanted / width) + 1) * width)
        if span // width <= MAX_BARS:
            return min(span, MAX_SPAN), width
    return MAX_SPAN, BAR_WIDTHS[-1]


def span_of(window: str, now: float, first: float | None) -> tuple[int, int]:
    """The span and bar width of `window`: a fixed one, or fitted to the data."""
    return WINDOWS[window] if window in WINDOWS else fit(now, first)


def bars(rows: list[dict[str, Any]], now: float, span: int, bucket: int) -> dict[str, Any]:
    """One bar per `bucket` seconds ending now, stacked by outcome, from the timeline query."""
    first = int((now - span) // bucket) * bucket + bucket
    slots = list(range(first, int(now) + 1, bucket))
    series = {o: [0] * len(slots) for o in OUTCOMES}
    index = {s: i for i, s in enumerate(slots)}
    for row in rows:
        i = index.get(int(row.get("slot") or 0))
        if i is not None and row.get("outcome") in series:
            series[row["outcome"]][i] = int(row.get("n") or 0)
    return {
        "slots": slots,
        "bucket_s": bucket,
        "span_s": span,
        "series": series,
        "labels": {o: OUTCOME_WORDS[o] for o in OUTCOMES},
    }
