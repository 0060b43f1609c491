"""Reads restate_app's own Prometheus metrics, for what Restate's tables do not record: the
time to a model's first token. The services' URLs come from Restate's deployment list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import aiohttp
import structlog
from prometheus_client.parser import text_string_to_metric_families

from bot.restate_sql import RestateError, RestateSql

log = structlog.get_logger(__name__)

FIRST_TOKEN_METRIC = "agent_model_first_token_seconds"  # noqa: S105 (a metric name)
MAX_DEPLOYMENTS = 10


def histogram_buckets(text: str, name: str) -> dict[float, float]:
    """The cumulative buckets (`le` -> count) of histogram `name` in one exposition."""
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return buckets


def merge(parts: Iterable[dict[float, float]]) -> dict[float, float]:
    merged: dict[float, float] = {}
    for part in parts:
        for le, count in part.items():
            merged[le] = merged.get(le, 0.0) + count
    return merged


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' `histogram_quantile`: linear interpolation inside the matching bucket."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower_le
            width = count - lower_count
            return lower_le + (le - lower_le) * ((rank - lower_count) / width if width else 1.0)
        lower_le, lower_count = le, count
    return ordered[-1][0]


async def deployment_urls(sql: RestateSql) -> list[str]:
    """The base URLs of the services Restate calls (each serves `/metrics`)."""
    body = await sql.get_json("/deployments")
    urls = {str(d.get("uri", "")).rstrip("/") for d in body.get("deployments", [])}
    return sorted(u for u in urls if u.startswith(("http://", "https://")))[:MAX_DEPLOYMENTS]


async def first_token_buckets(sql: RestateSql, http: aiohttp.ClientSession) -> dict[float, float]:
    """The first-token histogram summed over every deployment that answers within 2 s."""
    try:
        urls = await deployment_urls(sql)
    except RestateError as exc:
        log.info("deployments_unavailable", error=str(exc))
        return {}
    parts = []
    timeout = aiohttp.ClientTimeout(total=2)
    for url in urls:
        try:
            async with http.get(f"{url}/metrics", timeout=timeout) as resp:
                if resp.status == 200:
                    parts.append(histogram_buckets(await resp.text(), FIRST_TOKEN_METRIC))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("metrics_scrape_failed", url=url, error=str(exc))
    return merge(parts)
