"""Order statistics of latency samples: medians and percentiles, never means alone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """p50/p95/p99/max of a sample, in the sample's unit."""

    n: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(
            n=len(values),
            p50=percentile(values, 50),
            p95=percentile(values, 95),
            p99=percentile(values, 99),
            max=max(values) if values else math.nan,
        )

    def ratio(self, floor: Summary) -> Summary:
        """This sample's percentiles as multiples of `floor`'s (same percentile)."""

        def div(a: float, b: float) -> float:
            return a / b if b > 0 else math.nan

        return Summary(
            n=self.n,
            p50=div(self.p50, floor.p50),
            p95=div(self.p95, floor.p95),
            p99=div(self.p99, floor.p99),
            max=div(self.max, floor.max),
        )
